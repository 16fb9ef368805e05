// Linear layers through cuBLAS. cuBLAS is column-major; a row-major (R,C) matrix is the
// column-major (C,R) matrix, i.e. its transpose, so (row-major) out = inp·Wᵀ becomes
// (column-major) outᵀ = W_cmᵀ·inp_cm with W_cm = the (K,N) column-major view of weight.
#include "kernels/cuda/detail/common.cuh"
#include "kernels/cuda/kernels.hpp"

namespace tandem::kernels::cuda {
namespace {

__global__ void broadcast_rows(float* out, const float* bias, int M, int N) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < static_cast<std::int64_t>(M) * N) out[i] = bias[i % N];
}

// dbias[j] += Σ_i dout[i,j]: one thread per column (consecutive threads read consecutive j).
__global__ void column_sums(float* dbias, const float* dout, int M, int N) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= N) return;
  float sum = 0.0f;
  for (int i = 0; i < M; ++i) sum += dout[static_cast<std::int64_t>(i) * N + j];
  dbias[j] += sum;
}

void bind(const CudaContext& ctx) { check_cublas(cublasSetStream(ctx.cublas, ctx.stream), "cublasSetStream"); }

}  // namespace

void matmul_forward(const CudaContext& ctx, float* out, const float* inp, const float* weight,
                    const float* bias, int M, int K, int N) {
  bind(ctx);
  float beta = 0.0f;
  if (bias != nullptr) {
    broadcast_rows<<<detail::blocks_for(static_cast<std::int64_t>(M) * N, 256), 256, 0,
                     ctx.stream>>>(out, bias, M, N);
    detail::check_launch("matmul_forward bias");
    beta = 1.0f;
  }
  const float alpha = 1.0f;
  // outᵀ (N,M) = Wᵀ (N,K) · inpᵀ (K,M), all column-major.
  check_cublas(cublasSgemm(ctx.cublas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &alpha, weight, K, inp,
                           K, &beta, out, N),
               "matmul_forward");
}

void matmul_backward_input(const CudaContext& ctx, float* dinp, const float* dout,
                           const float* weight, int M, int K, int N, bool accumulate) {
  bind(ctx);
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  // dinpᵀ (K,M) = W_cm (K,N) · doutᵀ (N,M).
  check_cublas(cublasSgemm(ctx.cublas, CUBLAS_OP_N, CUBLAS_OP_N, K, M, N, &alpha, weight, K, dout,
                           N, &beta, dinp, K),
               "matmul_backward_input");
}

void matmul_backward_weight(const CudaContext& ctx, float* dweight, float* dbias,
                            const float* dout, const float* inp, int M, int K, int N) {
  bind(ctx);
  const float alpha = 1.0f, beta = 1.0f;
  // dWᵀ (K,N) += inpᵀ (K,M) · dout (M,N); dout is stored as doutᵀ (N,M) column-major.
  check_cublas(cublasSgemm(ctx.cublas, CUBLAS_OP_N, CUBLAS_OP_T, K, N, M, &alpha, inp, K, dout, N,
                           &beta, dweight, K),
               "matmul_backward_weight");
  if (dbias != nullptr) {
    column_sums<<<detail::blocks_for(N, 256), 256, 0, ctx.stream>>>(dbias, dout, M, N);
    detail::check_launch("matmul_backward_weight bias");
  }
}

}  // namespace tandem::kernels::cuda
