#include "calibration/validation.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "calibration/process.hpp"
#include "report/run_store.hpp"
#include "sim/simulation.hpp"
#include "strategy/scenario.hpp"

namespace tandem::calibration {
namespace fs = std::filesystem;

namespace {

double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double position = p * static_cast<double>(v.size() - 1);
  const std::size_t lower = static_cast<std::size_t>(std::floor(position));
  const std::size_t upper = std::min(v.size() - 1, lower + 1);
  return v[lower] + (position - static_cast<double>(lower)) * (v[upper] - v[lower]);
}

}  // namespace

std::string ValidationConfig::scenario_yaml(const std::string& profile) const {
  std::ostringstream yaml;
  yaml << "# tandem-calibrate validate: configuration " << name << " of the held-out matrix\n"
       << "name: " << kValidationRunPrefix << name << "\n"
       << "model: {layers: " << layers << ", hidden: " << hidden << ", heads: " << heads << ", vocab: " << vocab
       << ", seq_len: " << seq_len << "}\n"
       << "cluster: {gpu: \"" << profile << "\", nodes: 1, gpus_per_node: " << ranks()
       << ", threads_per_rank: " << threads << "}\n"
       << "strategy: {tp: " << tp << ", pp: " << pp << ", dp: " << dp << ", micro_batch: " << micro_batch
       << ", global_batch: " << global_batch << ", precision: fp32, optimizer: adamw, schedule: 1f1b}\n"
       << "training: {steps: 8, lr: 1e-3, warmup_steps: 1, seed: 7, data: synthetic, eval_every: 0, eval_batches: 1, "
          "checkpoint_every: 0}\n";
  return yaml.str();
}

std::vector<ValidationConfig> validation_matrix(int cores, bool quick, bool oversubscribed, bool have_mpi) {
  const int two = std::min(2, std::max(1, cores));
  auto single = [](std::string name, int hidden, int heads, int seq, int batch, int threads, int layers = 2) {
    ValidationConfig c;
    c.name = std::move(name);
    c.hidden = hidden;
    c.heads = heads;
    c.seq_len = seq;
    c.micro_batch = batch;
    c.global_batch = batch;
    c.threads = threads;
    c.layers = layers;
    return c;
  };
  std::vector<ValidationConfig> matrix;
  const bool two_ranks = have_mpi && (cores >= 2 || oversubscribed);
  if (quick) {
    matrix.push_back(single("h96-s64-b4-t1", 96, 4, 64, 4, 1));
    matrix.push_back(single("h96-s32-b4-t" + std::to_string(two), 96, 4, 32, 4, two));
    if (two_ranks) {
      ValidationConfig dp = single("h96-s64-b2-dp2", 96, 4, 64, 2, 1);
      dp.dp = 2;
      dp.global_batch = 4;
      dp.oversubscribed = cores < 2;
      matrix.push_back(dp);
    }
    return matrix;
  }
  matrix.push_back(single("h96-s64-b4-t1", 96, 4, 64, 4, 1));
  matrix.push_back(single("h96-s64-b8-t" + std::to_string(two), 96, 4, 64, 8, two));
  matrix.push_back(single("h192-s64-b4-t1", 192, 6, 64, 4, 1));
  matrix.push_back(single("h192-s128-b2-t" + std::to_string(two), 192, 6, 128, 2, two));
  matrix.push_back(single("h384-s64-b2-t1", 384, 6, 64, 2, 1));
  matrix.push_back(single("h288-s32-b8-t" + std::to_string(two), 288, 6, 32, 8, two));
  if (two_ranks) {
    ValidationConfig dp = single("h192-s64-b4-dp2", 192, 6, 64, 4, 1);
    dp.dp = 2;
    dp.global_batch = 8;
    ValidationConfig tp = single("h192-s64-b4-tp2", 192, 6, 64, 4, 1);
    tp.tp = 2;
    ValidationConfig pp = single("h192-l4-s64-b2-pp2", 192, 6, 64, 2, 1, 4);
    pp.pp = 2;
    pp.global_batch = 8;
    for (ValidationConfig* c : {&dp, &tp, &pp}) {
      c->oversubscribed = cores < 2;
      matrix.push_back(*c);
    }
  }
  if (oversubscribed && have_mpi) {
    ValidationConfig four = single("h192-s64-b4-dp2-tp2", 192, 6, 64, 4, 1);
    four.dp = 2;
    four.tp = 2;
    four.global_batch = 8;
    four.oversubscribed = cores < 4;
    matrix.push_back(four);
  }
  return matrix;
}

