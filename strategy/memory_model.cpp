#include "strategy/memory_model.hpp"

#include <algorithm>
#include <limits>

#include "strategy/model_formulas.hpp"
#include "strategy/optimizer_catalog.hpp"
#include "strategy/pipeline_schedule.hpp"

namespace tandem::strategy {

double zero_model_state_bytes(double psi, double k, int n, int zero_stage) {
  switch (zero_stage) {
    case 1: return 4 * psi + k * psi / n;
    case 2: return 2 * psi + (2 + k) * psi / n;
    case 3: return (2 + 2 + k) * psi / n;
    default: return (2 + 2 + k) * psi;
  }
}

namespace {

// Which stage holds a tensor: layers by pipeline chunk; embeddings on the first stage, the final
// norm and head on the last; tied embeddings keep a copy on the last stage too (Megatron).
std::vector<int> stages_holding(const ParameterTensorSpec& tensor, const ModelSpec& model,
                                const StrategySpec& strategy) {
  const int stages = strategy.pp;
  if (tensor.layer >= 0) {
    const int layers_per_chunk = model.layers / (stages * strategy.virtual_stages);
    const int chunk = tensor.layer / layers_per_chunk;
    return {chunk % stages};
  }
  if (tensor.role == TensorRole::Embedding) {
    if (model.tied_embeddings && stages > 1) return {0, stages - 1};
    return {0};
  }
  if (tensor.role == TensorRole::Position) return {0};
  return {stages - 1};  // final norm, head
}

}  // namespace

MemoryEstimate estimate_memory(const Scenario& scenario) {
  const ModelSpec& model = *scenario.model;
  const StrategySpec& s = *scenario.strategy;
  const bool mixed = s.precision != Precision::Fp32;
  const double weight_bytes = mixed ? 2 : 4;
  const double gradient_bytes = mixed ? 2 : 4;
  const double master_bytes = mixed ? 4 : 0;
  const int shards = s.dp * s.cp;  // ZeRO shards over the data-parallel (x context) group

  const ResolvedOptimizer optimizer = resolve_optimizer(
      s.optimizer, s.optimizer_args, scenario.training.lr, scenario.training.weight_decay,
      scenario.training.seed);

  MemoryEstimate estimate;
  estimate.stages.resize(static_cast<std::size_t>(s.pp));
  for (int stage = 0; stage < s.pp; ++stage) estimate.stages[static_cast<std::size_t>(stage)].stage = stage;

  for (const ParameterTensorSpec& tensor : parameter_tensors(model, s.tp)) {
    const double local = static_cast<double>(local_elements(tensor, s.tp));
    const OptimizerTensorShape shape = local_optimizer_shape(tensor, s.tp);
    const double state = optimizer_state_bytes(optimizer, shape);
    for (int stage : stages_holding(tensor, model, s)) {
      StageMemory& memory = estimate.stages[static_cast<std::size_t>(stage)];
      memory.parameters += local;
      memory.weights += local * weight_bytes;
      memory.gradients += local * gradient_bytes;
      memory.optimizer += local * master_bytes + state;
    }
  }

  ActivationOptions options;
  options.tp = s.tp;
  options.cp = s.cp;
  options.sequence_parallel = s.sequence_parallel;
  options.recompute = s.recompute;
  options.bytes_per_element = HardwareProfile::bytes_per_element(s.precision);
  const double per_layer = activation_bytes_per_layer(model, s.micro_batch, options);
  const int layers_per_chunk = model.layers / (s.pp * s.virtual_stages);
  const double tokens_local = static_cast<double>(model.seq_len) / s.cp * s.micro_batch;

  for (StageMemory& memory : estimate.stages) {
    if (s.zero >= 1) memory.optimizer /= shards;
    if (s.zero >= 2) memory.gradients /= shards;
    if (s.zero >= 3) memory.weights /= shards;
    const auto steps = pipeline_schedule(s.schedule, s.pp, memory.stage, s.micro_batches(), s.virtual_stages);
    memory.in_flight_micro_batches = peak_in_flight(steps);
    memory.activations = per_layer * layers_per_chunk * memory.in_flight_micro_batches;
    if (memory.stage == s.pp - 1) {
      // The fp32 logits of one micro-batch for the (vocab-parallel) cross-entropy, and the final
      // norm's input.
      memory.activations += 4.0 * tokens_local * static_cast<double>(padded_vocab(model, s.tp)) / s.tp;
      memory.activations += options.bytes_per_element * tokens_local * model.hidden /
                            (s.sequence_parallel ? s.tp : 1);
    }
  }

  estimate.capacity_bytes = std::numeric_limits<double>::infinity();
  for (const NodeGroup& group : scenario.cluster.node_groups)
    estimate.capacity_bytes = std::min(estimate.capacity_bytes, group.profile.memory_capacity_bytes);
  for (std::size_t i = 0; i < estimate.stages.size(); ++i) {
    if (estimate.stages[i].total() > estimate.worst().total()) estimate.worst_stage = static_cast<int>(i);
  }
  estimate.fits = estimate.worst().total() <= estimate.capacity_bytes;
  return estimate;
}

}  // namespace tandem::strategy
