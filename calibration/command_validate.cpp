// tandem-calibrate validate: the twin against real engine train runs on a held-out matrix.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "calibration/commands.hpp"
#include "calibration/microbenchmarks.hpp"
#include "calibration/process.hpp"
#include "calibration/validation.hpp"
#include "report/run_store.hpp"
#include "strategy/units.hpp"
#include "strategy/validation_error.hpp"
#include "tandem/version.hpp"

namespace tandem::calibration {
namespace fs = std::filesystem;

namespace {

// The engine next to this executable (a build tree or an install), else on PATH.
fs::path find_engine() {
  std::error_code code;
  const fs::path self = fs::read_symlink("/proc/self/exe", code);
  if (!code) {
    const fs::path sibling = self.parent_path() / "engine";
    if (::access(sibling.c_str(), X_OK) == 0) return sibling;
  }
  return find_on_path("engine");
}

}  // namespace

int run_validate(const ValidateArguments& arguments, const CommonOptions& common) {
  ValidationOptions options;
  options.reuse = arguments.reuse;
  options.engine = arguments.engine.empty() ? find_engine() : fs::path(arguments.engine);
  if (!options.reuse && (options.engine.empty() || ::access(options.engine.c_str(), X_OK) != 0)) {
    std::cerr << "error: --engine: no engine executable found" << (arguments.engine.empty() ? " next to tandem-calibrate or on PATH" : " at " + arguments.engine)
              << " (build the engine target, or pass --engine PATH)\n";
    return kExitBadInput;
  }
  options.mpirun = arguments.mpirun.empty() ? find_mpirun() : fs::path(arguments.mpirun);
  if (!arguments.mpirun.empty() && ::access(options.mpirun.c_str(), X_OK) != 0) {
    std::cerr << "error: --mpirun " << arguments.mpirun << ": not an executable\n";
    return kExitBadInput;
  }
  // The profile: a built-in name, or a file (made absolute: the scenarios live elsewhere).
  options.profile = arguments.profile.empty() ? "cpu" : arguments.profile;
  try {
    if (fs::exists(options.profile)) options.profile = fs::absolute(options.profile).lexically_normal().string();
    const strategy::HardwareProfile profile = strategy::load_hardware_profile(options.profile, fs::current_path(), "--profile");
    if (profile.backend != "cpu") {
      std::cerr << "error: --profile " << options.profile << ": a " << profile.backend
                << " profile; validate runs engine train on this machine's CPU (give a cpu profile)\n";
      return kExitBadInput;
    }
  } catch (const strategy::ScenarioError& error) {
    for (const auto& e : error.errors()) std::cerr << "error: " << e.message() << "\n";
    return kExitBadInput;
  }
  options.db = arguments.db.empty() ? report::default_database_path() : fs::path(arguments.db);
  options.steps = arguments.steps > 0 ? arguments.steps : (arguments.quick ? 6 : 20);
  options.repeats = arguments.repeats > 0 ? arguments.repeats : (arguments.quick ? 1 : 5);
  options.warmup_steps = std::min(2, options.steps - 1);
  options.quiet = common.quiet;
  if (options.steps < 2) {
    std::cerr << "error: --steps " << options.steps << ": at least 2 (the first step is a warm-up)\n";
    return kExitBadInput;
  }
  options.work_dir = fs::temp_directory_path() / ("tandem-validate-" + std::to_string(::getpid()));

  const int cores = physical_cores();
  std::vector<ValidationConfig> matrix =
      validation_matrix(cores, arguments.quick, arguments.oversubscribed, !options.mpirun.empty());
  if (!arguments.only.empty()) {
    std::erase_if(matrix, [&](const ValidationConfig& c) {
      return std::none_of(arguments.only.begin(), arguments.only.end(),
                          [&](const std::string& part) { return c.name.find(part) != std::string::npos; });
    });
    if (matrix.empty()) {
      std::cerr << "error: --config: no configuration of the matrix matches\n";
      return kExitBadInput;
    }
  }
  if (options.mpirun.empty()) spdlog::warn("no mpirun on PATH: the 2-rank configurations (DP, TP, PP) are left out");
  if (options.reuse && !fs::exists(options.db)) {
    std::cerr << "error: --reuse: no run store at " << options.db.string() << " (--db names the store of an earlier validate)\n";
    return kExitBadInput;
  }
  const double load = load_average();
  if (load > 0.5 * cores && !arguments.json && !options.reuse)
    spdlog::warn("the machine is busy (load average {:.1f} on {} cores): measured step times will be slow and noisy",
                 load, cores);

  std::optional<report::RunStore> store;
  std::string validation_id;
  try {
    if (!options.db.parent_path().empty()) fs::create_directories(options.db.parent_path());
    store.emplace(report::RunStore::open(options.db));
    report::RunInfo info;
    info.kind = report::RunKind::Validation;
    info.name = "validate";
    info.profile_name = options.profile;
    info.tandem_version = kVersion;
    info.git_revision = kGitRevision;
    validation_id = store->begin_run(info);
  } catch (const std::exception& error) {
    std::cerr << "error: --db " << options.db.string() << ": " << error.what() << "\n";
    return kExitFailure;
  }

  ValidationReport report;
  try {
    const bool bar = !common.quiet && !arguments.json && ::isatty(2);
    report = run_validation(matrix, options, [&](std::size_t done, std::size_t total, const std::string& label) {
      if (common.quiet || arguments.json) return;
      if (bar) {
        const int width = 24;
        const int filled = static_cast<int>(width * done / std::max<std::size_t>(1, total));
        std::fprintf(stderr, "\rvalidate [%s%s] %zu/%zu %-40s", std::string(static_cast<std::size_t>(filled), '#').c_str(),
                     std::string(static_cast<std::size_t>(width - filled), ' ').c_str(), done, total, label.substr(0, 40).c_str());
      } else {
        std::fprintf(stderr, "validate: %zu/%zu %s\n", done, total, label.c_str());
      }
      std::fflush(stderr);
    });
    if (bar) std::fprintf(stderr, "\r%90s\r", "");
  } catch (const std::exception& error) {
    std::cerr << "error: " << error.what() << "\n";
    store->fail_run(validation_id, error.what());
    return kExitFailure;
  }
  std::error_code ignored;
  fs::remove_all(options.work_dir, ignored);

  nlohmann::json json = validation_to_json(report);
  json["validation_run"] = validation_id;
  json["cores"] = cores;
  json["steps"] = options.steps;
  json["repeats"] = options.repeats;
  json["reused_stored_runs"] = options.reuse;
  report::Headline headline;
  try {
    store->finish_run(validation_id, json.dump(), headline);
  } catch (const std::exception& error) {
    spdlog::warn("could not record the validation: {}", error.what());
  }
  const bool all_ok = std::all_of(report.runs.begin(), report.runs.end(), [](const ValidationRun& r) { return r.ok; });
  if (arguments.json) {
    std::cout << json.dump(2) << "\n";
    return all_ok ? 0 : kExitFailure;
  }

  std::printf("validation of %s on %d cores, %d steps per run (first %d not timed), %d run%s per configuration%s\n",
              options.profile.c_str(), cores, options.steps, options.warmup_steps, options.repeats,
              options.repeats > 1 ? "s" : "", options.reuse ? " (--reuse: the stored runs, none run now)" : "");
  std::printf("%-22s %5s %7s %12s %12s %8s %12s %8s %9s\n", "configuration", "ranks", "threads", "predicted", "measured",
              "error", "median run", "error", "spread");
  for (const ValidationRun& r : report.runs) {
    if (!r.ok) {
      std::printf("%-22s %5d %7d  failed: %s\n", r.config.name.c_str(), r.config.ranks(), r.config.threads, r.error.c_str());
      continue;
    }
    std::printf("%-22s %5d %7d %12s %12s %+7.1f%% %12s %+7.1f%% %8.1f%%%s\n", r.config.name.c_str(), r.config.ranks(),
                r.config.threads, strategy::format_duration(r.predicted_s).c_str(),
                strategy::format_duration(r.measured_s).c_str(), r.error_percent(),
                strategy::format_duration(r.median_run_s).c_str(), r.median_run_error_percent(), r.spread_percent,
                r.config.oversubscribed ? "  (oversubscribed)" : "");
  }
  std::printf("\nmean absolute error of the step time: %.1f%% against the fastest run (%.1f%% against the median run)",
              report.mape, report.median_run_mape);
  const auto measured = std::count_if(report.runs.begin(), report.runs.end(), [](const ValidationRun& r) { return r.ok; });
  const auto within = std::count_if(report.runs.begin(), report.runs.end(),
                                    [](const ValidationRun& r) { return r.ok && r.within_spread(); });
  std::printf("\n%ld of %ld configurations' errors are within their spread (noise cannot tell them from 0)",
              static_cast<long>(within), static_cast<long>(measured));
  if (std::any_of(report.runs.begin(), report.runs.end(), [](const ValidationRun& r) { return r.config.oversubscribed; }))
    std::printf("  (oversubscribed configurations, separately: %.1f%%)", report.oversubscribed_mape);
  std::printf("\nload average %.2f before, %.2f after (%d cores); measured = the fastest run's median step (a shared "
              "machine only slows a run down); spread = %s range / measured\n",
              report.load_before, report.load_after, cores, options.repeats > 1 ? "run-to-run" : "10th-90th percentile step");
  std::printf("\nops furthest off (op-by-op alignment of the twin's trace and the run's, median per op; >= 20 us measured):\n");
  for (const ValidationRun& r : report.runs) {
    if (!r.ok || r.worst_ops.empty()) continue;
    std::printf("  %s:\n", r.config.name.c_str());
    for (std::size_t i = 0; i < std::min<std::size_t>(3, r.worst_ops.size()); ++i) {
      const OpError& e = r.worst_ops[i];
      std::printf("      %-40s predicted %10s  measured %10s  %+7.1f%%\n", e.op.c_str(),
                  strategy::format_duration(e.predicted_s).c_str(), strategy::format_duration(e.measured_s).c_str(),
                  e.error_percent);
    }
  }
  std::printf("\nrecorded as validation run %s in %s\n", validation_id.c_str(), options.db.c_str());
  return all_ok ? 0 : kExitFailure;
}

}  // namespace tandem::calibration