double load_average() {
  std::ifstream in("/proc/loadavg");
  double load = 0;
  in >> load;
  return load;
}

namespace {

// A stored training run's step times after the warm-up steps.
std::vector<double> timed_steps(const report::RunStore& store, const std::string& run_id, const ValidationOptions& options) {
  std::vector<double> steps;
  for (const report::MetricPoint& point : store.load_metrics(run_id, "step_time_s"))
    if (point.step > options.warmup_steps && std::isfinite(point.value)) steps.push_back(point.value);
  return steps;
}

// One `engine train` run of a configuration: appends its median step (after warm-up) and its
// run id to `run`, its steps to `steps_of_runs`; on failure sets run.error.
void run_engine_once(ValidationRun& run, const fs::path& scenario_path, const ValidationOptions& options,
                     std::vector<double>& steps_of_runs) {
  const ValidationConfig& config = run.config;
  std::vector<std::string> argv;
  std::vector<std::string> environment;
  if (config.ranks() > 1) {
    if (options.mpirun.empty()) {
      run.error = "needs " + std::to_string(config.ranks()) + " ranks and no mpirun was found";
      return;
    }
    argv = mpirun_prefix(options.mpirun, config.ranks(), environment);
  }
  for (const std::string& a : {options.engine.string(), std::string("train"), scenario_path.string(),
                               std::string("--steps"), std::to_string(options.steps), std::string("--db"),
                               options.db.string(), std::string("--json"), std::string("--quiet")})
    argv.push_back(a);
  ProcessResult process;
  try {
    process = run_process(argv, environment, 1800);
  } catch (const std::exception& error) {
    throw std::runtime_error(std::string("cannot start the engine: ") + error.what());
  }
  if (process.exit_code != 0) {
    std::string message = process.err;
    if (message.size() > 400) message = message.substr(message.size() - 400);
    run.error = "engine train exited with " + std::to_string(process.exit_code) +
                (process.timed_out ? " (timed out)" : "") + ": " + message;
    return;
  }
  nlohmann::json result;
  const auto brace = process.out.find('{');
  try {
    result = nlohmann::json::parse(brace == std::string::npos ? std::string("{}") : process.out.substr(brace));
  } catch (const std::exception&) {
    run.error = "engine train printed no JSON result";
    return;
  }
  const std::string run_id = result.value("run_id", "");
  std::vector<double> steps;
  if (!run_id.empty()) steps = timed_steps(report::RunStore::open(options.db), run_id, options);
  if (steps.empty() && result.contains("step_time_s")) steps.push_back(result["step_time_s"].get<double>());
  if (steps.empty()) {
    run.error = "no step time measured";
    return;
  }
  run.run_ids.push_back(run_id);
  run.run_medians_s.push_back(median_of(steps));
  steps_of_runs.insert(steps_of_runs.end(), steps.begin(), steps.end());
}

// --reuse: the newest `repeats` finished runs of the configuration already in the store, oldest
// first, as if they had just run.
void reuse_stored_runs(ValidationRun& run, const ValidationOptions& options, std::vector<double>& steps_of_runs) {
  const std::string name = kValidationRunPrefix + run.config.name;
  const report::RunStore store = report::RunStore::open(options.db);
  report::RunFilter filter;
  filter.name_contains = name;
  filter.kind = report::RunKind::Training;
  filter.status = report::RunStatus::Finished;
  filter.limit = 0;
  std::vector<std::string> ids;  // newest first
  for (const report::RunSummary& summary : store.list_runs(filter))
    if (summary.name == name && ids.size() < static_cast<std::size_t>(std::max(1, options.repeats))) ids.push_back(summary.id);
  for (auto it = ids.rbegin(); it != ids.rend(); ++it) {
    const std::vector<double> steps = timed_steps(store, *it, options);
    if (steps.empty()) continue;
    run.run_ids.push_back(*it);
    run.run_medians_s.push_back(median_of(steps));
    steps_of_runs.insert(steps_of_runs.end(), steps.begin(), steps.end());
  }
  if (run.run_ids.empty())
    run.error = "--reuse: no finished run named " + name + " with step times in " + options.db.string() +
                " (run validate without --reuse first)";
}

// The measured step, its spread and the ops furthest off, once every run of `run` is in.
void summarize(ValidationRun& run, const std::vector<double>& all_steps, const sim::SimulationResult& prediction,
               const ValidationOptions& options) {
  run.ok = true;
  const auto [fastest, slowest] = std::minmax_element(run.run_medians_s.begin(), run.run_medians_s.end());
  run.measured_s = *fastest;
  run.median_run_s = median_of(run.run_medians_s);
  if (run.run_medians_s.size() >= 2) {
    run.spread_percent = 100 * (*slowest - *fastest) / run.measured_s;
    run.spread_kind = "run-to-run";
  } else {
    run.spread_percent = 100 * (percentile(all_steps, 0.9) - percentile(all_steps, 0.1)) / run.measured_s;
    run.spread_kind = "step-to-step";
  }
  // Op by op: the prediction against the fastest run, the one the step time is measured on.
  try {
    const auto fastest_run = static_cast<std::size_t>(fastest - run.run_medians_s.begin());
    const report::RunStore store = report::RunStore::open(options.db);
    const std::string& id = run.run_ids[fastest_run];
    std::vector<report::TraceRecord> measured;
    for (std::int64_t step : store.trace_steps(id)) {
      if (step <= options.warmup_steps) continue;
      auto records = store.load_trace(id, step).records;
      measured.insert(measured.end(), records.begin(), records.end());
    }
    report::AlignOptions align;
    align.by = report::AlignBy::Rank;
    align.aggregate = report::Aggregate::Median;
    const report::TraceAlignment alignment = report::align_traces(prediction.trace, measured, align);
    for (const report::OpAlignment& op : report::worst_ops(alignment, 5, 20e-6)) {
      OpError e;
      e.op = std::string(strategy::to_string(op.code)) + (op.layer >= 0 ? " layer " + std::to_string(op.layer) : "") +
             (op.micro_batch >= 0 ? " mb " + std::to_string(op.micro_batch) : "") + " rank " + std::to_string(op.group);
      e.predicted_s = op.predicted_s;
      e.measured_s = op.measured_s;
      e.error_percent = op.relative_error ? 100 * *op.relative_error : 0;
      run.worst_ops.push_back(e);
    }
  } catch (const std::exception& error) {
    run.worst_ops.push_back({std::string("op alignment failed: ") + error.what(), 0, 0, 0});
  }
}

}  // namespace

