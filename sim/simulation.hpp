#pragma once
// The twin's library API: what simrun and tandem-studio call (the GUI never shells out to
// simrun).
//
//   SimulationResult r = run_simulation_in_child(scenario, options, on_progress, &cancel);
//   nlohmann::json j = result_to_json(r);          // exactly what `simrun --json` prints
//   std::vector<SweepResult> s = run_sweep(base, axes, sweep_options, on_sweep_progress, &cancel);
//
// Every simulation runs in a child process (fork before SimGrid is touched; the child sends its
// progress, its result as JSON and its trace back over a pipe): SimGrid's global state does not
// reset within a process, a child can be cancelled by ending it, and a sweep runs one child per
// core. A child that crashes or is killed yields a SimulationResult with ok = false and a clear
// error, never a hang.

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "report/trace_record.hpp"
#include "sim/collective_whatif.hpp"
#include "sim/executor.hpp"
#include "strategy/memory_model.hpp"
#include "strategy/scenario.hpp"

namespace tandem::sim {

struct SimulationOptions {
  bool fold = true;                // false: every rank simulated (--no-fold)
  bool record_trace = true;        // per-op trace of every simulated rank
  std::size_t flow_budget = 2048;  // see sim/collective_folding.hpp
  bool verbose = false;            // SimGrid warnings on stderr
};

struct MemorySummary {
  double peak_bytes_per_gpu = 0;  // the worst pipeline stage
  double weights = 0;
  double gradients = 0;
  double optimizer = 0;
  double activations = 0;
  double capacity_bytes = 0;
  bool fits = true;
  int worst_stage = 0;
};

struct SimulationResult {
  bool ok = false;
  std::string error;  // when !ok
  bool collective = false;
  std::string name;
  int gpus = 0;
  double wall_seconds = 0;  // how long the simulation took

  // Training step.
  double step_time_s = 0;
  double tokens_per_s = 0;
  double mfu = 0;                    // model FLOPs / (step time * gpus * peak)
  double model_tflops_per_gpu = 0;   // 72·B·l·s·h²(...) model FLOPs
  double hardware_tflops_per_gpu = 0;  // every FLOP executed, recomputation included
  MemorySummary memory;
  Breakdown breakdown;
  std::string outer_method = "none";  // strategy.outer.method
  OuterTiming outer;                  // when the program has outer ops (strategy.outer)
  WanTraffic wan;                     // when the cluster has sites (cluster.sites)
  std::optional<double> training_days;
  std::optional<double> training_gpu_hours;
  std::vector<ClassTiming> classes;
  ExecutorStatistics statistics;
  std::vector<report::TraceRecord> trace;
  bool folded = true;

  // Collective what-if.
  strategy::CollectiveKind collective_kind = strategy::CollectiveKind::AllReduce;
  std::vector<CollectiveRow> collective_rows;
};

using ProgressCallback = std::function<void(double fraction)>;

struct CancelToken {
  std::atomic<bool> cancelled{false};
  void cancel() { cancelled = true; }
};

// Memory estimate of a training scenario (no simulation): what `simrun --check` prints.
MemorySummary summarize_memory(const strategy::Scenario& scenario);

// Runs the simulation in this process. Creates the SimGrid engine, so it may run once per
// process: use run_simulation_in_child unless you are the child.
SimulationResult simulate_in_process(const strategy::Scenario& scenario, const SimulationOptions& options,
                                     const ProgressCallback& progress = {});

// Forks a child that runs simulate_in_process and returns its result (ok = false with the
// child's error, or a message saying it crashed or was cancelled).
SimulationResult run_simulation_in_child(const strategy::Scenario& scenario, const SimulationOptions& options,
                                         const ProgressCallback& progress = {},
                                         const CancelToken* cancel = nullptr);

// ---- sweeps ---------------------------------------------------------------------------------

struct SweepResult {
  std::vector<std::pair<std::string, std::string>> overrides;  // key -> value as written
  bool feasible = false;  // valid, fits in memory, (for_engine) runnable by engine train
  std::string reason;     // why not, when !feasible
  bool simulated = false; // false when the point is not even a valid scenario
  SimulationResult result;
  YAML::Node document;    // the point's scenario document (for --best)
  std::filesystem::path base_dir;  // where its relative paths resolve
};

struct SweepOptions {
  SimulationOptions simulation;
  int jobs = 0;             // parallel children; 0 = one per core
  bool for_engine = false;  // only strategies engine train supports (engine_unsupported())
};

// progress(done, total) after each point.
using SweepProgressCallback = std::function<void(std::size_t done, std::size_t total)>;

// Simulates the cartesian product of `axes` applied to `base` (its document), `jobs` children at
// a time. Invalid points are reported infeasible with their validation errors, never thrown.
std::vector<SweepResult> run_sweep(const strategy::Scenario& base, const std::vector<strategy::SweepAxis>& axes,
                                   const SweepOptions& options, const SweepProgressCallback& progress = {},
                                   const CancelToken* cancel = nullptr);

// The fastest feasible point (nullptr when none).
const SweepResult* best_sweep_result(const std::vector<SweepResult>& results);

// The scenario document of `point` as `--best` writes it: the full scenario with the sweep
// removed, dp as a number and `predicted: {step_time_s, tokens_per_s, mfu, peak_bytes_per_gpu,
// profile}`.
YAML::Node best_scenario_document(const SweepResult& point);

// ---- JSON -------------------------------------------------------------------------------------

// The result as `simrun --json` prints it (training: step_time_s, tokens_per_s, mfu,
// model_tflops_per_gpu, hardware_tflops_per_gpu, gpus, memory{...}, breakdown_s{...},
// time_to_train{days, gpu_hours} when training.tokens is set, outer{...} with strategy.outer,
// wan{...} with cluster.sites, classes, statistics; collective:
// kind, gpus, collective[{size_bytes, algorithm, time_s, algbw_GBps, busbw_GBps, candidates}]).
// The trace is not included.
nlohmann::json result_to_json(const SimulationResult& result);
// The inverse (the child sends its result this way). Throws nlohmann::json::exception.
SimulationResult result_from_json(const nlohmann::json& json);
// {"results": [{"overrides": {...}, "feasible": ..., "reason": ..., ...result fields}]}
nlohmann::json sweep_to_json(const std::vector<SweepResult>& results);

}  // namespace tandem::sim
