#include "engine/optim/optimizer.hpp"

#include <stdexcept>

#include "engine/optim/adamw.hpp"
#include "engine/optim/adamw_hf.hpp"
#include "engine/optim/adan.hpp"
#include "engine/optim/apollo.hpp"
#include "engine/optim/galore.hpp"
#include "engine/optim/lion.hpp"
#include "engine/optim/muon.hpp"
#include "engine/optim/muonbp.hpp"
#include "engine/optim/smmf.hpp"
#include "engine/optim/state_io.hpp"

namespace tandem::engine::optim {

void check_parameter(const ParameterTensor& param) {
  if (param.value == nullptr || param.grad == nullptr) {
    throw std::invalid_argument("parameter '" + param.name + "' has no value or gradient buffer");
  }
  if (param.rows <= 0 || param.cols <= 0) {
    throw std::invalid_argument("parameter '" + param.name + "' has shape " +
                                std::to_string(param.rows) + "x" + std::to_string(param.cols));
  }
  if (param.shard_count < 1 || param.shard_index < 0 || param.shard_index >= param.shard_count) {
    throw std::invalid_argument("parameter '" + param.name + "' has shard " +
                                std::to_string(param.shard_index) + " of " +
                                std::to_string(param.shard_count));
  }
}

std::unique_ptr<Optimizer> make_optimizer(const ResolvedOptimizer& config) {
  const std::string& name = config.name;
  if (name == "adamw") return make_adamw(config);
  if (name == "adamw-hf") return make_adamw_hf(config);
  if (name == "lion") return make_lion(config);
  if (name == "adan") return make_adan(config);
  if (name == "muon") return make_muon(config);
  if (name == "muonbp") return make_muonbp(config);
  if (name == "apollo" || name == "apollo-mini") return make_apollo(config);
  if (name == "galore") return make_galore(config);
  if (name == "smmf") return make_smmf(config);
  throw std::invalid_argument("strategy.optimizer: '" + name +
                              "' is not an optimizer the engine implements; valid: " +
                              strategy::optimizer_names());
}

}  // namespace tandem::engine::optim
