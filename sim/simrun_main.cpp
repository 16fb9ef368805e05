// simrun: what-if studies on the twin. `simrun [scenario.yaml]` simulates one training step (or a
// collective benchmark) of the scenario and reports where the time goes; see --help.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "report/atomic_file.hpp"
#include "report/chrome_trace.hpp"
#include "report/command_line.hpp"
#include "report/machine.hpp"
#include "report/run_store.hpp"
#include "report/run_info.hpp"
#include "sim/run_records.hpp"
#include "sim/simulation.hpp"
#include "sim/text_report.hpp"
#include "strategy/embedded_files.hpp"
#include "strategy/schema.hpp"
#include "strategy/units.hpp"
#include "tandem/version.hpp"

namespace {

using namespace tandem;
using report::kExitBadInput;
using report::kExitFailure;

void print_errors(const strategy::ScenarioError& error) {
  for (const auto& e : error.errors()) std::cerr << "error: " << e.message() << "\n";
}

// A progress bar on stderr when it is a terminal.
class ProgressBar {
 public:
  ProgressBar(bool enabled, std::string label) : enabled_(enabled && ::isatty(2)), label_(std::move(label)) {}
  void update(double fraction, const std::string& detail = "") {
    if (!enabled_) return;
    const int width = 30;
    const int filled = static_cast<int>(fraction * width + 0.5);
    std::fprintf(stderr, "\r%s [%s%s] %3.0f%% %s", label_.c_str(), std::string(static_cast<std::size_t>(filled), '#').c_str(),
                 std::string(static_cast<std::size_t>(width - filled), ' ').c_str(), 100 * fraction, detail.c_str());
    std::fflush(stderr);
    shown_ = true;
  }
  ~ProgressBar() {
    if (shown_) std::fprintf(stderr, "\r%*s\r", 80, "");
  }

 private:
  bool enabled_;
  std::string label_;
  bool shown_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "simrun: simulate one training step (or a collective) of a scenario on the twin of a cluster.\n"
      "With no scenario file, the built-in default scenario runs."};
  app.set_version_flag("--version", std::string("simrun (Tandem) ") + kVersion + " (git " + kGitRevision + ")");
  std::string scenario_path;
  bool json_output = false;
  std::vector<std::string> sweeps;
  bool check = false;
  std::string trace_path;
  std::string db_path;
  bool no_db = false;
  bool no_fold = false;
  int jobs = 0;
  std::string best_path;
  bool for_engine = false;
  bool schema_doc = false;
  bool quiet = false;
  bool verbose = false;
  std::size_t flow_budget = 2048;
  app.add_option("scenario", scenario_path, "scenario YAML file (default: the built-in `default` scenario)");
  app.add_flag("--json", json_output, "print only JSON on stdout (logs and progress go to stderr)");
  app.add_option("--sweep", sweeps, "KEY=V1,V2,... sweep a key (repeatable; adds to or replaces the file's sweep)");
  app.add_flag("--check", check, "validate the scenario and print its memory estimate without simulating");
  app.add_option("--trace", trace_path, "write the per-op trace as a Chrome trace (opens in Perfetto)");
  app.add_option("--db", db_path, "SQLite run store to record the run in (default: $TANDEM_DB or "
                                  "~/.local/share/tandem/runs.db)");
  app.add_flag("--no-db", no_db, "do not record the run");
  app.add_flag("--no-fold", no_fold, "simulate every rank instead of one per rank class (validation at small scale)");
  app.add_option("--jobs,-j", jobs, "parallel simulations in a sweep (default: one per core)")->check(CLI::PositiveNumber);
  app.add_option("--best", best_path, "write the fastest strategy that fits as a complete scenario");
  app.add_flag("--for-engine", for_engine, "with --best/--sweep: only strategies `engine train` can run");
  app.add_flag("--schema-doc", schema_doc, "print the scenario reference (Markdown) and exit");
  app.add_option("--flow-budget", flow_budget, "largest number of concurrent flows per collective phase before "
                                               "folding by translation or sampling")
      ->check(CLI::PositiveNumber);
  auto* quiet_flag = app.add_flag("--quiet,-q", quiet, "only errors on stderr");
  app.add_flag("--verbose,-v", verbose, "debug logging (and SimGrid warnings)")->excludes(quiet_flag);
  if (const auto exit_code = report::parse_command_line(app, argc, argv)) return *exit_code;
  report::log_to_stderr("simrun", quiet, verbose);