ValidationReport run_validation(const std::vector<ValidationConfig>& matrix, const ValidationOptions& options,
                                const ValidationProgress& progress) {
  ValidationReport report;
  report.profile = options.profile;
  report.load_before = load_average();
  fs::create_directories(options.work_dir);
  const int repeats = std::max(1, options.repeats);
  const std::size_t total = matrix.size() * static_cast<std::size_t>(repeats + 1);
  std::size_t done = 0;

  // 1. The predictions: each scenario on the twin, every rank simulated.
  std::vector<ValidationRun> runs(matrix.size());
  std::vector<fs::path> scenario_paths(matrix.size());
  std::vector<sim::SimulationResult> predictions(matrix.size());
  for (std::size_t i = 0; i < matrix.size(); ++i) {
    ValidationRun& run = runs[i];
    run.config = matrix[i];
    scenario_paths[i] = options.work_dir / (kValidationRunPrefix + run.config.name + ".yaml");
    std::ofstream(scenario_paths[i]) << run.config.scenario_yaml(options.profile);
    sim::SimulationResult& prediction = predictions[i];
    try {
      const strategy::Scenario scenario = strategy::load_scenario(scenario_paths[i]);
      sim::SimulationOptions simulation;
      simulation.fold = false;
      prediction = sim::run_simulation_in_child(scenario, simulation);
    } catch (const std::exception& error) {
      prediction.ok = false;
      prediction.error = error.what();
    }
    if (progress) progress(++done, total, run.config.name + ": predicted");
    if (prediction.ok) {
      run.predicted_s = prediction.step_time_s;
    } else {
      run.error = "the twin: " + prediction.error;
      done += static_cast<std::size_t>(repeats);
    }
  }

  // 2. The measurements, repeat by repeat across the matrix (every configuration once, then
  // again), so that a slow or a fast spell of a shared machine falls on all of them alike instead
  // of on one, and the run-to-run spread shows it.
  std::vector<std::vector<double>> steps(matrix.size());
  if (options.reuse) {
    for (std::size_t i = 0; i < matrix.size(); ++i) {
      if (!runs[i].error.empty()) continue;
      reuse_stored_runs(runs[i], options, steps[i]);
      done += static_cast<std::size_t>(repeats);
      if (progress) progress(done, total, runs[i].config.name + ": stored runs");
    }
  }
  for (int repeat = 0; repeat < (options.reuse ? 0 : repeats); ++repeat) {
    for (std::size_t i = 0; i < matrix.size(); ++i) {
      ValidationRun& run = runs[i];
      if (!run.error.empty()) continue;
      run_engine_once(run, scenario_paths[i], options, steps[i]);
      if (progress) progress(++done, total, run.config.name + ": run " + std::to_string(repeat + 1));
      if (!run.error.empty()) done += static_cast<std::size_t>(repeats - repeat - 1);
    }
  }

  // 3. Per configuration: the measured step against the prediction, and the ops furthest off.
  for (std::size_t i = 0; i < matrix.size(); ++i) {
    ValidationRun& run = runs[i];
    if (run.error.empty() && run.run_medians_s.empty()) run.error = "no run";
    if (run.error.empty()) summarize(run, steps[i], predictions[i], options);
    report.runs.push_back(std::move(run));
  }
  report.load_after = load_average();
  double total_error = 0, total_median_run_error = 0, total_over = 0;
  int count = 0, count_over = 0;
  for (const ValidationRun& r : report.runs) {
    if (!r.ok) continue;
    if (r.config.oversubscribed) {
      total_over += std::abs(r.error_percent());
      ++count_over;
    } else {
      total_error += std::abs(r.error_percent());
      total_median_run_error += std::abs(r.median_run_error_percent());
      ++count;
    }
  }
  report.mape = count > 0 ? total_error / count : 0;
  report.median_run_mape = count > 0 ? total_median_run_error / count : 0;
  report.oversubscribed_mape = count_over > 0 ? total_over / count_over : 0;
  return report;
}

