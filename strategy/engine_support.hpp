#pragma once
// What `engine train` can run, in one place: the engine refuses anything else up front with
// these errors, and `simrun --best --for-engine` searches only strategies that pass.

#include <vector>

#include "strategy/scenario.hpp"

namespace tandem::strategy {

// Empty when the engine can train the scenario; otherwise one error per unsupported key, naming
// the key, the value and what the engine supports.
std::vector<ValidationError> engine_unsupported(const Scenario& scenario);

}  // namespace tandem::strategy
