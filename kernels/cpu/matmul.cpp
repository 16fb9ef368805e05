#include "kernels/cpu/matmul.hpp"

#include <algorithm>
#include <type_traits>

#include "kernels/cpu/detail/eigen_views.hpp"
#include "kernels/cpu/detail/sgemm.hpp"

namespace tandem::kernels::cpu {

using detail::ConstMatrixView;
using detail::MatrixView;

namespace {
// float on an AVX2+FMA build: the packed GEMM (detail/sgemm.hpp); otherwise Eigen.
template <typename Scalar>
bool use_packed_sgemm() {
  if constexpr (std::is_same_v<Scalar, float>) {
    return detail::packed_sgemm_available();
  } else {
    return false;
  }
}
}  // namespace

template <typename Scalar>
void matmul_forward(Scalar* out, const Scalar* inp, const Scalar* weight, const Scalar* bias, int M, int K, int N) {
  if constexpr (std::is_same_v<Scalar, float>) {
    if (use_packed_sgemm<Scalar>()) {
      if (bias != nullptr) {
        for (int i = 0; i < M; ++i) std::copy(bias, bias + N, out + static_cast<long>(i) * N);
      }
      // out (M,N) [+]= inp (M,K) · weightᵀ: b(k,j) = weight[j·K + k].
      detail::packed_sgemm(M, N, K, inp, K, false, weight, K, true, out, N, bias != nullptr,
                           kernel_threads());
      return;
    }
  }
  detail::sync_eigen_threads();
  ConstMatrixView<Scalar> a(inp, M, K);
  ConstMatrixView<Scalar> w(weight, N, K);
  MatrixView<Scalar> o(out, M, N);
  if (bias != nullptr) {
    // Start from the broadcast bias and let the GEMM accumulate onto it (beta = 1): one pass
    // over out instead of a GEMM pass plus a bias pass.
    Eigen::Map<const Eigen::Matrix<Scalar, 1, Eigen::Dynamic>> b(bias, N);
    o.rowwise() = b;
    o.noalias() += a * w.transpose();
  } else {
    o.noalias() = a * w.transpose();
  }
}

template <typename Scalar>
void matmul_backward_input(Scalar* dinp, const Scalar* dout, const Scalar* weight, int M, int K, int N,
                           bool accumulate) {
  if constexpr (std::is_same_v<Scalar, float>) {
    if (use_packed_sgemm<Scalar>()) {
      // dinp (M,K) [+]= dout (M,N) · weight (N,K): a(i,r) = dout[i·N + r], b(r,j) = weight[r·K + j].
      detail::packed_sgemm(M, K, N, dout, N, false, weight, K, false, dinp, K, accumulate,
                           kernel_threads());
      return;
    }
  }
  detail::sync_eigen_threads();
  ConstMatrixView<Scalar> d(dout, M, N);
  ConstMatrixView<Scalar> w(weight, N, K);
  MatrixView<Scalar> di(dinp, M, K);
  if (accumulate) {
    di.noalias() += d * w;
  } else {
    di.noalias() = d * w;
  }
}

template <typename Scalar>
void matmul_backward_weight(Scalar* dweight, Scalar* dbias, const Scalar* dout, const Scalar* inp, int M, int K,
                            int N) {
  ConstMatrixView<Scalar> d(dout, M, N);
  bool done = false;
  if constexpr (std::is_same_v<Scalar, float>) {
    if (use_packed_sgemm<Scalar>()) {
      // dweight (N,K) += doutᵀ · inp: a(i,r) = dout[r·N + i], b(r,j) = inp[r·K + j].
      detail::packed_sgemm(N, K, M, dout, N, true, inp, K, false, dweight, K, true,
                           kernel_threads());
      done = true;
    }
  }
  if (!done) {
    detail::sync_eigen_threads();
    ConstMatrixView<Scalar> a(inp, M, K);
    MatrixView<Scalar> dw(dweight, N, K);
    dw.noalias() += d.transpose() * a;
  }
  if (dbias != nullptr) {
    Eigen::Map<Eigen::Matrix<Scalar, 1, Eigen::Dynamic>> db(dbias, N);
    db += d.colwise().sum();
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
