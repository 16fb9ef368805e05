#pragma once
// The part of a GPT model one rank holds — its pipeline stage's layers, its tensor-parallel shard —
// with an explicit forward and backward function for every compute op of the program
// (strategy/program.hpp OpCode), in the style of llm.c: each function names its inputs and
// outputs and their shapes, activations are saved per micro-batch for backward.
//
// Tokens: M = B·T per micro-batch; Mn = M/tp with sequence parallelism (norms, residuals and the
// residual stream run on this rank's contiguous block of Mn tokens of the flattened (B,T)
// micro-batch), otherwise Mn = M. Activation storage is indexed by a slot (micro_batch mod
// slots; slots = the most micro-batches the stage's schedule holds at once); with full
// recomputation the layer internals have one copy that the recomputed forward rewrites.
//
// Communication is not done here: for each tensor-parallel / pipeline op, comm_buffers() says
// which buffers the runner's collective or send/recv works on.
//
// Residual-stream bookkeeping:
//   residual(slot, i) for i = 0..stage_layers: the input of local layer i (i = stage_layers is
//     the stage's output: sent to the next stage or fed to the final norm);
//   residual_grad(slot): the gradient flowing back through the residual stream.

#include <cstdint>
#include <span>
#include <vector>

#include "engine/backend/backend.hpp"
#include "engine/model/geometry.hpp"
#include "engine/model/parameters.hpp"
#include "strategy/program.hpp"

namespace tandem::engine {

// What a communication op works on. For all-reduce: `input` in place (output == input). For
// all-gather: `input` has `count` elements, `output` tp·count. For reduce-scatter: `input` has
// tp·count, `output` count. For send/recv: `input` (send) or `output` (recv), count elements.
template <typename Scalar>
struct CommBuffers {
  const Scalar* input = nullptr;
  Scalar* output = nullptr;
  std::size_t count = 0;
};

template <typename Scalar>
class GptStage {
 public:
  GptStage(Backend<Scalar>& backend, const strategy::ModelSpec& model, const StageGeometry& geometry,
           double grad_bucket_bytes, int zero_stage);

  const StageGeometry& geometry() const { return g_; }
  ParameterStore<Scalar>& parameters() { return params_; }
  const ParameterStore<Scalar>& parameters() const { return params_; }
  Backend<Scalar>& backend() { return *backend_; }

  // Host tokens of a micro-batch (B·T each). inputs are used by the first stage, targets by the
  // last; negative targets are ignored positions.
  void set_inputs(int micro_batch, std::span<const std::int32_t> inputs);
  void set_targets(int micro_batch, std::span<const std::int32_t> targets);

  // Gradient of each token's loss (1 / tokens of the global batch, so that the accumulated
  // gradient is that of the mean loss over the global batch).
  void set_loss_scale(double dloss) { dloss_ = dloss; }

  // Runs a compute op (forward or backward); `recompute` ops rewrite the saved internals.
  void run(const strategy::Op& op);

  // The buffers of a tensor-parallel or pipeline communication op.
  CommBuffers<Scalar> comm_buffers(const strategy::Op& op);

  // Sum over the tokens of the micro-batches run since the last reset of their losses (last
  // stage; tensor-parallel ranks all hold the same value), and the number of tokens.
  double loss_sum() const { return loss_sum_; }
  std::int64_t loss_tokens() const { return loss_tokens_; }
  void reset_loss() {
    loss_sum_ = 0;
    loss_tokens_ = 0;
  }

  // Logits of the last micro-batch run (last stage, slot of micro-batch 0), (M, V) local shard.
  const Scalar* logits(int micro_batch) const;

  int slot_of(int micro_batch) const { return micro_batch % g_.slots; }

