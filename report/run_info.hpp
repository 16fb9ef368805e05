#pragma once
// The one way to describe a scenario's run for the store: name, the scenario text as run, the
// hardware profile and the SHA-256 of its text (provenance). simrun, tandem-studio, engine
// train and tandem-calibrate all call this, so the same scenario is recorded the same way.

#include <yaml-cpp/yaml.h>

#include "report/run_store.hpp"
#include "strategy/scenario.hpp"

namespace tandem::report {

// `document` is the scenario as actually run (a sweep point's document, or scenario.document).
RunInfo run_info_for(const strategy::Scenario& scenario, RunKind kind, const YAML::Node& document);
inline RunInfo run_info_for(const strategy::Scenario& scenario, RunKind kind) {
  return run_info_for(scenario, kind, scenario.document);
}

}  // namespace tandem::report
