// LayerNorm / RMSNorm: one block per row for the row statistics and the input gradient; the
// weight gradients by a second kernel with one thread per channel summing over the rows
// (deterministic, coalesced).
#include <cmath>

#include "kernels/cuda/detail/common.cuh"
#include "kernels/cuda/kernels.hpp"

namespace tandem::kernels::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void layernorm_forward_kernel(float* out, float* mean, float* rstd, const float* inp,
                                         const float* weight, const float* bias, int C,
                                         float eps) {
  __shared__ float scratch[32];
  const std::int64_t offset = static_cast<std::int64_t>(blockIdx.x) * C;
  const float* x = inp + offset;
  float local = 0.0f;
  for (int c = threadIdx.x; c < C; c += blockDim.x) local += x[c];
  const float m = detail::block_sum(local, scratch) / C;
  local = 0.0f;
  for (int c = threadIdx.x; c < C; c += blockDim.x) local += (x[c] - m) * (x[c] - m);
  const float s = rsqrtf(detail::block_sum(local, scratch) / C + eps);
  for (int c = threadIdx.x; c < C; c += blockDim.x)
    out[offset + c] = (x[c] - m) * s * weight[c] + bias[c];
  if (threadIdx.x == 0) {
    mean[blockIdx.x] = m;
    rstd[blockIdx.x] = s;
  }
}

__global__ void layernorm_backward_input_kernel(float* dinp, const float* dout, const float* inp,
                                                const float* weight, const float* mean,
                                                const float* rstd, int C, bool accumulate) {
  __shared__ float scratch[32];
  const int i = blockIdx.x;
  const std::int64_t offset = static_cast<std::int64_t>(i) * C;
  const float m = mean[i], s = rstd[i];
  float sum_dnorm = 0.0f, sum_dnorm_norm = 0.0f;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    const float norm = (inp[offset + c] - m) * s;
    const float dnorm = dout[offset + c] * weight[c];
    sum_dnorm += dnorm;
    sum_dnorm_norm += dnorm * norm;
  }
  const float dnorm_mean = detail::block_sum(sum_dnorm, scratch) / C;
  const float dnorm_norm_mean = detail::block_sum(sum_dnorm_norm, scratch) / C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    const float norm = (inp[offset + c] - m) * s;
    const float dnorm = dout[offset + c] * weight[c];
    const float g = (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
    dinp[offset + c] = accumulate ? dinp[offset + c] + g : g;
  }
}

// dweight[c] += Σ_i dout[i,c]·norm[i,c]; dbias[c] += Σ_i dout[i,c]. norm from inp, mean, rstd
// (mean = nullptr: RMSNorm, norm = inp·rstd).
__global__ void norm_weight_gradients_kernel(float* dweight, float* dbias, const float* dout,
                                             const float* inp, const float* mean,
                                             const float* rstd, int M, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float dw = 0.0f, db = 0.0f;
  for (int i = 0; i < M; ++i) {
    const std::int64_t at = static_cast<std::int64_t>(i) * C + c;
    const float norm = (inp[at] - (mean ? mean[i] : 0.0f)) * rstd[i];
    dw += dout[at] * norm;
    db += dout[at];
  }
  if (dweight) dweight[c] += dw;
  if (dbias) dbias[c] += db;
}

__global__ void rmsnorm_forward_kernel(float* out, float* rstd, const float* inp,
                                       const float* weight, int C, float eps) {
  __shared__ float scratch[32];
  const std::int64_t offset = static_cast<std::int64_t>(blockIdx.x) * C;
  const float* x = inp + offset;
  float local = 0.0f;
  for (int c = threadIdx.x; c < C; c += blockDim.x) local += x[c] * x[c];
  const float s = rsqrtf(detail::block_sum(local, scratch) / C + eps);
  for (int c = threadIdx.x; c < C; c += blockDim.x) out[offset + c] = x[c] * s * weight[c];
  if (threadIdx.x == 0) rstd[blockIdx.x] = s;
}

__global__ void rmsnorm_backward_input_kernel(float* dinp, const float* dout, const float* inp,
                                              const float* weight, const float* rstd, int C,
                                              bool accumulate) {
  __shared__ float scratch[32];
  const int i = blockIdx.x;
  const std::int64_t offset = static_cast<std::int64_t>(i) * C;
  const float s = rstd[i];
  float local = 0.0f;
  for (int c = threadIdx.x; c < C; c += blockDim.x)
    local += dout[offset + c] * weight[c] * inp[offset + c] * s;
  const float dnorm_norm_mean = detail::block_sum(local, scratch) / C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    const float norm = inp[offset + c] * s;
    const float g = (dout[offset + c] * weight[c] - norm * dnorm_norm_mean) * s;
    dinp[offset + c] = accumulate ? dinp[offset + c] + g : g;
  }
}

}  // namespace

void layernorm_forward(const CudaContext& ctx, float* out, float* mean, float* rstd,
                       const float* inp, const float* weight, const float* bias, int M, int C,
                       float eps) {
  layernorm_forward_kernel<<<M, kThreads, 0, ctx.stream>>>(out, mean, rstd, inp, weight, bias, C,
                                                           eps);
  detail::check_launch("layernorm_forward");
}

void layernorm_backward(const CudaContext& ctx, float* dinp, float* dweight, float* dbias,
                        const float* dout, const float* inp, const float* weight,
                        const float* mean, const float* rstd, int M, int C, bool accumulate) {
  layernorm_backward_input_kernel<<<M, kThreads, 0, ctx.stream>>>(dinp, dout, inp, weight, mean,
                                                                  rstd, C, accumulate);
  detail::check_launch("layernorm_backward input");
  if (dweight || dbias) {
    norm_weight_gradients_kernel<<<detail::blocks_for(C, kThreads), kThreads, 0, ctx.stream>>>(
        dweight, dbias, dout, inp, mean, rstd, M, C);
    detail::check_launch("layernorm_backward weight");
  }
}

void rmsnorm_forward(const CudaContext& ctx, float* out, float* rstd, const float* inp,
                     const float* weight, int M, int C, float eps) {
  rmsnorm_forward_kernel<<<M, kThreads, 0, ctx.stream>>>(out, rstd, inp, weight, C, eps);
  detail::check_launch("rmsnorm_forward");
}

void rmsnorm_backward(const CudaContext& ctx, float* dinp, float* dweight, const float* dout,
                      const float* inp, const float* weight, const float* rstd, int M, int C,
                      bool accumulate) {
  rmsnorm_backward_input_kernel<<<M, kThreads, 0, ctx.stream>>>(dinp, dout, inp, weight, rstd, C,
                                                                accumulate);
  detail::check_launch("rmsnorm_backward input");
  if (dweight) {
    norm_weight_gradients_kernel<<<detail::blocks_for(C, kThreads), kThreads, 0, ctx.stream>>>(
        dweight, nullptr, dout, inp, nullptr, rstd, M, C);
    detail::check_launch("rmsnorm_backward weight");
  }
}

}  // namespace tandem::kernels::cuda
