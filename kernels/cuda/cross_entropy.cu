// Softmax cross-entropy, full and vocab-parallel: one block per row for the reductions, one
// thread per logit for the gradient.
#include <algorithm>
#include <cmath>

#include "kernels/cuda/detail/common.cuh"
#include "kernels/cuda/kernels.hpp"

namespace tandem::kernels::cuda {
namespace {

constexpr int kThreads = 256;

int valid_columns(int V_local, int vocab_start, int valid_vocab) {
  return std::clamp(valid_vocab - vocab_start, 0, V_local);
}

__global__ void row_max_kernel(float* row_max, const float* logits, int V_local, int columns) {
  __shared__ float scratch[32];
  const float* row = logits + static_cast<std::int64_t>(blockIdx.x) * V_local;
  float local = -INFINITY;
  for (int j = threadIdx.x; j < columns; j += blockDim.x) local = fmaxf(local, row[j]);
  const float m = detail::block_max(local, scratch);
  if (threadIdx.x == 0) row_max[blockIdx.x] = m;
}

__global__ void row_sum_exp_kernel(float* sum_exp, const float* logits, const float* row_max,
                                   int V_local, int columns) {
  __shared__ float scratch[32];
  const float* row = logits + static_cast<std::int64_t>(blockIdx.x) * V_local;
  const float m = row_max[blockIdx.x];
  float local = 0.0f;
  for (int j = threadIdx.x; j < columns; j += blockDim.x) local += expf(row[j] - m);
  const float s = detail::block_sum(local, scratch);
  if (threadIdx.x == 0) sum_exp[blockIdx.x] = s;
}

__global__ void target_logit_kernel(float* target_logit, const float* logits,
                                    const std::int32_t* targets, int M, int V_local,
                                    int vocab_start) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= M) return;
  const std::int64_t column = static_cast<std::int64_t>(targets[i]) - vocab_start;
  const bool in_shard = targets[i] >= 0 && column >= 0 && column < V_local;
  target_logit[i] = in_shard ? logits[static_cast<std::int64_t>(i) * V_local + column] : 0.0f;
}

__global__ void loss_kernel(float* losses, float* logsumexp, const float* global_max,
                            const float* global_sum_exp, const float* global_target_logit,
                            const std::int32_t* targets, int M) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= M) return;
  const float lse = global_max[i] + logf(global_sum_exp[i]);
  logsumexp[i] = lse;
  losses[i] = targets[i] >= 0 ? lse - global_target_logit[i] : 0.0f;
}

// Full vocabulary: the target logit read directly. row_max may alias logsumexp and sum_exp may
// alias losses (each thread reads its row's values before writing them).
__global__ void full_loss_kernel(float* losses, float* logsumexp, const float* row_max,
                                 const float* sum_exp, const float* logits,
                                 const std::int32_t* targets, int M, int V) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= M) return;
  const float lse = row_max[i] + logf(sum_exp[i]);
  const int target = targets[i];
  const float loss = target >= 0 ? lse - logits[static_cast<std::int64_t>(i) * V + target] : 0.0f;
  logsumexp[i] = lse;
  losses[i] = loss;
}

__global__ void backward_kernel(float* dlogits, const float* logits, const float* logsumexp,
                                const std::int32_t* targets, float dloss, int M, int V_local,
                                int vocab_start, int columns) {
  const std::int64_t idx = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<std::int64_t>(M) * V_local) return;
  const std::int64_t i = idx / V_local;
  const int j = static_cast<int>(idx % V_local);
  const int target = targets[i];
  float g = 0.0f;
  if (target >= 0 && j < columns) {
    g = expf(logits[idx] - logsumexp[i]);
    if (j == static_cast<std::int64_t>(target) - vocab_start) g -= 1.0f;
    g *= dloss;
  }
  dlogits[idx] = g;  // element-wise: dlogits may alias logits
}

}  // namespace

void vocab_parallel_max(const CudaContext& ctx, float* local_max, const float* logits, int M,
                        int V_local, int vocab_start, int valid_vocab) {
  row_max_kernel<<<M, kThreads, 0, ctx.stream>>>(local_max, logits, V_local,
                                                 valid_columns(V_local, vocab_start, valid_vocab));
  detail::check_launch("vocab_parallel_max");
}

void vocab_parallel_sum_exp(const CudaContext& ctx, float* local_sum_exp, const float* logits,
                            const float* global_max, int M, int V_local, int vocab_start,
                            int valid_vocab) {
  row_sum_exp_kernel<<<M, kThreads, 0, ctx.stream>>>(
      local_sum_exp, logits, global_max, V_local,
      valid_columns(V_local, vocab_start, valid_vocab));
  detail::check_launch("vocab_parallel_sum_exp");
}

void vocab_parallel_target_logit(const CudaContext& ctx, float* local_target_logit,
                                 const float* logits, const std::int32_t* targets, int M,
                                 int V_local, int vocab_start) {
  target_logit_kernel<<<detail::blocks_for(M, kThreads), kThreads, 0, ctx.stream>>>(
      local_target_logit, logits, targets, M, V_local, vocab_start);
  detail::check_launch("vocab_parallel_target_logit");
}

void vocab_parallel_loss(const CudaContext& ctx, float* losses, float* logsumexp,
                         const float* global_max, const float* global_sum_exp,
                         const float* global_target_logit, const std::int32_t* targets, int M) {
  loss_kernel<<<detail::blocks_for(M, kThreads), kThreads, 0, ctx.stream>>>(
      losses, logsumexp, global_max, global_sum_exp, global_target_logit, targets, M);
  detail::check_launch("vocab_parallel_loss");
}

void vocab_parallel_backward(const CudaContext& ctx, float* dlogits, const float* logits,
                             const float* logsumexp, const std::int32_t* targets, float dloss,
                             int M, int V_local, int vocab_start, int valid_vocab) {
  backward_kernel<<<detail::blocks_for(static_cast<std::int64_t>(M) * V_local, kThreads), kThreads,
                    0, ctx.stream>>>(dlogits, logits, logsumexp, targets, dloss, M, V_local,
                                     vocab_start,
                                     valid_columns(V_local, vocab_start, valid_vocab));
  detail::check_launch("vocab_parallel_backward");
}

void cross_entropy_forward(const CudaContext& ctx, float* losses, float* logsumexp,
                           const float* logits, const std::int32_t* targets, int M, int V,
                           int valid_vocab) {
  // logsumexp doubles as scratch for the row max and losses as scratch for the sum of
  // exponentials (both overwritten by the loss kernel).
  const int columns = valid_columns(V, 0, valid_vocab);
  float* row_max = logsumexp;
  float* sum_exp = losses;
  row_max_kernel<<<M, kThreads, 0, ctx.stream>>>(row_max, logits, V, columns);
  row_sum_exp_kernel<<<M, kThreads, 0, ctx.stream>>>(sum_exp, logits, row_max, V, columns);
  detail::check_launch("cross_entropy_forward reductions");
  full_loss_kernel<<<detail::blocks_for(M, kThreads), kThreads, 0, ctx.stream>>>(
      losses, logsumexp, row_max, sum_exp, logits, targets, M, V);
  detail::check_launch("cross_entropy_forward loss");
}

void cross_entropy_backward(const CudaContext& ctx, float* dlogits, const float* logits,
                            const float* logsumexp, const std::int32_t* targets, float dloss,
                            int M, int V, int valid_vocab) {
  vocab_parallel_backward(ctx, dlogits, logits, logsumexp, targets, dloss, M, V, 0, valid_vocab);
}

}  // namespace tandem::kernels::cuda
