#include "report/run_info.hpp"

#include "report/machine.hpp"

namespace tandem::report {

RunInfo run_info_for(const strategy::Scenario& scenario, RunKind kind, const YAML::Node& document) {
  RunInfo info;
  info.kind = kind;
  info.name = scenario.name;
  info.scenario_yaml = strategy::document_to_yaml(document);
  info.profile_name = scenario.cluster.profile.name;
  info.profile_hash = sha256_hex(scenario.cluster.profile.source_text);
  return info;
}

}  // namespace tandem::report
