#pragma once
// Private to kernels/cpu/*.cpp: vectorised loops whose SIMD/scalar split is decided by element
// INDEX, never by the address of the caller's buffers.
//
// Eigen vectorises an assignment to memory of unknown alignment with scalar code up to the first
// aligned address, and a sum directly over such memory the same way. Its scalar and SIMD exp()
// round differently, and a sum's order changes with the split, so the same kernel on the same
// values would give different last bits depending on where a buffer happens to lie — and a
// training run would depend on the heap's history (a resumed run would not reproduce an
// uninterrupted one bit for bit). Rules for the kernels (checked by
// tests/kernels/test_alignment_invariance.cpp):
//   - an Eigen expression with exp/log (anything whose scalar and SIMD versions differ) is
//     assigned to caller memory through assign_by_index;
//   - a sum over caller memory goes through sum_by_index (a sum over an expression such as
//     (x - m).square() is already in index order: Eigen starts such reductions at index 0);
//   - scratch a kernel vectorises over is an AlignedScratch with rows padded to whole cache lines
//     (padded_row), so every row starts at an aligned address.

#include <Eigen/Core>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace tandem::kernels::cpu::detail {

constexpr std::size_t kCacheLine = 64;
// Elements per block of the *_by_index loops (1 KiB of floats: stays in L1 next to the inputs).
constexpr Eigen::Index kIndexBlock = 256;

template <typename Scalar>
using AlignedArrayMap = Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>, Eigen::Aligned64>;

// dst[i] = expression element i for i in [0, n), where make(begin, count) returns the Eigen
// array expression of elements [begin, begin + count). Each block is evaluated into 64-byte
// aligned scratch (so Eigen's SIMD part is [0, count rounded down to packets) of every block) and
// copied out. dst may be an input of the expression (element-wise: each block is read before it
// is written).
template <typename Scalar, typename Make>
void assign_by_index(Scalar* dst, Eigen::Index n, Make&& make) {
  alignas(kCacheLine) Scalar block[kIndexBlock];
  for (Eigen::Index begin = 0; begin < n; begin += kIndexBlock) {
    const Eigen::Index count = std::min(kIndexBlock, n - begin);
    AlignedArrayMap<Scalar>(block, count) = make(begin, count);
    std::copy_n(block, count, dst + begin);
  }
}

// Σ x[i] over [0, n), in an order fixed by the indices.
template <typename Scalar>
Scalar sum_by_index(const Scalar* x, Eigen::Index n) {
  alignas(kCacheLine) Scalar block[kIndexBlock];
  Scalar total(0);
  for (Eigen::Index begin = 0; begin < n; begin += kIndexBlock) {
    const Eigen::Index count = std::min(kIndexBlock, n - begin);
    std::copy_n(x + begin, count, block);
    total += AlignedArrayMap<Scalar>(block, count).sum();
  }
  return total;
}

// Elements per row of a scratch matrix with `columns` columns whose rows all start on a cache line.
template <typename Scalar>
constexpr Eigen::Index padded_row(Eigen::Index columns) {
  constexpr auto per_line = static_cast<Eigen::Index>(kCacheLine / sizeof(Scalar));
  return (columns + per_line - 1) / per_line * per_line;
}

// A cache-line aligned scratch buffer (the kernels' own memory: its alignment is theirs, not the
// heap's).
template <typename Scalar>
class AlignedScratch {
 public:
  explicit AlignedScratch(std::size_t n) {
    const std::size_t bytes = std::max<std::size_t>(1, (n * sizeof(Scalar) + kCacheLine - 1) / kCacheLine) * kCacheLine;
    data_ = static_cast<Scalar*>(std::aligned_alloc(kCacheLine, bytes));
    if (data_ == nullptr) throw std::bad_alloc();
  }
  ~AlignedScratch() { std::free(data_); }
  AlignedScratch(const AlignedScratch&) = delete;
  AlignedScratch& operator=(const AlignedScratch&) = delete;
  Scalar* data() const { return data_; }

 private:
  Scalar* data_ = nullptr;
};

}  // namespace tandem::kernels::cpu::detail
