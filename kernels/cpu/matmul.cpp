#include "kernels/cpu/matmul.hpp"

#include <algorithm>
#include <omp.h>

#include "kernels/cpu/detail/eigen_views.hpp"

namespace tandem::kernels::cpu {

using detail::ConstMatrixView;
using detail::ConstStridedMatrixView;
using detail::MatrixView;
using detail::StridedMatrixView;

namespace {

// Threads for a GEMM whose output has `columns` columns split between them: every thread gets
// at least 64 columns (Eigen's packing would dominate thinner blocks) and only GEMMs of a few
// MFLOP or more are split at all.
int gemm_threads(long columns, double flops) {
  const int threads = kernel_threads();
  if (threads <= 1 || flops < 4e6) return 1;
  return static_cast<int>(std::max(1L, std::min<long>(threads, columns / 64)));
}

// Runs body(first, count) for `threads` contiguous column blocks of [0, columns), each on its
// own OpenMP thread. Inside the parallel region every Eigen product runs single-threaded (Eigen
// checks omp_in_parallel), so the GEMM itself is Eigen's and the threads never wait on each
// other inside it — Eigen's own threaded GEMM synchronises its threads between panels, which
// stalls whenever a core is shared with another process.
template <typename Body>
void for_column_blocks(long columns, int threads, Body&& body) {
  if (threads <= 1) {
    body(0L, columns);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const long t = omp_get_thread_num();
    // Column blocks rounded to multiples of 16 floats (a cache line pair) except the last.
    const long block = ((columns + threads - 1) / threads + 15) / 16 * 16;
    const long first = std::min(columns, t * block);
    const long last = std::min(columns, first + block);
    if (last > first) body(first, last - first);
  }
}

}  // namespace

// out (M,N) = inp (M,K) · weight (N,K)ᵀ [+ bias]: thread t computes output columns [j0, j1),
// i.e. inp · weight[j0:j1, :]ᵀ.
template <typename Scalar>
void matmul_forward(Scalar* out, const Scalar* inp, const Scalar* weight, const Scalar* bias, int M, int K, int N) {
  ConstMatrixView<Scalar> a(inp, M, K);
  const int threads = gemm_threads(N, 2.0 * M * N * K);
  for_column_blocks(N, threads, [&](long first, long count) {
    ConstMatrixView<Scalar> w(weight + first * K, count, K);
    StridedMatrixView<Scalar> o(out + first, M, count, Eigen::OuterStride<>(N));
    if (bias != nullptr) {
      // Start from the broadcast bias and let the GEMM accumulate onto it: one pass over out.
      Eigen::Map<const Eigen::Matrix<Scalar, 1, Eigen::Dynamic>> b(bias + first, count);
      o.rowwise() = b;
      o.noalias() += a * w.transpose();
    } else {
      o.noalias() = a * w.transpose();
    }
  });
}

// dinp (M,K) [+]= dout (M,N) · weight (N,K): thread t computes dinp columns [k0, k1), i.e.
// dout · weight[:, k0:k1].
template <typename Scalar>
void matmul_backward_input(Scalar* dinp, const Scalar* dout, const Scalar* weight, int M, int K, int N,
                           bool accumulate) {
  ConstMatrixView<Scalar> d(dout, M, N);
  const int threads = gemm_threads(K, 2.0 * M * N * K);
  for_column_blocks(K, threads, [&](long first, long count) {
    ConstStridedMatrixView<Scalar> w(weight + first, N, count, Eigen::OuterStride<>(K));
    StridedMatrixView<Scalar> di(dinp + first, M, count, Eigen::OuterStride<>(K));
    if (accumulate) {
      di.noalias() += d * w;
    } else {
      di.noalias() = d * w;
    }
  });
}

// dweight (N,K) += dout (M,N)ᵀ · inp (M,K): thread t computes dweight columns [k0, k1), i.e.
// doutᵀ · inp[:, k0:k1].
template <typename Scalar>
void matmul_backward_weight(Scalar* dweight, Scalar* dbias, const Scalar* dout, const Scalar* inp, int M, int K,
                            int N) {
  ConstMatrixView<Scalar> d(dout, M, N);
  const int threads = gemm_threads(K, 2.0 * M * N * K);
  for_column_blocks(K, threads, [&](long first, long count) {
    ConstStridedMatrixView<Scalar> a(inp + first, M, count, Eigen::OuterStride<>(K));
    StridedMatrixView<Scalar> dw(dweight + first, N, count, Eigen::OuterStride<>(K));
    dw.noalias() += d.transpose() * a;
  });
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
