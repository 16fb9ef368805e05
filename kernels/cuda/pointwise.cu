// Element-wise kernels: GELU, SwiGLU, RoPE, residual/accumulate/scale, sum of squares, AdamW.
#include <algorithm>
#include <cmath>

#include "kernels/cuda/detail/common.cuh"
#include "kernels/cuda/kernels.hpp"

namespace tandem::kernels::cuda {
namespace {

constexpr int kThreads = 256;
constexpr float kGeluScale = 0.7978845608028654f;  // sqrt(2/π)
constexpr float kGeluCubic = 0.044715f;

#define TANDEM_GRID_STRIDE_LOOP(i, n)                                                        \
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;    \
       i < static_cast<std::int64_t>(n); i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)

unsigned grid_for(std::size_t n) {
  const std::int64_t blocks = detail::blocks_for(static_cast<std::int64_t>(n), kThreads);
  return static_cast<unsigned>(blocks < 65535 * 8 ? (blocks > 0 ? blocks : 1) : 65535 * 8);
}

__global__ void gelu_forward_kernel(float* out, const float* inp, std::size_t n) {
  TANDEM_GRID_STRIDE_LOOP(i, n) {
    const float x = inp[i];
    out[i] = 0.5f * x * (1.0f + tanhf(kGeluScale * (x + kGeluCubic * x * x * x)));
  }
}

__global__ void gelu_backward_kernel(float* dinp, const float* inp, const float* dout,
                                     std::size_t n, bool accumulate) {
  TANDEM_GRID_STRIDE_LOOP(i, n) {
    const float x = inp[i];
    const float th = tanhf(kGeluScale * (x + kGeluCubic * x * x * x));
    const float grad = 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * kGeluScale *
                                                (1.0f + 3.0f * kGeluCubic * x * x);
    const float g = grad * dout[i];
    dinp[i] = accumulate ? dinp[i] + g : g;
  }
}

__global__ void swiglu_forward_kernel(float* out, const float* inp, int M, int F) {
  TANDEM_GRID_STRIDE_LOOP(idx, static_cast<std::int64_t>(M) * F) {
    const std::int64_t row = idx / F, f = idx % F;
    const float g = inp[row * 2 * F + f], u = inp[row * 2 * F + F + f];
    out[idx] = g / (1.0f + expf(-g)) * u;
  }
}

__global__ void swiglu_backward_kernel(float* dinp, const float* inp, const float* dout, int M,
                                       int F, bool accumulate) {
  TANDEM_GRID_STRIDE_LOOP(idx, static_cast<std::int64_t>(M) * F) {
    const std::int64_t row = idx / F, f = idx % F;
    const std::int64_t gate_at = row * 2 * F + f, up_at = gate_at + F;
    const float g = inp[gate_at], u = inp[up_at], dy = dout[idx];
    const float sig = 1.0f / (1.0f + expf(-g));
    const float dgate = dy * u * sig * (1.0f + g * (1.0f - sig));
    const float dup = dy * g * sig;
    dinp[gate_at] = accumulate ? dinp[gate_at] + dgate : dgate;
    dinp[up_at] = accumulate ? dinp[up_at] + dup : dup;
  }
}

// One thread per (token, rotated head, pair i < D/2). Angles in double.
__global__ void rope_kernel(float* qkv, std::int64_t tokens, int T, int Hq, int Hkv, int D,
                            double theta, int position_offset, float sign) {
  const int half = D / 2, heads = Hq + Hkv;
  const std::int64_t stride = static_cast<std::int64_t>(Hq + 2 * Hkv) * D;
  TANDEM_GRID_STRIDE_LOOP(idx, tokens * heads * half) {
    const int i = static_cast<int>(idx % half);
    const int h = static_cast<int>((idx / half) % heads);
    const std::int64_t token = idx / (static_cast<std::int64_t>(half) * heads);
    const int t = static_cast<int>(token % T);
    const double angle = static_cast<double>(position_offset + t) * pow(theta, -2.0 * i / D);
    double s, c;
    sincos(angle, &s, &c);
    const float cs = static_cast<float>(c), sn = sign * static_cast<float>(s);
    float* x = qkv + token * stride + static_cast<std::int64_t>(h) * D;
    const float x1 = x[i], x2 = x[i + half];
    x[i] = x1 * cs - x2 * sn;
    x[i + half] = x2 * cs + x1 * sn;
  }
}

__global__ void residual_kernel(float* out, const float* a, const float* b, std::size_t n) {
  TANDEM_GRID_STRIDE_LOOP(i, n) out[i] = a[i] + b[i];
}

__global__ void add_in_place_kernel(float* a, const float* b, std::size_t n) {
  TANDEM_GRID_STRIDE_LOOP(i, n) a[i] += b[i];
}

__global__ void scale_kernel(float* x, std::size_t n, float scale) {
  TANDEM_GRID_STRIDE_LOOP(i, n) x[i] *= scale;
}

__global__ void sum_of_squares_kernel(double* result, const float* x, std::size_t n) {
  __shared__ double scratch[32];
  double local = 0.0;
  TANDEM_GRID_STRIDE_LOOP(i, n) {
    const double v = x[i];
    local += v * v;
  }
  const double block = detail::block_sum(local, scratch);
  if (threadIdx.x == 0) atomicAdd(result, block);
}

__global__ void adamw_kernel(float* param, const float* grad, float* m, float* v, std::size_t n,
                             float beta1, float beta2, float one_minus_beta1,
                             float one_minus_beta2, float eps, float decay, float step_size,
                             float inv_bias_correction2_sqrt) {
  TANDEM_GRID_STRIDE_LOOP(i, n) {
    const float g = grad[i];
    const float m_new = beta1 * m[i] + one_minus_beta1 * g;
    const float v_new = beta2 * v[i] + one_minus_beta2 * g * g;
    m[i] = m_new;
    v[i] = v_new;
    const float denom = sqrtf(v_new) * inv_bias_correction2_sqrt + eps;
    param[i] = param[i] * decay - step_size * m_new / denom;
  }
}

}  // namespace

