#include "strategy/engine_support.hpp"

#include <algorithm>
#include <array>
#include <string_view>

namespace tandem::strategy {

std::vector<ValidationError> engine_unsupported(const Scenario& scenario) {
  std::vector<ValidationError> errors;
  if (scenario.is_collective()) {
    errors.push_back({"collective", "a collective scenario", "a model + strategy scenario (engine train trains models)"});
    return errors;
  }
  const ModelSpec& model = *scenario.model;
  const StrategySpec& s = *scenario.strategy;
  if (model.dropout > 0)
    errors.push_back({"model.dropout", std::to_string(model.dropout), "0 (the engine trains without dropout)"});
  // The engine's kernels (kernels/cpu, kernels/cuda) are fp32 on every backend.
  if (s.precision != Precision::Fp32)
    errors.push_back({"strategy.precision", std::string(to_string(s.precision)),
                      "fp32 (the engine's kernels are fp32 on the cpu and cuda backends)"});
  if (s.zero > 2) errors.push_back({"strategy.zero", std::to_string(s.zero), "0, 1 or 2"});
  if (s.zero > 0) {
    // ZeRO shards the flat gradient buffer across tensors: only element-wise optimizers can step
    // a shard.
    constexpr std::array<std::string_view, 4> elementwise{"adamw", "adamw-hf", "lion", "adan"};
    if (std::find(elementwise.begin(), elementwise.end(), s.optimizer) == elementwise.end())
      errors.push_back({"strategy.zero", std::to_string(s.zero),
                        "0 with optimizer " + s.optimizer + " (ZeRO in the engine needs an element-wise optimizer: "
                        "adamw, adamw-hf, lion or adan)"});
    if (model.tied_embeddings && s.pp > 1)
      errors.push_back({"strategy.zero", std::to_string(s.zero),
                        "0 with tied embeddings and pp > 1 (the tied embedding's gradient is summed across stages "
                        "before ZeRO's shards)"});
  }
  if (s.cp > 1) errors.push_back({"strategy.cp", std::to_string(s.cp), "1 (the engine has no ring attention)"});
  if (s.schedule == Schedule::Interleaved)
    errors.push_back({"strategy.schedule", "interleaved", "1f1b or gpipe"});
  return errors;
}

}  // namespace tandem::strategy