 private:
  struct LayerWeights {
    Scalar *attn_norm_w = nullptr, *attn_norm_b = nullptr, *qkv_w = nullptr, *qkv_b = nullptr;
    Scalar *out_w = nullptr, *out_b = nullptr, *mlp_norm_w = nullptr, *mlp_norm_b = nullptr;
    Scalar *up_w = nullptr, *up_b = nullptr, *down_w = nullptr, *down_b = nullptr;
  };
  // Saved layer internals of one (layer, internal slot).
  struct LayerActivations {
    Scalar *ln1 = nullptr, *ln1_mean = nullptr, *ln1_rstd = nullptr, *ln1_full = nullptr;
    Scalar *qkv = nullptr, *att = nullptr, *att_lse = nullptr, *x_mid = nullptr;
    Scalar *ln2 = nullptr, *ln2_mean = nullptr, *ln2_rstd = nullptr, *ln2_full = nullptr;
    Scalar *fch = nullptr, *fch_act = nullptr;
  };
  struct HeadActivations {
    Scalar *lnf = nullptr, *lnf_mean = nullptr, *lnf_rstd = nullptr, *lnf_full = nullptr;
    Scalar *logits = nullptr, *losses = nullptr, *lse = nullptr, *stats = nullptr, *gathered = nullptr;
  };

  void allocate_activations();
  Scalar* carve(std::size_t n);
  int local_layer(const strategy::Op& op) const;
  LayerActivations& internals(int layer, int micro_batch);
  Scalar* residual(int slot, int index) const;

  void norm_forward(Scalar* out, Scalar* mean, Scalar* rstd, const Scalar* inp, const Scalar* w, const Scalar* b,
                    int rows);
  void norm_backward(Scalar* dinp, Scalar* dw, Scalar* db, const Scalar* dout, const Scalar* inp, const Scalar* w,
                     const Scalar* mean, const Scalar* rstd, int rows, bool accumulate);
  // The gradient G of a row-parallel layer's output: the full (M,C) residual gradient.
  const Scalar* output_gradient(int slot) const;
  // Weight and bias gradient of a row-parallel layer (attn.out, mlp.down).
  void row_parallel_weight_backward(Scalar* dw, Scalar* db, const Scalar* input, int K, int slot);

  Backend<Scalar>* backend_;
  StageGeometry g_;
  ParameterStore<Scalar> params_;
  std::vector<LayerWeights> weights_;
  std::vector<LayerWeights> grads_;
  Scalar *token_table_ = nullptr, *token_table_grad_ = nullptr;
  Scalar *position_table_ = nullptr, *position_table_grad_ = nullptr;
  Scalar *final_norm_w_ = nullptr, *final_norm_b_ = nullptr, *final_norm_w_grad_ = nullptr,
         *final_norm_b_grad_ = nullptr;
  Scalar *head_ = nullptr, *head_grad_ = nullptr;

  DeviceBuffer<Scalar> arena_;
  std::size_t arena_used_ = 0;
  bool sizing_ = true;
  std::size_t arena_needed_ = 0;

  std::vector<std::vector<LayerActivations>> layer_activations_;  // [local layer][internal slot]
  std::vector<HeadActivations> head_activations_;                 // [slot]
  std::vector<Scalar*> residuals_;                                // [slot * (stage_layers+1) + i]
  std::vector<Scalar*> residual_grads_;                           // [slot]
  std::vector<std::int32_t*> inputs_, targets_;                   // [slot], device
  std::vector<std::vector<std::int32_t>> host_targets_;           // [slot]
  Scalar* embedding_out_ = nullptr;  // (M,C) vocab-parallel partial embedding (sequence parallel)
  Scalar* proj_full_ = nullptr;      // (M,C) row-parallel output before its reduction
  Scalar* proj_shard_ = nullptr;     // (Mn,C) after the sequence-parallel reduce-scatter
  Scalar* residual_grad_full_ = nullptr;  // (M,C) sequence-parallel all-gather of the gradient
  Scalar* dln_ = nullptr;            // (M,C) input gradient of a column-parallel layer
  Scalar* dln_shard_ = nullptr;      // (Mn,C) its sequence-parallel reduce-scatter
  Scalar* datt_ = nullptr;           // (M, Hq D)
  Scalar* dqkv_ = nullptr;           // (M, qkv)
  Scalar* dfch_act_ = nullptr;       // (M, F)
  Scalar* dfch_ = nullptr;           // (M, up)
  std::vector<std::int32_t*> token_buffers_;

  double dloss_ = 1.0;
  double loss_sum_ = 0;
  std::int64_t loss_tokens_ = 0;
};

}  // namespace tandem::engine
