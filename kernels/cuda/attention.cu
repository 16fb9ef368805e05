// Causal GQA attention, one thread block per (query row, query head, batch). Forward keeps the
// row's scores in shared memory; backward recomputes the probabilities from the saved
// log-sum-exp, stores dq and accumulates dk/dv with atomicAdd. Clear rather than fast: a
// flash-attention style tiled kernel is the upgrade path when GPU time matters.
#include <cmath>

#include "kernels/cuda/detail/common.cuh"
#include "kernels/cuda/kernels.hpp"

namespace tandem::kernels::cuda {
namespace {

constexpr int kThreads = 128;

struct Geometry {
  int T, Hq, Hkv, D;
  std::int64_t stride;  // qkv elements per token
  float scale;
};

__global__ void attention_forward_kernel(float* out, float* logsumexp, const float* qkv,
                                         Geometry g) {
  extern __shared__ float shared[];
  float* scores = shared;             // T values
  float* scratch = shared + g.T;      // 32 values
  const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int kv = h / (g.Hq / g.Hkv);
  const float* batch = qkv + static_cast<std::int64_t>(b) * g.T * g.stride;
  const float* q = batch + i * g.stride + static_cast<std::int64_t>(h) * g.D;
  const float* k = batch + static_cast<std::int64_t>(g.Hq + kv) * g.D;
  const float* v = batch + static_cast<std::int64_t>(g.Hq + g.Hkv + kv) * g.D;

  float local_max = -INFINITY;
  for (int j = threadIdx.x; j <= i; j += blockDim.x) {
    const float* kj = k + j * g.stride;
    float dot = 0.0f;
    for (int d = 0; d < g.D; ++d) dot += q[d] * kj[d];
    dot *= g.scale;
    scores[j] = dot;
    local_max = fmaxf(local_max, dot);
  }
  const float row_max = detail::block_max(local_max, scratch);
  float local_sum = 0.0f;
  for (int j = threadIdx.x; j <= i; j += blockDim.x) {
    const float p = expf(scores[j] - row_max);
    scores[j] = p;
    local_sum += p;
  }
  const float sum = detail::block_sum(local_sum, scratch);  // also orders the scores writes
  const float inv_sum = 1.0f / sum;
  float* o = out + (static_cast<std::int64_t>(b) * g.T + i) * g.Hq * g.D +
             static_cast<std::int64_t>(h) * g.D;
  for (int d = threadIdx.x; d < g.D; d += blockDim.x) {
    float acc = 0.0f;
    for (int j = 0; j <= i; ++j) acc += scores[j] * v[j * g.stride + d];
    o[d] = acc * inv_sum;
  }
  if (threadIdx.x == 0) {
    logsumexp[(static_cast<std::int64_t>(b) * g.Hq + h) * g.T + i] = row_max + logf(sum);
  }
}

__global__ void attention_backward_kernel(float* dqkv, const float* dout, const float* qkv,
                                          const float* out, const float* logsumexp, Geometry g) {
  extern __shared__ float shared[];
  float* probs = shared;              // T values
  float* dscores = shared + g.T;      // T values
  float* scratch = shared + 2 * g.T;  // 32 values
  const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int kv = h / (g.Hq / g.Hkv);
  const std::int64_t batch_offset = static_cast<std::int64_t>(b) * g.T * g.stride;
  const float* q = qkv + batch_offset + i * g.stride + static_cast<std::int64_t>(h) * g.D;
  const float* k = qkv + batch_offset + static_cast<std::int64_t>(g.Hq + kv) * g.D;
  const float* v = qkv + batch_offset + static_cast<std::int64_t>(g.Hq + g.Hkv + kv) * g.D;
  const std::int64_t row = (static_cast<std::int64_t>(b) * g.T + i) * g.Hq * g.D +
                           static_cast<std::int64_t>(h) * g.D;
  const float* o = out + row;
  const float* dO = dout + row;
  float* dq = dqkv + batch_offset + i * g.stride + static_cast<std::int64_t>(h) * g.D;
  float* dk = dqkv + batch_offset + static_cast<std::int64_t>(g.Hq + kv) * g.D;
  float* dv = dqkv + batch_offset + static_cast<std::int64_t>(g.Hq + g.Hkv + kv) * g.D;

  float local = 0.0f;
  for (int d = threadIdx.x; d < g.D; d += blockDim.x) local += dO[d] * o[d];
  const float row_dot = detail::block_sum(local, scratch);  // Σ_d dO·O
  const float lse = logsumexp[(static_cast<std::int64_t>(b) * g.Hq + h) * g.T + i];

  for (int j = threadIdx.x; j <= i; j += blockDim.x) {
    const float* kj = k + j * g.stride;
    const float* vj = v + j * g.stride;
    float s = 0.0f, dp = 0.0f;
    for (int d = 0; d < g.D; ++d) {
      s += q[d] * kj[d];
      dp += dO[d] * vj[d];
    }
    const float p = expf(s * g.scale - lse);
    probs[j] = p;
    dscores[j] = p * (dp - row_dot);
  }
  __syncthreads();
  for (int d = threadIdx.x; d < g.D; d += blockDim.x) {
    float acc = 0.0f;
    for (int j = 0; j <= i; ++j) acc += dscores[j] * k[j * g.stride + d];
    dq[d] = acc * g.scale;
  }
  const int count = (i + 1) * g.D;
  for (int idx = threadIdx.x; idx < count; idx += blockDim.x) {
    const int j = idx / g.D, d = idx % g.D;
    atomicAdd(dk + j * g.stride + d, g.scale * dscores[j] * q[d]);
    atomicAdd(dv + j * g.stride + d, probs[j] * dO[d]);
  }
}

Geometry make_geometry(int T, int Hq, int Hkv, int D) {
  return Geometry{T, Hq, Hkv, D, static_cast<std::int64_t>(Hq + 2 * Hkv) * D,
                  1.0f / std::sqrt(static_cast<float>(D))};
}

template <typename Kernel>
void allow_shared_memory(Kernel kernel, std::size_t bytes, const char* what) {
  if (bytes > 48 * 1024) {
    check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(bytes)),
               what);
  }
}

}  // namespace

