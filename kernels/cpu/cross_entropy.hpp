#pragma once
// Softmax cross-entropy over the vocabulary, full or vocab-parallel (Megatron).
//
// logits are (M,V) row-major (M = B·T tokens). targets are (M) vocabulary ids; a NEGATIVE target
// means "ignore this row" (padding): its loss is 0, it is not counted in the mean, its gradient
// row is 0. Padded vocabulary: only ids < valid_vocab are real; logits at ids >= valid_vocab are
// ignored by forward and get gradient 0 (the lm-head may be padded to a multiple of 64/128).
// Instantiated for float and double.

#include <cstdint>

namespace tandem::kernels::cpu {

// ---- Full vocabulary -----------------------------------------------------------------------

// losses (M) = logsumexp(logits[i, :valid_vocab]) − logits[i, targets[i]]; logsumexp (M) is saved
// for backward. Returns the mean loss over the rows whose target is not negative (0 if none).
template <typename Scalar>
double cross_entropy_forward(Scalar* losses, Scalar* logsumexp, const Scalar* logits,
                             const std::int32_t* targets, int M, int V, int valid_vocab);

// dlogits (M,V) = (softmax(logits) − onehot(target)) · dloss, written. dloss is the gradient of
// the loss of EACH row (for the mean over n counted rows, pass 1/n; with micro-batch accumulation,
// 1/(n·micro_batches)). dlogits MAY ALIAS logits (in place: saves the (M,V) gradient buffer —
// the logits are not needed after this).
template <typename Scalar>
void cross_entropy_backward(Scalar* dlogits, const Scalar* logits, const Scalar* logsumexp,
                            const std::int32_t* targets, Scalar dloss, int M, int V,
                            int valid_vocab);

// ---- Vocab-parallel pieces (one shard of the vocabulary per tensor-parallel rank) ------------
// This rank's logits are (M,V_local): the columns of vocabulary ids [vocab_start,
// vocab_start + V_local). Only ids < valid_vocab count. The sequence, with the reductions the
// caller performs across the tensor-parallel group:
//   vocab_parallel_max            → all-reduce MAX → global_max
//   vocab_parallel_sum_exp        → all-reduce SUM → global_sum_exp
//   vocab_parallel_target_logit   → all-reduce SUM → global_target_logit
//   vocab_parallel_loss           (every rank, identical result)
//   vocab_parallel_backward       (every rank, its own shard of dlogits)
// (the two SUM reductions can be one all-reduce of a (2,M) buffer).

// local_max (M): max over this shard's valid logits of each row; −infinity if the shard has none.
template <typename Scalar>
void vocab_parallel_max(Scalar* local_max, const Scalar* logits, int M, int V_local,
                        int vocab_start, int valid_vocab);

// local_sum_exp (M): Σ over this shard's valid columns of exp(logit − global_max).
template <typename Scalar>
void vocab_parallel_sum_exp(Scalar* local_sum_exp, const Scalar* logits, const Scalar* global_max,
                            int M, int V_local, int vocab_start, int valid_vocab);

// local_target_logit (M): logits[i, targets[i] − vocab_start] if the target is in this shard,
// otherwise 0 (also 0 for ignored rows).
template <typename Scalar>
void vocab_parallel_target_logit(Scalar* local_target_logit, const Scalar* logits,
                                 const std::int32_t* targets, int M, int V_local,
                                 int vocab_start);

// losses (M) = global_max + log(global_sum_exp) − global_target_logit (0 for ignored rows);
// logsumexp (M) = global_max + log(global_sum_exp), saved for backward. Returns the mean loss.
template <typename Scalar>
double vocab_parallel_loss(Scalar* losses, Scalar* logsumexp, const Scalar* global_max,
                           const Scalar* global_sum_exp, const Scalar* global_target_logit,
                           const std::int32_t* targets, int M);

// This shard's dlogits (M,V_local) = (exp(logit − logsumexp) − onehot) · dloss; may alias logits.
template <typename Scalar>
void vocab_parallel_backward(Scalar* dlogits, const Scalar* logits, const Scalar* logsumexp,
                             const std::int32_t* targets, Scalar dloss, int M, int V_local,
                             int vocab_start, int valid_vocab);

}  // namespace tandem::kernels::cpu
