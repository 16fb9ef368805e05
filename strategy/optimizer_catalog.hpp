#pragma once
// The optimizer catalog: the strategy layer's single source for `strategy.optimizer` and its
// `strategy.optimizer_args` keys (names, reference defaults, validity, one-line docs), the
// resolution of those keys into the numbers an optimizer runs with, and the twin's model of
// what each optimizer costs per parameter tensor (state memory, FLOPs, MuonBP's gather).
//
// The update rules themselves are in ../shared/reference/OPTIMIZERS.md and are implemented in
// engine/optim/. Every default below cites the reference it comes from; where OPTIMIZERS.md
// leaves a choice open (MuonBP) the default and the reason are in the argument's doc and in a
// comment in optimizer_catalog.cpp.
//
// Conventions shared by every optimizer:
//   - the learning rate is `lr` and the decoupled weight decay `weight_decay`;
//   - weight decay applies to 2-D parameters only (hidden matrices, embeddings, output head);
//     1-D gains and biases are never decayed, whatever `weight_decay` says;
//   - Muon and MuonBP update embeddings, the output head and 1-D parameters with PyTorch-style
//     AdamW configured by `aux_lr`, `aux_beta1`, `aux_beta2`, `aux_eps`, `aux_weight_decay`;
//   - APOLLO, APOLLO-Mini and GaLore apply to attention and MLP weight matrices; every other
//     parameter gets HF-style AdamW with the same lr, betas, eps and weight_decay.

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::strategy {

enum class ArgumentType { Number, Integer, Boolean, Choice };

struct OptimizerArgument {
  std::string key;
  ArgumentType type = ArgumentType::Number;
  std::string default_value;         // as a user would write it in optimizer_args
  std::vector<std::string> choices;  // Choice only
  std::string doc;                   // one line
  // Valid range for Number and Integer (inclusive unless the *_exclusive flag says otherwise).
  std::optional<double> minimum;
  std::optional<double> maximum;
  bool minimum_exclusive = false;
  bool maximum_exclusive = false;
};

struct OptimizerDescription {
  std::string name;
  std::string summary;
  std::string reference;  // paper / reference implementation the defaults come from
  std::vector<OptimizerArgument> arguments;

  const OptimizerArgument* find_argument(std::string_view key) const;
};

// adamw adamw-hf lion adan muon muonbp apollo apollo-mini galore smmf, in that order.
std::span<const OptimizerDescription> optimizer_catalog();
// nullptr when `name` is not in the catalog.
const OptimizerDescription* find_optimizer(std::string_view name);
// "adamw, adamw-hf, lion, ..." for error messages.
std::string optimizer_names();

// Everything an optimizer needs, every key of its description present:
//   numbers: Number, Integer and Boolean (1 / 0) arguments except lr and weight_decay;
//   choices: Choice arguments.
struct ResolvedOptimizer {
  std::string name;
  double lr = 0;
  double weight_decay = 0;
  std::map<std::string, double> numbers;
  std::map<std::string, std::string> choices;
  std::uint64_t seed = 0;  // scenario seed: APOLLO's random projections derive from it

  // Lookups that throw std::out_of_range naming the key when it is absent.
  double number(const std::string& key) const;
  std::int64_t integer(const std::string& key) const;
  bool boolean(const std::string& key) const;
  const std::string& choice(const std::string& key) const;
};

// Precedence: optimizer_args > training lr / weight_decay (when given) > reference default.
// Throws std::invalid_argument naming "strategy.optimizer" (unknown optimizer),
// "strategy.optimizer_args.<key>" (unknown key or bad value, with what would be valid), or
// "training.lr" / "training.weight_decay" (negative or non-finite).
ResolvedOptimizer resolve_optimizer(std::string_view name,
                                    const std::map<std::string, std::string>& optimizer_args,
                                    std::optional<double> training_lr,
                                    std::optional<double> training_weight_decay,
                                    std::uint64_t seed);

// ---------------------------------------------------------------------------------------------
// Twin model, per LOCAL parameter tensor shard (what one rank holds).
// ---------------------------------------------------------------------------------------------
struct OptimizerTensorShape {
  std::int64_t rows = 1, cols = 1;            // local shard (1-D: rows = n, cols = 1)
  std::int64_t full_rows = 1, full_cols = 1;  // whole tensor before tensor-parallel sharding
  bool hidden_matrix = false;     // 2-D weight inside the transformer body (Muon applies)
  bool attention_or_mlp = false;  // attention / MLP weight matrix (APOLLO, GaLore apply)
  bool is_vector = false;         // 1-D gain or bias
  // The dim tensor parallelism splits (0 rows: column-parallel; 1 cols: row-parallel). MuonBP's
  // block steps on an unsharded matrix split it this way into `blocks` parts.
  int split_dim = 0;
};

struct ParameterTensorSpec;  // strategy/model_formulas.hpp
// The shape of what one rank of tensor parallelism `tp` holds of a parameter tensor: the one way
// the memory model and the program builder describe a tensor to the optimizer formulas.
OptimizerTensorShape local_optimizer_shape(const ParameterTensorSpec& tensor, int tp);

// Rank APOLLO / GaLore use for a matrix: `rank` when > 0, else max(1, min(full dims) / 4)
// (hidden/4 for a GPT block); never more than min(local rows, local cols).
std::int64_t low_rank_projection_rank(const ResolvedOptimizer& optimizer,
                                      const OptimizerTensorShape& shape);
// SMMF's "most square" factorisation a x b (a >= b, a*b = n) of a tensor of n elements.
std::pair<std::int64_t, std::int64_t> most_square_factorization(std::int64_t n);

// Bytes of optimizer state the engine allocates for this shard (fp32 moments, stored
// projections, SMMF's packed sign bits). Equals engine::optim::Optimizer::state_bytes() summed
// over the same tensors.
double optimizer_state_bytes(const ResolvedOptimizer& optimizer, const OptimizerTensorShape& shape);
// Floating-point operations of one optimizer step on this shard, counting one per add, multiply,
// divide and square root of the update rule; Newton-Schulz matmuls, projections and the
// amortised cost of GaLore's SVD (every update_proj_gap steps) and MuonBP's full steps (every
// period steps) included.
double optimizer_step_flops(const ResolvedOptimizer& optimizer, const OptimizerTensorShape& shape);
// Bytes the optimizer's own collectives move per step, amortised over its period, in nccl-tests'
// convention (all-gather: S = the full gathered buffer): Muon all-gathers every tensor-parallel
// sharded hidden matrix every step, MuonBP every `period` steps; all others move nothing.
double optimizer_step_comm_bytes(const ResolvedOptimizer& optimizer,
                                 const OptimizerTensorShape& shape, int tensor_parallel);

}  // namespace tandem::strategy