void attention_forward(const CudaContext& ctx, float* out, float* logsumexp, const float* qkv,
                       int B, int T, int Hq, int Hkv, int D) {
  const Geometry g = make_geometry(T, Hq, Hkv, D);
  const std::size_t shared = (static_cast<std::size_t>(T) + 32) * sizeof(float);
  allow_shared_memory(attention_forward_kernel, shared, "attention_forward shared memory");
  attention_forward_kernel<<<dim3(T, Hq, B), kThreads, shared, ctx.stream>>>(out, logsumexp, qkv,
                                                                             g);
  detail::check_launch("attention_forward");
}

void attention_backward(const CudaContext& ctx, float* dqkv, const float* dout, const float* qkv,
                        const float* out, const float* logsumexp, int B, int T, int Hq, int Hkv,
                        int D) {
  const Geometry g = make_geometry(T, Hq, Hkv, D);
  check_cuda(cudaMemsetAsync(dqkv, 0,
                             static_cast<std::size_t>(B) * T * g.stride * sizeof(float),
                             ctx.stream),
             "attention_backward zero dqkv");
  const std::size_t shared = (2 * static_cast<std::size_t>(T) + 32) * sizeof(float);
  allow_shared_memory(attention_backward_kernel, shared, "attention_backward shared memory");
  attention_backward_kernel<<<dim3(T, Hq, B), kThreads, shared, ctx.stream>>>(
      dqkv, dout, qkv, out, logsumexp, g);
  detail::check_launch("attention_backward");
}

}  // namespace tandem::kernels::cuda