nlohmann::json validation_to_json(const ValidationReport& report) {
  nlohmann::json runs = nlohmann::json::array();
  for (const ValidationRun& r : report.runs) {
    nlohmann::json worst = nlohmann::json::array();
    for (const OpError& e : r.worst_ops)
      worst.push_back({{"op", e.op}, {"predicted_s", e.predicted_s}, {"measured_s", e.measured_s},
                       {"error_percent", e.error_percent}});
    nlohmann::json j{{"config", r.config.name},
                     {"ranks", r.config.ranks()},
                     {"threads", r.config.threads},
                     {"dp", r.config.dp},
                     {"tp", r.config.tp},
                     {"pp", r.config.pp},
                     {"oversubscribed", r.config.oversubscribed},
                     {"ok", r.ok},
                     {"predicted_s", r.predicted_s},
                     {"measured_s", r.measured_s},
                     {"error_percent", r.error_percent()},
                     {"median_run_s", r.median_run_s},
                     {"median_run_error_percent", r.median_run_error_percent()},
                     {"spread_percent", r.spread_percent},
                     {"within_spread", r.within_spread()},
                     {"spread_kind", r.spread_kind},
                     {"run_medians_s", r.run_medians_s},
                     {"run_ids", r.run_ids},
                     {"worst_ops", worst}};
    if (!r.ok) j["error"] = r.error;
    runs.push_back(j);
  }
  nlohmann::json j{{"mape", report.mape},
                   {"median_run_mape", report.median_run_mape},
                   {"runs", runs},
                   {"profile", report.profile},
                   {"load_average", {{"before", report.load_before}, {"after", report.load_after}}}};
  const bool any_over = std::any_of(report.runs.begin(), report.runs.end(),
                                    [](const ValidationRun& r) { return r.config.oversubscribed; });
  if (any_over) j["oversubscribed_mape"] = report.oversubscribed_mape;
  return j;
}

}  // namespace tandem::calibration