  if (schema_doc) {
    std::cout << strategy::scenario_reference_markdown();
    return 0;
  }

  // ---- the scenario ---------------------------------------------------------------------------
  strategy::Scenario scenario;
  std::vector<strategy::SweepAxis> axes;
  try {
    if (scenario_path.empty()) {
      spdlog::info("no scenario file given: running the built-in `default` scenario");
      scenario = strategy::load_builtin_scenario("default");
    } else {
      scenario = strategy::load_scenario(scenario_path);
    }
    axes = scenario.sweep;
    for (const std::string& argument : sweeps) {
      strategy::SweepAxis axis = strategy::parse_sweep_argument(argument);
      auto it = std::find_if(axes.begin(), axes.end(), [&](const auto& a) { return a.key == axis.key; });
      if (it != axes.end())
        *it = axis;
      else
        axes.push_back(axis);
    }
  } catch (const strategy::ScenarioError& error) {
    print_errors(error);
    return kExitBadInput;
  } catch (const std::exception& error) {
    std::cerr << "error: " << error.what() << "\n";
    return kExitBadInput;
  }
  if (for_engine && scenario.is_collective()) {
    std::cerr << "error: --for-engine: a collective scenario is not something engine train runs\n";
    return kExitBadInput;
  }
  if (!best_path.empty() && scenario.is_collective()) {
    std::cerr << "error: --best: a collective scenario has no training strategy to choose\n";
    return kExitBadInput;
  }

  if (check) {
    if (scenario.is_collective()) {
      if (json_output)
        std::cout << nlohmann::json{{"valid", true}, {"gpus", scenario.cluster.gpus()}}.dump(2) << "\n";
      else
        std::cout << scenario.name << ": valid collective scenario on " << scenario.cluster.gpus() << " GPUs\n";
      return 0;
    }
    const sim::MemorySummary memory = sim::summarize_memory(scenario);
    if (json_output) {
      std::cout << nlohmann::json{{"valid", true},
                                  {"gpus", scenario.cluster.gpus()},
                                  {"memory",
                                   {{"peak_bytes_per_gpu", memory.peak_bytes_per_gpu},
                                    {"weights", memory.weights},
                                    {"gradients", memory.gradients},
                                    {"optimizer", memory.optimizer},
                                    {"activations", memory.activations},
                                    {"capacity_bytes", memory.capacity_bytes},
                                    {"fits", memory.fits},
                                    {"worst_stage", memory.worst_stage}}}}
                       .dump(2)
                << "\n";
    } else {
      std::cout << scenario.name << ": valid. " << sim::scenario_summary(scenario) << "\n";
      std::cout << "memory: " << sim::format_memory(memory) << "\n";
    }
    return 0;
  }

  // ---- the run store --------------------------------------------------------------------------
  std::optional<report::RunStore> store;
  if (!no_db) {
    const std::filesystem::path path = db_path.empty() ? report::default_database_path() : std::filesystem::path(db_path);
    try {
      store.emplace(report::RunStore::open(path));
    } catch (const std::exception& error) {
      if (!db_path.empty()) {
        std::cerr << "error: " << error.what() << "\n";
        return kExitFailure;
      }
      spdlog::warn("not recording the run: {}", error.what());
    }
  }

  sim::SimulationOptions options;
  options.fold = !no_fold;
  options.verbose = verbose;
  options.flow_budget = flow_budget;

