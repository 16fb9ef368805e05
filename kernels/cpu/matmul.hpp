#pragma once
// Linear layer (PyTorch nn.Linear layout): out = inp · weightᵀ + bias.
//
// All matrices are row-major and dense. The GEMMs run through Eigen on kernel_threads() threads
// (threading.hpp). Instantiated for float and double.

namespace tandem::kernels::cpu {

// out is (M,N), inp is (M,K), weight is (N,K), bias is (N) or nullptr.
// out = inp · weightᵀ (+ bias broadcast over rows). out must not alias inp or weight.
template <typename Scalar>
void matmul_forward(Scalar* out, const Scalar* inp, const Scalar* weight, const Scalar* bias, int M, int K, int N);

// Input gradient. dinp is (M,K), dout is (M,N), weight is (N,K).
// dinp = dout · weight, or dinp += dout · weight when accumulate is true.
template <typename Scalar>
void matmul_backward_input(Scalar* dinp, const Scalar* dout, const Scalar* weight, int M, int K, int N,
                           bool accumulate = false);

// Weight gradients, ACCUMULATED (micro-batch accumulation): dweight (N,K) += doutᵀ · inp,
// dbias (N) += column sums of dout (skipped when dbias is nullptr). dout is (M,N), inp is (M,K).
template <typename Scalar>
void matmul_backward_weight(Scalar* dweight, Scalar* dbias, const Scalar* dout, const Scalar* inp, int M, int K, int N);

}  // namespace tandem::kernels::cpu
