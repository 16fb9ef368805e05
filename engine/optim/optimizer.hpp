#pragma once
// The optimizer interface the engine's training loop calls once per step, after gradients are
// reduced (and, if the engine clips, clipped). Update rules: ../shared/reference/OPTIMIZERS.md;
// names, defaults and the twin's cost model: strategy/optimizer_catalog.hpp.
//
// How the engine uses it:
//   auto optimizer = make_optimizer(resolve_optimizer(name, args, lr, wd, seed));
//   each step: optimizer->step(params, {step, scheduled_lr, tensor_group});
//   checkpoint: optimizer->save_state(bytes) / optimizer->load_state(bytes).
//
// Parameters are fp32, row-major and contiguous; a 2-D weight is [rows = fan_out, cols = fan_in]
// (PyTorch Linear layout). The optimizer keys its state by ParameterTensor::name and allocates it
// lazily the first time it sees a name, so the list may be built afresh each step, but every
// tensor-parallel rank must pass its tensors in the same order (Muon and MuonBP all-gather
// over the tensor group inside step()).
//
// Weight decay policy (the same for every optimizer): decoupled weight decay applies to 2-D
// parameters (roles HiddenMatrix, Embedding, OutputHead) and never to 1-D parameters (role
// Vector: LayerNorm gains, biases), as in nanoGPT/llm.c. The engine passes the configured
// weight decay and the role; it need not zero anything itself. Muon/MuonBP decay embeddings
// and the head with aux_weight_decay (their AdamW), hidden matrices with weight_decay.
//
// Learning rate: StepContext::lr is the scheduled value of the optimizer's `lr`. Every other step
// size follows the same schedule: Muon's aux AdamW uses aux_lr * (ctx.lr / lr), MuonBP's block
// steps ctx.lr * block_lr_ratio.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "comm/communicator.hpp"
#include "strategy/optimizer_catalog.hpp"

namespace tandem::engine::optim {

using strategy::ResolvedOptimizer;

enum class ParameterRole {
  Embedding,     // token / position embeddings
  OutputHead,    // the unembedding (lm head), when not tied to the embedding
  HiddenMatrix,  // 2-D weights inside the transformer blocks (Muon applies to these)
  Vector,        // 1-D gains and biases (rows = n, cols = 1)
};

struct ParameterTensor {
  std::string name;  // stable across steps and runs, e.g. "layers.3.attn.qkv.weight"
  float* value = nullptr;
  float* grad = nullptr;  // read only: optimizers never modify the gradient
  std::int64_t rows = 0, cols = 1;  // LOCAL shard; 2-D rows = fan_out; 1-D rows = n, cols = 1
  ParameterRole role = ParameterRole::HiddenMatrix;
  bool attention_or_mlp = false;  // attention / MLP weight matrix: APOLLO and GaLore apply
  // Tensor-parallel sharding: which dim is split across the tensor group (-1: replicated). The
  // shards are equal; shard_index is this rank's position in ctx.tensor_group.
  int shard_dim = -1;
  int shard_index = 0;
  int shard_count = 1;
  // How tensor parallelism of ANY degree splits the full tensor, given even when this run does not
  // split it: MuonBP's block steps on a matrix that is not sharded split it the same way into
  // `blocks` parts, so one process with blocks = k steps exactly as tensor parallelism k would.
  // split_dim: 0 = rows (column-parallel: qkv, MLP up), 1 = columns (row-parallel: attention out,
  // MLP down). split_sections: the sizes along split_dim of the parts each rank takes its slice of
  // separately (fused qkv: Q, K, V rows; SwiGLU's fused up: gate, up); empty = one part.
  int split_dim = 0;
  std::vector<std::int64_t> split_sections;

  std::int64_t size() const { return rows * cols; }
  std::int64_t full_rows() const { return shard_dim == 0 ? rows * shard_count : rows; }
  std::int64_t full_cols() const { return shard_dim == 1 ? cols * shard_count : cols; }
  bool is_matrix() const { return role != ParameterRole::Vector && rows > 1 && cols > 1; }
  // The decay policy above.
  bool decayed() const { return role != ParameterRole::Vector; }
};

struct StepContext {
  int step = 1;     // global step, counted from 1 (informational: each tensor keeps its own count)
  double lr = 0;    // the scheduled learning rate for this step
  comm::Communicator* tensor_group = nullptr;  // null: tensor parallelism 1
  // Gradient-norm clipping folded into the update: every gradient is read as grad·grad_scale
  // (the float product the engine would otherwise have written into the gradients). The engine
  // sets it only for an optimizer whose applies_grad_scale() is true; for the others it scales
  // the gradients itself and leaves this 1.
  double grad_scale = 1.0;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual std::string name() const = 0;
  virtual void step(std::span<ParameterTensor> params, const StepContext& ctx) = 0;
  // True if step() applies StepContext::grad_scale (saves the engine a pass over the gradients).
  virtual bool applies_grad_scale() const { return false; }
  // Bytes of optimizer state actually allocated (moments, projections, sign bits; not the
  // transient workspace of one step). Equals strategy::optimizer_state_bytes summed over the
  // tensors stepped so far.
  virtual std::size_t state_bytes() const = 0;
  // Everything a resumed run needs to continue bit for bit: per-tensor step counters, moments,
  // projections and their RNG positions, limiter norms, Adan's previous gradient.
  virtual void save_state(std::vector<std::uint8_t>& out) const = 0;
  // Replaces the state. Throws std::runtime_error naming what does not match (another
  // optimizer's state, a truncated or corrupt buffer).
  virtual void load_state(std::span<const std::uint8_t> in) = 0;
};

// Throws std::invalid_argument for an optimizer name the engine does not implement.
std::unique_ptr<Optimizer> make_optimizer(const ResolvedOptimizer& config);

}  // namespace tandem::engine::optim