  // ---- sweeps and --best ----------------------------------------------------------------------
  if (!axes.empty() || !best_path.empty()) {
    sim::SweepOptions sweep_options;
    sweep_options.simulation = options;
    sweep_options.simulation.record_trace = false;
    sweep_options.jobs = jobs;
    sweep_options.for_engine = for_engine;
    std::vector<sim::SweepResult> results;
    {
      ProgressBar bar(!quiet, "sweep");
      const std::size_t total = strategy::sweep_points(axes).size();
      bar.update(0, "0/" + std::to_string(total));
      results = sim::run_sweep(scenario, axes, sweep_options, [&](std::size_t done, std::size_t all) {
        bar.update(static_cast<double>(done) / static_cast<double>(std::max<std::size_t>(1, all)),
                   std::to_string(done) + "/" + std::to_string(all));
      });
    }
    if (store) {
      try {
        sim::record_sweep(*store, scenario, results);
      } catch (const std::exception& error) {
        spdlog::warn("could not record the sweep in {}: {}", store->path().string(), error.what());
      }
    }
    if (json_output)
      std::cout << sim::sweep_to_json(results).dump(2) << "\n";
    else
      std::cout << sim::format_sweep(results);
    if (!best_path.empty()) {
      const sim::SweepResult* best = sim::best_sweep_result(results);
      if (best == nullptr) {
        std::cerr << "error: --best: no configuration is feasible (valid, fits in memory"
                  << (for_engine || scenario.cluster.is_cpu() ? ", runnable by engine train" : "") << ")\n";
        return kExitFailure;
      }
      try {
        const YAML::Node document = sim::best_scenario_document(*best);
        std::string header = "# Written by simrun --best from " + (scenario_path.empty() ? std::string("the built-in default") : scenario_path) +
                             ": the fastest feasible configuration";
        for (const auto& [key, value] : best->overrides) header += " " + key + "=" + value;
        report::write_file_atomically(best_path, header + "\n" + strategy::document_to_yaml(document));
        if (!json_output)
          std::cout << "\nbest: " << best_path << " (step time " << strategy::format_duration(best->result.step_time_s)
                    << ")\n";
      } catch (const std::exception& error) {
        std::cerr << "error: --best: " << error.what() << "\n";
        return kExitFailure;
      }
    }
    return 0;
  }

  // ---- one simulation -------------------------------------------------------------------------
  std::string run_id;
  if (store) {
    try {
      run_id = store->begin_run(report::run_info_for(scenario, report::RunKind::Simulation));
    } catch (const std::exception& error) {
      spdlog::warn("not recording the run: {}", error.what());
      store.reset();
    }
  }
  sim::SimulationResult result;
  {
    ProgressBar bar(!quiet, "simulating");
    result = sim::run_simulation_in_child(scenario, options, [&](double fraction) { bar.update(fraction); });
  }
  if (!result.ok) {
    std::cerr << "error: " << result.error << "\n";
    if (store) {
      try {
        store->fail_run(run_id, result.error);
      } catch (const std::exception&) {
      }
    }
    return kExitFailure;
  }
  if (store) {
    try {
      if (!result.trace.empty()) store->add_trace(run_id, 0, result.trace);
      store->finish_run(run_id, sim::result_to_json(result).dump(), sim::headline_of(result));
      spdlog::debug("recorded run {} in {}", run_id, store->path().string());
    } catch (const std::exception& error) {
      spdlog::warn("could not record the run in {}: {}", store->path().string(), error.what());
    }
  }
  if (!trace_path.empty()) {
    if (result.collective) {
      spdlog::warn("--trace: a collective scenario has no per-op trace; nothing written");
    } else {
      try {
        report::write_chrome_trace(std::filesystem::path(trace_path), std::span<const report::TraceRecord>(result.trace));
      } catch (const std::exception& error) {
        std::cerr << "error: --trace: " << error.what() << "\n";
        return kExitFailure;
      }
    }
  }
  if (json_output) {
    nlohmann::json j = sim::result_to_json(result);
    if (!run_id.empty()) j["run_id"] = run_id;
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << sim::format_result(scenario, result);
    if (!result.collective && !result.memory.fits)
      std::cout << "  note: this strategy does not fit in GPU memory (simulated anyway)\n";
  }
  return 0;
}