void gelu_forward(const CudaContext& ctx, float* out, const float* inp, std::size_t n) {
  gelu_forward_kernel<<<grid_for(n), kThreads, 0, ctx.stream>>>(out, inp, n);
  detail::check_launch("gelu_forward");
}

void gelu_backward(const CudaContext& ctx, float* dinp, const float* inp, const float* dout,
                   std::size_t n, bool accumulate) {
  gelu_backward_kernel<<<grid_for(n), kThreads, 0, ctx.stream>>>(dinp, inp, dout, n, accumulate);
  detail::check_launch("gelu_backward");
}

void swiglu_forward(const CudaContext& ctx, float* out, const float* inp, int M, int F) {
  swiglu_forward_kernel<<<grid_for(static_cast<std::size_t>(M) * F), kThreads, 0, ctx.stream>>>(
      out, inp, M, F);
  detail::check_launch("swiglu_forward");
}

void swiglu_backward(const CudaContext& ctx, float* dinp, const float* inp, const float* dout,
                     int M, int F, bool accumulate) {
  swiglu_backward_kernel<<<grid_for(static_cast<std::size_t>(M) * F), kThreads, 0, ctx.stream>>>(
      dinp, inp, dout, M, F, accumulate);
  detail::check_launch("swiglu_backward");
}

void rope_forward(const CudaContext& ctx, float* qkv, int B, int T, int Hq, int Hkv, int D,
                  double theta, int position_offset) {
  const std::int64_t tokens = static_cast<std::int64_t>(B) * T;
  rope_kernel<<<grid_for(static_cast<std::size_t>(tokens) * (Hq + Hkv) * (D / 2)), kThreads, 0,
                ctx.stream>>>(qkv, tokens, T, Hq, Hkv, D, theta, position_offset, 1.0f);
  detail::check_launch("rope_forward");
}

void rope_backward(const CudaContext& ctx, float* dqkv, int B, int T, int Hq, int Hkv, int D,
                   double theta, int position_offset) {
  const std::int64_t tokens = static_cast<std::int64_t>(B) * T;
  rope_kernel<<<grid_for(static_cast<std::size_t>(tokens) * (Hq + Hkv) * (D / 2)), kThreads, 0,
                ctx.stream>>>(dqkv, tokens, T, Hq, Hkv, D, theta, position_offset, -1.0f);
  detail::check_launch("rope_backward");
}

void residual_forward(const CudaContext& ctx, float* out, const float* a, const float* b,
                      std::size_t n) {
  residual_kernel<<<grid_for(n), kThreads, 0, ctx.stream>>>(out, a, b, n);
  detail::check_launch("residual_forward");
}

void add_in_place(const CudaContext& ctx, float* a, const float* b, std::size_t n) {
  add_in_place_kernel<<<grid_for(n), kThreads, 0, ctx.stream>>>(a, b, n);
  detail::check_launch("add_in_place");
}

void scale_in_place(const CudaContext& ctx, float* x, std::size_t n, float scale) {
  scale_kernel<<<grid_for(n), kThreads, 0, ctx.stream>>>(x, n, scale);
  detail::check_launch("scale_in_place");
}

void sum_of_squares(const CudaContext& ctx, double* result, const float* x, std::size_t n) {
  check_cuda(cudaMemsetAsync(result, 0, sizeof(double), ctx.stream), "sum_of_squares zero");
  const unsigned grid = std::min(grid_for(n), 1024u);
  sum_of_squares_kernel<<<grid, kThreads, 0, ctx.stream>>>(result, x, n);
  detail::check_launch("sum_of_squares");
}

void adamw_update(const CudaContext& ctx, float* param, const float* grad, float* m, float* v,
                  std::size_t n, float lr, float beta1, float beta2, float eps,
                  float weight_decay, int step) {
  const double bias_correction1 = 1.0 - std::pow(static_cast<double>(beta1), step);
  const double bias_correction2 = 1.0 - std::pow(static_cast<double>(beta2), step);
  adamw_kernel<<<grid_for(n), kThreads, 0, ctx.stream>>>(
      param, grad, m, v, n, beta1, beta2, 1.0f - beta1, 1.0f - beta2, eps,
      static_cast<float>(1.0 - static_cast<double>(lr) * weight_decay),
      static_cast<float>(static_cast<double>(lr) / bias_correction1),
      static_cast<float>(1.0 / std::sqrt(bias_correction2)));
  detail::check_launch("adamw_update");
}

}  // namespace tandem::kernels::cuda
