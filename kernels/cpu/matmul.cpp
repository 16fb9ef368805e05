#include "kernels/cpu/matmul.hpp"

#include <algorithm>
#include <omp.h>
#include <vector>

#include "kernels/cpu/detail/eigen_views.hpp"
#include "strategy/cpu_threading.hpp"

namespace tandem::kernels::cpu {

using detail::ConstMatrixView;
using detail::ConstStridedMatrixView;
using detail::MatrixView;
using detail::StridedMatrixView;

namespace {

// Eigen's GEMM takes its blocking from the L1 size it is told: the depth block kc is what fits
// an mr×kc lhs panel and a kc×nr rhs panel in L1 (with the real 32 KiB, kc = 264 for K = 768:
// three sweeps over the output), and only when kc covers the whole depth does it also block the
// rows of the lhs so that its packed block stays in L2 — otherwise it packs every row of the
// lhs at once (the 50304-row lm-head weight: a 53 MB packed block per sweep, from and to
// memory). Telling Eigen 96 KiB gives kc = K for K = 768 (one sweep), rows blocked to ~L2 (mc =
// 168) and the small operand packed once: GPT-2 124M's GEMMs took 7.6% less CPU time at B·T =
// 256 and 9% less at 2048 on one core (forward GEMMs 15–25% less), measured against the
// detected 32 KiB. (The lhs micro-panel then streams from L2, which the kernel's prefetching
// hides.) Valid range for these shapes: kc = 768 needs ≥ 86.4 KiB; above ~126 KiB Eigen blocks
// the 256 output columns instead of the rows again.
constexpr std::ptrdiff_t kEigenBlockingL1Bytes = 96 * 1024;

void tune_eigen_blocking() {
  static const bool tuned = [] {
    Eigen::setCpuCacheSizes(kEigenBlockingL1Bytes, Eigen::l2CacheSize(), Eigen::l3CacheSize());
    return true;
  }();
  (void)tuned;
}

// Threads for a GEMM whose output is split along a dimension of `extent` (the rule lives in the
// strategy layer so that the twin's cpu cost model uses it too).
int gemm_threads(long extent, double flops) {
  return strategy::cpu_threading::gemm_threads(kernel_threads(), extent, flops);
}

// Runs body(first, count) for `threads` contiguous blocks of [0, extent) — output rows or output
// columns — each on its own OpenMP thread. Inside the parallel region every Eigen product runs
// single-threaded (Eigen checks omp_in_parallel), so the GEMM itself is Eigen's and the threads
// never wait on each other inside it — Eigen's own threaded GEMM synchronises its threads
// between panels, which stalls whenever a core is shared with another process.
//
// Which dimension: each thread packs the operand its block needs in full (the "shared" one) and
// its own slice of the other, so the split is along the dimension that leaves the SMALLER
// operand shared (the lm-head's weight gradient split by vocabulary rows packs 1/threads of the
// 51 MB logit gradient per thread instead of all of it). Only the output is split, never the
// depth: every output element is summed in the same order whatever the thread count.
template <typename Body>
void for_blocks(long extent, int threads, Body&& body) {
  if (threads <= 1) {
    body(0L, extent);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const long t = omp_get_thread_num();
    const long block = strategy::cpu_threading::split_block(extent, threads);
    const long first = std::min(extent, t * block);
    const long last = std::min(extent, first + block);
    if (last > first) body(first, last - first);
  }
}

// Output columns per Eigen product in matmul_forward: the column-major scratch block (rows ×
// 1024) stays in L2 at B·T = 256 rows; measured on one core, 512–2048 ran within 2% of each other.
constexpr long kForwardColumnChunk = 1024;

// dst (rows × cols, row-major, row stride ld) = src (rows × cols, column-major, packed), in
// strips of 16 columns so that every row of a strip is one contiguous write.
template <typename Scalar>
void transpose_into(Scalar* dst, long ld, const Scalar* src, long rows, long cols) {
  constexpr long kStrip = 16;
  for (long j = 0; j < cols; j += kStrip) {
    const long width = std::min(kStrip, cols - j);
    for (long r = 0; r < rows; ++r) {
      Scalar* row = dst + r * ld + j;
      const Scalar* column = src + j * rows + r;
      for (long jj = 0; jj < width; ++jj) row[jj] = column[jj * rows];
    }
  }
}

}  // namespace

// out (M,N) = inp (M,K) · weight (N,K)ᵀ [+ bias]. Split by output columns (thread t: inp ·
// weight[j0:j1, :]ᵀ, inp shared) unless inp is the larger operand (M > N), then by rows (thread
// t: inp[i0:i1, :] · weightᵀ, weight shared).
//
// Eigen evaluates a product into a row-major destination as its transpose, which makes the
// row-major weight its left operand, and packing a row-major left operand is Eigen's slow path:
// GPT-2's forward GEMMs ran at 59–72 GFLOP/s on one core against 90–100 for the backward ones of
// the same size (256×768×50304, 256×768×3072, 256×3072×768). So each thread computes its block
// in column chunks into a column-major scratch, where the weight is the right operand and inp
// the left, and transposes each chunk into out while it is still in cache: 96–101 GFLOP/s for
// those shapes, the transpose included.
template <typename Scalar>
void matmul_forward(Scalar* out, const Scalar* inp, const Scalar* weight, const Scalar* bias, int M, int K, int N) {
  tune_eigen_blocking();
  using ColumnMajor = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
  auto block = [&](long row0, long rows, long col0, long cols) {
    thread_local std::vector<Scalar> scratch;
    const long chunk = std::min(cols, kForwardColumnChunk);
    if (static_cast<long>(scratch.size()) < rows * chunk) scratch.resize(rows * chunk);
    ConstMatrixView<Scalar> a(inp + row0 * K, rows, K);
    for (long c = 0; c < cols; c += chunk) {
      const long n = std::min(chunk, cols - c);
      Eigen::Map<ColumnMajor> t(scratch.data(), rows, n);
      ConstMatrixView<Scalar> w(weight + (col0 + c) * K, n, K);
      if (bias != nullptr) {
        // Start from the broadcast bias and let the GEMM accumulate onto it: one pass over t.
        Eigen::Map<const Eigen::Matrix<Scalar, 1, Eigen::Dynamic>> b(bias + col0 + c, n);
        t.rowwise() = b;
        t.noalias() += a * w.transpose();
      } else {
        t.noalias() = a * w.transpose();
      }
      transpose_into(out + row0 * N + col0 + c, N, scratch.data(), rows, n);
    }
  };
  const double flops = 2.0 * M * N * K;
  if (M <= N) {
    for_blocks(N, gemm_threads(N, flops), [&](long first, long count) { block(0, M, first, count); });
  } else {
    for_blocks(M, gemm_threads(M, flops), [&](long first, long count) { block(first, count, 0, N); });
  }
}

// dinp (M,K) [+]= dout (M,N) · weight (N,K). Split by dinp columns (thread t: dout ·
// weight[:, k0:k1], dout shared) unless dout is the larger operand (M > K), then by rows (thread
// t: dout[i0:i1, :] · weight, weight shared).
template <typename Scalar>
void matmul_backward_input(Scalar* dinp, const Scalar* dout, const Scalar* weight, int M, int K, int N,
                           bool accumulate) {
  tune_eigen_blocking();
  auto block = [&](long row0, long rows, long col0, long cols) {
    ConstMatrixView<Scalar> d(dout + row0 * N, rows, N);
    ConstStridedMatrixView<Scalar> w(weight + col0, N, cols, Eigen::OuterStride<>(K));
    StridedMatrixView<Scalar> di(dinp + row0 * K + col0, rows, cols, Eigen::OuterStride<>(K));
    if (accumulate) {
      di.noalias() += d * w;
    } else {
      di.noalias() = d * w;
    }
  };
  const double flops = 2.0 * M * N * K;
  if (M <= K) {
    for_blocks(K, gemm_threads(K, flops), [&](long first, long count) { block(0, M, first, count); });
  } else {
    for_blocks(M, gemm_threads(M, flops), [&](long first, long count) { block(first, count, 0, K); });
  }
}

// dweight (N,K) += dout (M,N)ᵀ · inp (M,K). Split by dweight rows (thread t: dout[:, j0:j1]ᵀ ·
// inp, inp shared) when inp is the smaller operand (K <= N), else by columns (thread t: doutᵀ ·
// inp[:, k0:k1], dout shared).
template <typename Scalar>
void matmul_backward_weight(Scalar* dweight, Scalar* dbias, const Scalar* dout, const Scalar* inp, int M, int K,
                            int N) {
  tune_eigen_blocking();
  auto block = [&](long row0, long rows, long col0, long cols) {
    ConstStridedMatrixView<Scalar> d(dout + row0, M, rows, Eigen::OuterStride<>(N));
    ConstStridedMatrixView<Scalar> a(inp + col0, M, cols, Eigen::OuterStride<>(K));
    StridedMatrixView<Scalar> dw(dweight + row0 * K + col0, rows, cols, Eigen::OuterStride<>(K));
    dw.noalias() += d.transpose() * a;
  };
  const double flops = 2.0 * M * N * K;
  if (K <= N) {
    for_blocks(N, gemm_threads(N, flops), [&](long first, long count) { block(first, count, 0, K); });
  } else {
    for_blocks(K, gemm_threads(K, flops), [&](long first, long count) { block(0, N, first, count); });
  }
  if (dbias != nullptr) {
    // Rows in order, one add per element and row: the same bits wherever dbias lies (Eigen's
    // colwise().sum() splits its SIMD part by dbias's address and sums in another order there).
    for (int i = 0; i < M; ++i) {
      const Scalar* row = dout + static_cast<std::int64_t>(i) * N;
#pragma omp simd
      for (int j = 0; j < N; ++j) dbias[j] += row[j];
    }
  }
}

template void matmul_forward<float>(float*, const float*, const float*, const float*, int, int,
                                    int);
template void matmul_forward<double>(double*, const double*, const double*, const double*, int,
                                     int, int);
template void matmul_backward_input<float>(float*, const float*, const float*, int, int, int, bool);
template void matmul_backward_input<double>(double*, const double*, const double*, int, int, int,
                                            bool);
template void matmul_backward_weight<float>(float*, float*, const float*, const float*, int, int,
                                            int);
template void matmul_backward_weight<double>(double*, double*, const double*, const double*, int,
                                             int, int);

}  // namespace tandem::kernels::cpu
