#include "sim/run_records.hpp"

#include <nlohmann/json.hpp>

#include "report/run_info.hpp"

namespace tandem::sim {

report::Headline headline_of(const SimulationResult& result) {
  report::Headline headline;
  headline.gpus = result.gpus;
  if (!result.collective) {
    headline.step_time_s = result.step_time_s;
    headline.tokens_per_s = result.tokens_per_s;
    headline.mfu = result.mfu;
    headline.peak_bytes_per_gpu = result.memory.peak_bytes_per_gpu;
    headline.fits = result.memory.fits;
  }
  return headline;
}

RecordedSweep record_sweep(report::RunStore& store, const strategy::Scenario& base,
                           const std::vector<SweepResult>& results) {
  RecordedSweep recorded;
  recorded.parent = store.begin_run(report::run_info_for(base, report::RunKind::Sweep));
  for (const SweepResult& point : results) {
    const bool has_document = point.document.IsDefined() && !point.document.IsNull();
    report::RunInfo info =
        report::run_info_for(base, report::RunKind::Simulation, has_document ? point.document : base.document);
    nlohmann::json overrides = nlohmann::json::object();
    for (const auto& [key, value] : point.overrides) overrides[key] = value;
    info.overrides_json = overrides.dump();
    info.parent_run = recorded.parent;
    const std::string id = store.begin_run(info);
    if (point.simulated)
      store.finish_run(id, result_to_json(point.result).dump(), headline_of(point.result));
    else
      store.fail_run(id, point.reason);
    recorded.points.push_back(id);
  }
  store.finish_run(recorded.parent, sweep_to_json(results).dump(), {});
  return recorded;
}

}  // namespace tandem::sim
