#include "kernels/cpu/matmul.hpp"

#include "kernels/cpu/detail/eigen_views.hpp"

namespace tandem::kernels::cpu {

using detail::ConstMatrixView;
using detail::MatrixView;

template <typename Scalar>
void matmul_forward(Scalar* out, const Scalar* inp, const Scalar* weight, const Scalar* bias, int M, int K, int N) {
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
  detail::sync_eigen_threads();
  ConstMatrixView<Scalar> d(dout, M, N);
  ConstMatrixView<Scalar> a(inp, M, K);
  MatrixView<Scalar> dw(dweight, N, K);
  dw.noalias() += d.transpose() * a;
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
