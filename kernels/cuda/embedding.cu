// Embedding lookup (one thread per output value) and its scatter-add (atomicAdd).
#include "kernels/cuda/detail/common.cuh"
#include "kernels/cuda/kernels.hpp"

namespace tandem::kernels::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void embedding_forward_kernel(float* out, const std::int32_t* tokens,
                                         const float* token_table, const float* position_table,
                                         std::int64_t count, int T, int C, int vocab_start,
                                         int V_local, int position_offset) {
  const std::int64_t idx = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= count * C) return;
  const std::int64_t token = idx / C;
  const int c = static_cast<int>(idx % C);
  const std::int64_t row = static_cast<std::int64_t>(tokens[token]) - vocab_start;
  float value = (row >= 0 && row < V_local) ? token_table[row * C + c] : 0.0f;
  if (position_table) {
    const int t = static_cast<int>(token % T);
    value += position_table[static_cast<std::int64_t>(position_offset + t) * C + c];
  }
  out[idx] = value;
}

__global__ void embedding_backward_kernel(float* token_table_grad, float* position_table_grad,
                                          const float* dout, const std::int32_t* tokens,
                                          std::int64_t count, int T, int C, int vocab_start,
                                          int V_local, int position_offset) {
  const std::int64_t idx = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= count * C) return;
  const std::int64_t token = idx / C;
  const int c = static_cast<int>(idx % C);
  const std::int64_t row = static_cast<std::int64_t>(tokens[token]) - vocab_start;
  const float g = dout[idx];
  if (row >= 0 && row < V_local) atomicAdd(token_table_grad + row * C + c, g);
  if (position_table_grad) {
    const int t = static_cast<int>(token % T);
    atomicAdd(position_table_grad + static_cast<std::int64_t>(position_offset + t) * C + c, g);
  }
}

}  // namespace

void embedding_forward(const CudaContext& ctx, float* out, const std::int32_t* tokens,
                       const float* token_table, const float* position_table, int B, int T, int C,
                       int vocab_start, int V_local, int position_offset) {
  const std::int64_t count = static_cast<std::int64_t>(B) * T;
  embedding_forward_kernel<<<detail::blocks_for(count * C, kThreads), kThreads, 0, ctx.stream>>>(
      out, tokens, token_table, position_table, count, T, C, vocab_start, V_local,
      position_offset);
  detail::check_launch("embedding_forward");
}

void embedding_backward(const CudaContext& ctx, float* token_table_grad,
                        float* position_table_grad, const float* dout,
                        const std::int32_t* tokens, int B, int T, int C, int vocab_start,
                        int V_local, int position_offset) {
  const std::int64_t count = static_cast<std::int64_t>(B) * T;
  embedding_backward_kernel<<<detail::blocks_for(count * C, kThreads), kThreads, 0, ctx.stream>>>(
      token_table_grad, position_table_grad, dout, tokens, count, T, C, vocab_start, V_local,
      position_offset);
  detail::check_launch("embedding_backward");
}

}  // namespace tandem::kernels::cuda
