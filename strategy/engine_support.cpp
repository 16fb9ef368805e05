#include "strategy/engine_support.hpp"

namespace tandem::strategy {

std::vector<ValidationError> engine_unsupported(const Scenario& scenario) {
  std::vector<ValidationError> errors;
  if (scenario.is_collective()) {
    errors.push_back({"collective", "a collective scenario", "a model + strategy scenario (engine train trains models)"});
    return errors;
  }
  const ModelSpec& model = *scenario.model;
  const StrategySpec& s = *scenario.strategy;
  const bool cpu = scenario.cluster.is_cpu();
  if (model.dropout > 0)
    errors.push_back({"model.dropout", std::to_string(model.dropout), "0 (the engine trains without dropout)"});
  if (cpu && s.precision != Precision::Fp32)
    errors.push_back({"strategy.precision", std::string(to_string(s.precision)), "fp32 on the cpu backend"});
  if (!cpu && s.precision == Precision::Fp8)
    errors.push_back({"strategy.precision", "fp8", "fp32 or bf16 (the engine has no fp8 kernels)"});
  if (s.zero > 2) errors.push_back({"strategy.zero", std::to_string(s.zero), "0, 1 or 2"});
  if (s.cp > 1) errors.push_back({"strategy.cp", std::to_string(s.cp), "1 (the engine has no ring attention)"});
  if (s.schedule == Schedule::Interleaved)
    errors.push_back({"strategy.schedule", "interleaved", "1f1b or gpipe"});
  return errors;
}

}  // namespace tandem::strategy
