// The engine's global operator new returns 64-byte aligned memory.
//
// Why: some CPU kernels vectorise with a scalar prologue/epilogue chosen by the runtime alignment of
// their scratch buffers (std::vector inside attention_backward, for one), and the scalar and SIMD
// paths of exp() round differently. With the default 16-byte heap alignment the result of a kernel
// then depends on the heap's history, so two processes computing the same step could differ in the
// last bit — and a resumed run would not reproduce an uninterrupted one bit for bit. With every
// allocation aligned to a cache line, every process sees the same alignment.
#include <cstdlib>
#include <new>

namespace {

constexpr std::size_t kAlignment = 64;

void* allocate(std::size_t size) {
  const std::size_t rounded = (size == 0 ? 1 : size + kAlignment - 1) / kAlignment * kAlignment;
  return std::aligned_alloc(kAlignment, rounded == 0 ? kAlignment : rounded);
}

void* allocate_or_throw(std::size_t size) {
  for (;;) {
    if (void* p = allocate(size)) return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    handler();
  }
}

}  // namespace

void* operator new(std::size_t size) { return allocate_or_throw(size); }
void* operator new[](std::size_t size) { return allocate_or_throw(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return allocate(size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return allocate(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
