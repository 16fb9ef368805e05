// Every CPU kernel gives bit-identical results wherever its buffers lie in memory.
//
// Eigen and the compiler vectorise a loop with a scalar prologue up to the first aligned address
// and a scalar epilogue; the scalar and SIMD versions of exp/tanh (and of a sum's order) round
// differently, so a kernel whose split follows the ADDRESS of a buffer computes different last
// bits for the same inputs when that buffer moves. A training run would then depend on the
// heap's history: a resumed run would not reproduce an uninterrupted one bit for bit.
//
// Each case runs a kernel 16 times on the same values, with every input and output buffer placed
// at a different offset (0..15 elements) from a 64-byte boundary, and with this executable's
// global operator new (below) returning memory at a different (16-byte aligned) offset each time,
// so the kernels' own std::vector scratch moves too. Every run must produce exactly the bits of
// the first.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <new>
#include <string>
#include <vector>

#include "kernels/cpu/kernels.hpp"
#include "tests/kernels/test_support.hpp"

// ---- operator new at a chosen distance from a 64-byte boundary --------------------------------
namespace {
std::atomic<std::size_t> g_heap_offset_bytes{0};

void* offset_allocate(std::size_t size) noexcept {
  const std::size_t offset = g_heap_offset_bytes.load(std::memory_order_relaxed);
  void* raw = std::malloc(size + 192);
  if (raw == nullptr) return nullptr;
  const std::uintptr_t boundary = (reinterpret_cast<std::uintptr_t>(raw) + 64 + 63) / 64 * 64;
  char* user = reinterpret_cast<char*>(boundary + offset);
  std::memcpy(user - sizeof(void*), &raw, sizeof(void*));  // the header: what to free
  return user;
}

void* offset_allocate_or_throw(std::size_t size) {
  void* p = offset_allocate(size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void offset_free(void* p) noexcept {
  if (p == nullptr) return;
  void* raw = nullptr;
  std::memcpy(&raw, static_cast<char*>(p) - sizeof(void*), sizeof(void*));
  std::free(raw);
}
}  // namespace

void* operator new(std::size_t size) { return offset_allocate_or_throw(size); }
void* operator new[](std::size_t size) { return offset_allocate_or_throw(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return offset_allocate(size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return offset_allocate(size); }
void operator delete(void* p) noexcept { offset_free(p); }
void operator delete[](void* p) noexcept { offset_free(p); }
void operator delete(void* p, std::size_t) noexcept { offset_free(p); }
void operator delete[](void* p, std::size_t) noexcept { offset_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { offset_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { offset_free(p); }

namespace tandem::kernels {
namespace {

using testing::random_tokens;
using testing::random_vector;

constexpr int kPlacements = 16;

// The buffers of one run: the k-th buffer of placement s starts (s·(2k+1) + k) mod 16 elements
// past a 64-byte boundary, so buffers move independently of each other from run to run.
template <typename Scalar>
class PlacedBuffers {
 public:
  explicit PlacedBuffers(int placement) : placement_(placement) {}
  PlacedBuffers(const PlacedBuffers&) = delete;
  PlacedBuffers& operator=(const PlacedBuffers&) = delete;
  ~PlacedBuffers() {
    for (void* p : blocks_) std::free(p);
  }

  // A buffer holding these values (an input, or an in/out buffer).
  Scalar* place(const std::vector<Scalar>& values) {
    Scalar* p = allocate(values.size());
    std::copy(values.begin(), values.end(), p);
    return p;
  }
  // An output buffer filled with garbage the kernel must overwrite (or accumulate onto).
  Scalar* place(std::size_t n, Scalar fill) { return place(std::vector<Scalar>(n, fill)); }
  std::int32_t* place_tokens(const std::vector<std::int32_t>& tokens) {
    auto* p = static_cast<std::int32_t*>(raw(tokens.size() * sizeof(std::int32_t), next_offset() * 4));
    std::copy(tokens.begin(), tokens.end(), p);
    return p;
  }

  // Bytes past a 64-byte boundary for the kernel's own heap allocations: 0, 16, 32 or 48.
  // operator new must return memory aligned to __STDCPP_DEFAULT_NEW_ALIGNMENT__ (16 here; the
  // kernels' scratch vectors hold doubles and vectors too), so only the alignment beyond that —
  // what decides AVX's and AVX-512's scalar prologues — moves.
  std::size_t heap_offset_bytes() const {
    constexpr std::size_t kNewAlignment = __STDCPP_DEFAULT_NEW_ALIGNMENT__;
    return static_cast<std::size_t>(placement_ * 7) % (64 / kNewAlignment) * kNewAlignment;
  }

 private:
  int next_offset() {
    const int k = count_++;
    return (placement_ * (2 * k + 1) + k) % kPlacements;
  }
  Scalar* allocate(std::size_t n) {
    return static_cast<Scalar*>(raw(n * sizeof(Scalar), static_cast<std::size_t>(next_offset()) * sizeof(Scalar)));
  }
  void* raw(std::size_t bytes, std::size_t offset_bytes) {
    const std::size_t total = (bytes + offset_bytes + 64) / 64 * 64 + 64;
    void* block = std::aligned_alloc(64, total);
    if (block == nullptr) throw std::bad_alloc();
    blocks_.push_back(block);
    return static_cast<char*>(block) + offset_bytes;
  }

  int placement_;
  int count_ = 0;
  std::vector<void*> blocks_;
};

// While alive, operator new returns memory `bytes` past a 64-byte boundary.
class HeapOffset {
 public:
  explicit HeapOffset(std::size_t bytes) { g_heap_offset_bytes.store(bytes); }
  ~HeapOffset() { g_heap_offset_bytes.store(0); }
  HeapOffset(const HeapOffset&) = delete;
  HeapOffset& operator=(const HeapOffset&) = delete;
};

template <typename Scalar>
using Outputs = std::vector<std::vector<Scalar>>;

template <typename Scalar>
std::vector<Scalar> read(const Scalar* p, std::size_t n) {
  return std::vector<Scalar>(p, p + n);
}

// Runs `run` at every placement and requires the bits of placement 0 from each.
template <typename Scalar>
void expect_placement_independent(const std::string& what,
                                  const std::function<Outputs<Scalar>(PlacedBuffers<Scalar>&)>& run) {
  SCOPED_TRACE(what);
  Outputs<Scalar> first;
  for (int placement = 0; placement < kPlacements; ++placement) {
    PlacedBuffers<Scalar> buffers(placement);
    const Outputs<Scalar> outputs = run(buffers);
    if (placement == 0) {
      first = outputs;
      continue;
    }
    ASSERT_EQ(outputs.size(), first.size());
    for (std::size_t o = 0; o < outputs.size(); ++o) {
      ASSERT_EQ(outputs[o].size(), first[o].size());
      for (std::size_t i = 0; i < outputs[o].size(); ++i) {
        if (std::memcmp(&outputs[o][i], &first[o][i], sizeof(Scalar)) != 0) {
          FAIL() << "output " << o << " element " << i << " differs at placement " << placement << ": "
                 << static_cast<double>(outputs[o][i]) << " vs " << static_cast<double>(first[o][i])
                 << " (difference " << static_cast<double>(outputs[o][i]) - static_cast<double>(first[o][i])
                 << ")";
        }
      }
    }
  }
}

template <typename Scalar>
std::vector<Scalar> values(std::size_t n, std::uint32_t seed, double low = -1.0, double high = 1.0) {
  return testing::cast<Scalar>(random_vector(n, seed, low, high));
}

std::string shape(std::initializer_list<std::pair<const char*, long>> dims) {
  std::string s;
  for (const auto& [name, value] : dims) s += std::string(s.empty() ? "" : " ") + name + "=" + std::to_string(value);
  return s;
}

// ---- GEMMs ------------------------------------------------------------------------------------
template <typename Scalar>
void check_matmul() {
  struct Case { int M, K, N; };
  // Small (Eigen's coefficient-based product), matrix-vector, general, and split over threads.
  for (const Case c : {Case{3, 5, 4}, Case{1, 33, 70}, Case{37, 70, 1}, Case{37, 70, 130}, Case{100, 160, 300}}) {
    const auto inp = values<Scalar>(static_cast<std::size_t>(c.M) * c.K, 1);
    const auto weight = values<Scalar>(static_cast<std::size_t>(c.N) * c.K, 2);
    const auto bias = values<Scalar>(static_cast<std::size_t>(c.N), 3);
    const auto dout = values<Scalar>(static_cast<std::size_t>(c.M) * c.N, 4);
    const auto MN = static_cast<std::size_t>(c.M) * c.N, MK = static_cast<std::size_t>(c.M) * c.K;
    const auto NK = static_cast<std::size_t>(c.N) * c.K;
    const std::string s = shape({{"M", c.M}, {"K", c.K}, {"N", c.N}});
    expect_placement_independent<Scalar>("matmul_forward " + s, [&](PlacedBuffers<Scalar>& b) {
      Scalar* out = b.place(MN, Scalar(7));
      const Scalar *x = b.place(inp), *w = b.place(weight), *bi = b.place(bias);
      Scalar* out_nobias = b.place(MN, Scalar(7));
      HeapOffset heap(b.heap_offset_bytes());
      cpu::matmul_forward(out, x, w, bi, c.M, c.K, c.N);
      cpu::matmul_forward(out_nobias, x, w, static_cast<const Scalar*>(nullptr), c.M, c.K, c.N);
      return Outputs<Scalar>{read(out, MN), read(out_nobias, MN)};
    });
    expect_placement_independent<Scalar>("matmul_backward_input " + s, [&](PlacedBuffers<Scalar>& b) {
      Scalar* dinp = b.place(MK, Scalar(7));
      Scalar* dinp_acc = b.place(inp);
      const Scalar *d = b.place(dout), *w = b.place(weight);
      HeapOffset heap(b.heap_offset_bytes());
      cpu::matmul_backward_input(dinp, d, w, c.M, c.K, c.N, false);
      cpu::matmul_backward_input(dinp_acc, d, w, c.M, c.K, c.N, true);
      return Outputs<Scalar>{read(dinp, MK), read(dinp_acc, MK)};
    });
    expect_placement_independent<Scalar>("matmul_backward_weight " + s, [&](PlacedBuffers<Scalar>& b) {
      Scalar* dw = b.place(weight);
      Scalar* db = b.place(bias);
      const Scalar *d = b.place(dout), *x = b.place(inp);
      HeapOffset heap(b.heap_offset_bytes());
      cpu::matmul_backward_weight(dw, db, d, x, c.M, c.K, c.N);
      return Outputs<Scalar>{read(dw, NK), read(db, static_cast<std::size_t>(c.N))};
    });
  }
}

// ---- attention --------------------------------------------------------------------------------
template <typename Scalar>
void check_attention() {
  struct Case { int B, T, Hq, Hkv, D; };
  // MHA over two row blocks with heads at odd offsets; GQA per kv head; GQA with fewer kv tasks
  // than threads (private dk/dv scratch); large enough to run on two threads.
  for (const Case c : {Case{2, 70, 3, 3, 12}, Case{2, 37, 4, 2, 8}, Case{1, 21, 4, 1, 7}, Case{2, 130, 4, 4, 16}}) {
    const std::size_t qkv_n = static_cast<std::size_t>(c.B) * c.T * (c.Hq + 2 * c.Hkv) * c.D;
    const std::size_t out_n = static_cast<std::size_t>(c.B) * c.T * c.Hq * c.D;
    const std::size_t lse_n = static_cast<std::size_t>(c.B) * c.Hq * c.T;
    const auto qkv = values<Scalar>(qkv_n, 11, -2.0, 2.0);
    const auto dout = values<Scalar>(out_n, 12);
    const std::string s = shape({{"B", c.B}, {"T", c.T}, {"Hq", c.Hq}, {"Hkv", c.Hkv}, {"D", c.D}});
    expect_placement_independent<Scalar>("attention " + s, [&](PlacedBuffers<Scalar>& b) {
      const Scalar* x = b.place(qkv);
      Scalar* out = b.place(out_n, Scalar(7));
      Scalar* lse = b.place(lse_n, Scalar(7));
      const Scalar* d = b.place(dout);
      Scalar* dqkv = b.place(qkv_n, Scalar(7));
      HeapOffset heap(b.heap_offset_bytes());
      cpu::attention_forward(out, lse, x, c.B, c.T, c.Hq, c.Hkv, c.D);
      cpu::attention_backward(dqkv, d, x, out, lse, c.B, c.T, c.Hq, c.Hkv, c.D);
      return Outputs<Scalar>{read(out, out_n), read(lse, lse_n), read(dqkv, qkv_n)};
    });
  }
}

// ---- cross-entropy ----------------------------------------------------------------------------
template <typename Scalar>
void check_cross_entropy() {
  struct Case { int M, V, valid; };
  for (const Case c : {Case{7, 103, 100}, Case{9, 1000, 1000}, Case{300, 2053, 2000}}) {
    const std::size_t MV = static_cast<std::size_t>(c.M) * c.V;
    const auto logits = values<Scalar>(MV, 21, -4.0, 4.0);
    std::vector<std::int32_t> targets = random_tokens(static_cast<std::size_t>(c.M), 0, c.valid, 22);
    targets[1] = -1;  // an ignored row
    const std::string s = shape({{"M", c.M}, {"V", c.V}, {"valid", c.valid}});
    const auto M = static_cast<std::size_t>(c.M);
    expect_placement_independent<Scalar>("cross_entropy " + s, [&](PlacedBuffers<Scalar>& b) {
      const Scalar* x = b.place(logits);
      const std::int32_t* t = b.place_tokens(targets);
      Scalar* losses = b.place(M, Scalar(7));
      Scalar* lse = b.place(M, Scalar(7));
      Scalar* dlogits = b.place(MV, Scalar(7));
      Scalar* in_place = b.place(logits);
      HeapOffset heap(b.heap_offset_bytes());
      const double mean = cpu::cross_entropy_forward(losses, lse, x, t, c.M, c.V, c.valid);
      cpu::cross_entropy_backward(dlogits, x, lse, t, Scalar(0.125), c.M, c.V, c.valid);
      cpu::cross_entropy_backward(in_place, in_place, lse, t, Scalar(0.125), c.M, c.V, c.valid);
      return Outputs<Scalar>{read(losses, M), read(lse, M), read(dlogits, MV), read(in_place, MV),
                             {static_cast<Scalar>(mean)}};
    });
    // One vocabulary shard [start, start + V_local) as tensor parallelism uses it.
    const int start = c.V / 3, V_local = c.V - c.V / 3;
    const auto shard = values<Scalar>(M * V_local, 23, -4.0, 4.0);
    const auto global_max = values<Scalar>(M, 24, 3.0, 4.0);
    const auto global_lse = values<Scalar>(M, 25, 6.0, 7.0);
    expect_placement_independent<Scalar>("vocab_parallel " + s, [&](PlacedBuffers<Scalar>& b) {
      const Scalar* x = b.place(shard);
      const std::int32_t* t = b.place_tokens(targets);
      const Scalar *gmax = b.place(global_max), *glse = b.place(global_lse);
      Scalar* local_max = b.place(M, Scalar(7));
      Scalar* local_sum = b.place(M, Scalar(7));
      Scalar* target = b.place(M, Scalar(7));
      Scalar* dlogits = b.place(M * V_local, Scalar(7));
      HeapOffset heap(b.heap_offset_bytes());
      cpu::vocab_parallel_max(local_max, x, c.M, V_local, start, c.valid);
      cpu::vocab_parallel_sum_exp(local_sum, x, gmax, c.M, V_local, start, c.valid);
      cpu::vocab_parallel_target_logit(target, x, t, c.M, V_local, start);
      cpu::vocab_parallel_backward(dlogits, x, glse, t, Scalar(0.125), c.M, V_local, start, c.valid);
      return Outputs<Scalar>{read(local_max, M), read(local_sum, M), read(target, M), read(dlogits, M * V_local)};
    });
  }
}

// ---- normalization ----------------------------------------------------------------------------
template <typename Scalar>
void check_normalization() {
  struct Case { int M, C; };
  // Odd widths; the last is large enough for the backward's two-thread weight-gradient split.
  for (const Case c : {Case{9, 37}, Case{33, 768}, Case{700, 401}}) {
    const std::size_t MC = static_cast<std::size_t>(c.M) * c.C;
    const auto M = static_cast<std::size_t>(c.M), C = static_cast<std::size_t>(c.C);
    const auto inp = values<Scalar>(MC, 31, -2.0, 3.0);
    const auto weight = values<Scalar>(C, 32, 0.5, 1.5);
    const auto bias = values<Scalar>(C, 33);
    const auto dout = values<Scalar>(MC, 34);
    const std::string s = shape({{"M", c.M}, {"C", c.C}});
    expect_placement_independent<Scalar>("layernorm " + s, [&](PlacedBuffers<Scalar>& b) {
      const Scalar *x = b.place(inp), *w = b.place(weight), *bi = b.place(bias), *d = b.place(dout);
      Scalar* out = b.place(MC, Scalar(7));
      Scalar* mean = b.place(M, Scalar(7));
      Scalar* rstd = b.place(M, Scalar(7));
      Scalar* dinp = b.place(MC, Scalar(7));
      Scalar* dinp_acc = b.place(dout);
      Scalar* dw = b.place(weight);
      Scalar* db = b.place(bias);
      HeapOffset heap(b.heap_offset_bytes());
      cpu::layernorm_forward(out, mean, rstd, x, w, bi, c.M, c.C);
      cpu::layernorm_backward(dinp, dw, db, d, x, w, mean, rstd, c.M, c.C, false);
      cpu::layernorm_backward(dinp_acc, static_cast<Scalar*>(nullptr), static_cast<Scalar*>(nullptr), d, x, w,
                              mean, rstd, c.M, c.C, true);
      return Outputs<Scalar>{read(out, MC), read(mean, M), read(rstd, M), read(dinp, MC), read(dinp_acc, MC),
                             read(dw, C), read(db, C)};
    });
    expect_placement_independent<Scalar>("rmsnorm " + s, [&](PlacedBuffers<Scalar>& b) {
      const Scalar *x = b.place(inp), *w = b.place(weight), *d = b.place(dout);
      Scalar* out = b.place(MC, Scalar(7));
      Scalar* rstd = b.place(M, Scalar(7));
      Scalar* dinp = b.place(MC, Scalar(7));
      Scalar* dinp_acc = b.place(dout);
      Scalar* dw = b.place(weight);
      HeapOffset heap(b.heap_offset_bytes());
      cpu::rmsnorm_forward(out, rstd, x, w, c.M, c.C);
      cpu::rmsnorm_backward(dinp, dw, d, x, w, rstd, c.M, c.C, false);
      cpu::rmsnorm_backward(dinp_acc, dw, d, x, w, rstd, c.M, c.C, true);
      return Outputs<Scalar>{read(out, MC), read(rstd, M), read(dinp, MC), read(dinp_acc, MC), read(dw, C)};
    });
  }
}

// ---- activations, RoPE, embedding -------------------------------------------------------------
template <typename Scalar>
void check_activations() {
  // Several 4096-element chunks plus a ragged tail; the large one runs on two threads.
  for (const std::size_t n : {std::size_t{37}, std::size_t{3 * 4096 + 37}, std::size_t{300007}}) {
    const auto inp = values<Scalar>(n, 41, -4.0, 4.0);
    const auto dout = values<Scalar>(n, 42);
    expect_placement_independent<Scalar>("gelu n=" + std::to_string(n), [&](PlacedBuffers<Scalar>& b) {
      const Scalar *x = b.place(inp), *d = b.place(dout);
      Scalar* out = b.place(n, Scalar(7));
      Scalar* dinp = b.place(n, Scalar(7));
      Scalar* dinp_acc = b.place(dout);
      HeapOffset heap(b.heap_offset_bytes());
      cpu::gelu_forward(out, x, n);
      cpu::gelu_backward(dinp, x, d, n, false);
      cpu::gelu_backward(dinp_acc, x, d, n, true);
      return Outputs<Scalar>{read(out, n), read(dinp, n), read(dinp_acc, n)};
    });
  }
  for (const auto& sizes : {std::pair{5, 37}, std::pair{300, 1001}}) {
    const int M = sizes.first, F = sizes.second;  // not a structured binding: lambdas capture them
    const std::size_t in_n = static_cast<std::size_t>(M) * 2 * F, out_n = static_cast<std::size_t>(M) * F;
    const auto inp = values<Scalar>(in_n, 43, -4.0, 4.0);
    const auto dout = values<Scalar>(out_n, 44);
    expect_placement_independent<Scalar>("swiglu " + shape({{"M", M}, {"F", F}}), [&](PlacedBuffers<Scalar>& b) {
      const Scalar *x = b.place(inp), *d = b.place(dout);
      Scalar* out = b.place(out_n, Scalar(7));
      Scalar* dinp = b.place(in_n, Scalar(7));
      Scalar* dinp_acc = b.place(inp);
      HeapOffset heap(b.heap_offset_bytes());
      cpu::swiglu_forward(out, x, M, F);
      cpu::swiglu_backward(dinp, x, d, M, F, false);
      cpu::swiglu_backward(dinp_acc, x, d, M, F, true);
      return Outputs<Scalar>{read(out, out_n), read(dinp, in_n), read(dinp_acc, in_n)};
    });
  }
}

template <typename Scalar>
void check_rope_and_embedding() {
  const int B = 2, T = 9, Hq = 4, Hkv = 2, D = 12;
  const std::size_t qkv_n = static_cast<std::size_t>(B) * T * (Hq + 2 * Hkv) * D;
  const auto qkv = values<Scalar>(qkv_n, 51);
  expect_placement_independent<Scalar>("rope", [&](PlacedBuffers<Scalar>& b) {
    Scalar* x = b.place(qkv);
    Scalar* y = b.place(qkv);
    HeapOffset heap(b.heap_offset_bytes());
    cpu::rope_forward(x, B, T, Hq, Hkv, D, 10000.0, 3);
    cpu::rope_backward(y, B, T, Hq, Hkv, D, 10000.0, 3);
    return Outputs<Scalar>{read(x, qkv_n), read(y, qkv_n)};
  });

  const int C = 37, V = 50;
  const std::size_t out_n = static_cast<std::size_t>(B) * T * C;
  const auto tokens = random_tokens(static_cast<std::size_t>(B) * T, 0, V, 52);
  const auto table = values<Scalar>(static_cast<std::size_t>(V) * C, 53);
  const auto positions = values<Scalar>(static_cast<std::size_t>(T) * C, 54);
  const auto dout = values<Scalar>(out_n, 55);
  expect_placement_independent<Scalar>("embedding", [&](PlacedBuffers<Scalar>& b) {
    const std::int32_t* t = b.place_tokens(tokens);
    const Scalar *wte = b.place(table), *wpe = b.place(positions), *d = b.place(dout);
    Scalar* out = b.place(out_n, Scalar(7));
    Scalar* dwte = b.place(table);
    Scalar* dwpe = b.place(positions);
    HeapOffset heap(b.heap_offset_bytes());
    cpu::embedding_forward(out, t, wte, wpe, B, T, C, 0, V);
    cpu::embedding_backward(dwte, dwpe, d, t, B, T, C, 0, V);
    return Outputs<Scalar>{read(out, out_n), read(dwte, table.size()), read(dwpe, positions.size())};
  });
}

// ---- element-wise and AdamW -------------------------------------------------------------------
template <typename Scalar>
void check_elementwise() {
  for (const std::size_t n : {std::size_t{1037}, std::size_t{3000017}}) {
    const auto a = values<Scalar>(n, 61), c = values<Scalar>(n, 62);
    expect_placement_independent<Scalar>("elementwise n=" + std::to_string(n), [&](PlacedBuffers<Scalar>& b) {
      const Scalar *x = b.place(a), *y = b.place(c);
      Scalar* out = b.place(n, Scalar(7));
      Scalar* acc = b.place(a);
      Scalar* scaled = b.place(a);
      HeapOffset heap(b.heap_offset_bytes());
      cpu::residual_forward(out, x, y, n);
      cpu::add_in_place(acc, y, n);
      cpu::scale_in_place(scaled, n, Scalar(0.3));
      const double squares = cpu::sum_of_squares(x, n);
      return Outputs<Scalar>{read(out, n), read(acc, n), read(scaled, n), {static_cast<Scalar>(squares)}};
    });
  }
}

void check_adamw() {
  for (const std::size_t n : {std::size_t{1037}, std::size_t{300007}}) {
    const auto param = values<float>(n, 71), grad = values<float>(n, 72);
    const auto m = values<float>(n, 73, -0.1, 0.1), v = values<float>(n, 74, 0.0, 0.01);
    expect_placement_independent<float>("adamw n=" + std::to_string(n), [&](PlacedBuffers<float>& b) {
      float* p = b.place(param);
      const float* g = b.place(grad);
      float *mm = b.place(m), *vv = b.place(v);
      HeapOffset heap(b.heap_offset_bytes());
      cpu::adamw_update(p, g, mm, vv, n, 6e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 3);
      return Outputs<float>{read(p, n), read(mm, n), read(vv, n)};
    });
  }
}

TEST(AlignmentInvariance, Matmul) { check_matmul<float>(); }
TEST(AlignmentInvariance, Attention) {
  check_attention<float>();
  check_attention<double>();
}
TEST(AlignmentInvariance, CrossEntropy) {
  check_cross_entropy<float>();
  check_cross_entropy<double>();
}
TEST(AlignmentInvariance, Normalization) { check_normalization<float>(); }
TEST(AlignmentInvariance, Activations) { check_activations<float>(); }
TEST(AlignmentInvariance, RopeAndEmbedding) { check_rope_and_embedding<float>(); }
TEST(AlignmentInvariance, Elementwise) { check_elementwise<float>(); }
TEST(AlignmentInvariance, AdamW) { check_adamw(); }

}  // namespace
}  // namespace tandem::kernels
