// tandem-calibrate fit: a hardware profile from the microbenchmarks of `engine profile`.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <set>

#include <spdlog/spdlog.h>

#include "calibration/commands.hpp"
#include "calibration/compute_fit.hpp"
#include "calibration/microbenchmarks.hpp"
#include "calibration/process.hpp"
#include "calibration/validation.hpp"
#include "report/atomic_file.hpp"
#include "report/run_store.hpp"
#include "strategy/units.hpp"
#include "strategy/validation_error.hpp"

namespace tandem::calibration {
namespace fs = std::filesystem;

namespace {

std::string parameter_text(const std::string& name, double value) {
  char text[64];
  if (name.find("bandwidth") != std::string::npos) return strategy::format_bandwidth(value);
  if (name.find("latency") != std::string::npos || name.find("overhead") != std::string::npos ||
      name.starts_with("gemm.output_cost"))
    return strategy::format_duration(value);
  if (name.starts_with("compute.fp32")) {
    std::snprintf(text, sizeof text, "%.1f GFLOP/s", value / 1e9);
    return text;
  }
  std::snprintf(text, sizeof text, "%.4g", value);
  return text;
}

}  // namespace

int run_fit(const FitArguments& arguments, const CommonOptions& common) {
  const fs::path db = arguments.db.empty() ? report::default_database_path() : fs::path(arguments.db);
  if (!fs::exists(db)) {
    std::cerr << "error: --db " << db.string() << ": no run store there (record microbenchmarks first: engine profile --db "
              << db.string() << ")\n";
    return kExitBadInput;
  }
  strategy::HardwareProfile base;
  try {
    base = strategy::load_hardware_profile(arguments.base, fs::current_path(), "--base");
  } catch (const strategy::ScenarioError& error) {
    for (const auto& e : error.errors()) std::cerr << "error: " << e.message() << "\n";
    return kExitBadInput;
  }

  std::vector<report::Microbenchmark> records;
  std::vector<std::string> runs_used;
  std::vector<InSituOp> in_situ;
  std::vector<std::string> training_runs_used;
  int cores = 0;
  try {
    const report::RunStore store = report::RunStore::open(db);
    std::vector<std::string> candidates;
    if (!arguments.run.empty()) {
      if (!store.has_run(arguments.run)) {
        std::cerr << "error: --run " << arguments.run << ": no such run in " << db.string() << "\n";
        return kExitBadInput;
      }
      candidates.push_back(arguments.run);
    } else {
      report::RunFilter filter;
      filter.kind = report::RunKind::Profile;
      filter.status = report::RunStatus::Finished;
      filter.limit = 0;
      for (const auto& run : store.list_runs(filter)) candidates.push_back(run.id);  // newest first
    }
    // The newest run with compute records and the newest with communication records (one
    // `engine profile` on one process, one under mpirun, or one run holding both).
    bool have_compute = false, have_communication = false;
    for (const std::string& id : candidates) {
      report::MicrobenchmarkFilter filter;
      filter.run_id = id;
      const auto stored = store.load_microbenchmarks(filter);
      bool compute = false, communication = false;
      for (const auto& s : stored) {
        strategy::Op op;
        int threads = 0;
        if (op_of_microbenchmark(s.benchmark, op, threads)) compute = true;
        else communication = true;
      }
      const bool use = (compute && !have_compute) || (communication && !have_communication) || !arguments.run.empty();
      if (!use) continue;
      std::optional<std::string> other_transport;  // of communication records not measured as validate runs ranks
      for (const auto& s : stored) {
        strategy::Op op;
        int threads = 0;
        const bool is_compute = op_of_microbenchmark(s.benchmark, op, threads);
        if ((is_compute && !have_compute) || (!is_compute && !have_communication) || !arguments.run.empty()) {
          records.push_back(s.benchmark);
          if (is_compute) continue;
          const auto params = nlohmann::json::parse(s.benchmark.params_json.empty() ? "{}" : s.benchmark.params_json, nullptr, false);
          const std::string transport = params.is_object() ? params.value("mpi_transport", std::string("?")) : "?";
          if (transport != tandem_mpi_transport()) other_transport = transport;
        }
      }
      if (other_transport && !arguments.json)
        spdlog::warn("the communication microbenchmarks of profile run {} ran over MPI transport '{}', not the one "
                     "validate and engine profile start their ranks with ('{}'): the fitted network describes other "
                     "runs than validate measures (measure them with `engine profile --ranks 2`)",
                     id, *other_transport == "?" ? "unrecorded" : other_transport->empty() ? "mpirun's defaults" : *other_transport,
                     tandem_mpi_transport());
      if (compute && !have_compute) {
        const report::RunRecord run = store.load_run(id);
        const auto result = nlohmann::json::parse(run.result_json.empty() ? "{}" : run.result_json, nullptr, false);
        if (result.is_object() && result.contains("machine"))
          cores = result["machine"].value("physical_cores", 0);
      }
      have_compute = have_compute || compute;
      have_communication = have_communication || communication;
      runs_used.push_back(id);
      if ((have_compute && have_communication) || !arguments.run.empty()) break;
    }
    // In-situ ops: the newest finished training runs on the base profile's backend that are not
    // part of a validation (those are the held-out matrix).
    if (arguments.compute_from != "microbenchmarks" && arguments.max_runs > 0) {
      report::RunFilter filter;
      filter.kind = report::RunKind::Training;
      filter.status = report::RunStatus::Finished;
      filter.limit = 0;
      std::vector<std::string> training;
      for (const auto& run : store.list_runs(filter)) {
        if (static_cast<int>(training.size()) >= arguments.max_runs) break;
        if (run.name.starts_with(kValidationRunPrefix)) continue;  // the held-out matrix
        if (!run.parent_run.empty() && store.has_run(run.parent_run) &&
            store.load_run(run.parent_run).info.kind == report::RunKind::Validation)
          continue;
        training.push_back(run.id);
      }
      const std::size_t repeats_seen = training.size();
      training = fastest_run_per_configuration(store, training, 2);
      if (training.size() < repeats_seen)
        spdlog::info("in-situ ops: the fastest of the repeated runs of each configuration ({} of {} runs)",
                     training.size(), repeats_seen);
      std::vector<std::string> notes;
      in_situ = in_situ_ops(store, training, &notes, 2, base.backend);
      for (const std::string& n : notes) spdlog::info("not used: {}", n);
      std::set<std::string> used;
      for (const InSituOp& o : in_situ) used.insert(o.run_id);
      training_runs_used.assign(used.begin(), used.end());
      if (!training.empty() && in_situ.empty())
        spdlog::warn("none of the {} training runs is usable (above): the compute model is fitted on the "
                     "microbenchmarks alone (ops alone on hot cores); record calibration runs with: engine profile --db {}",
                     training.size(), db.string());
    }
  } catch (const std::exception& error) {
    std::cerr << "error: " << error.what() << "\n";
    return kExitFailure;
  }
  if (records.empty() && in_situ.empty()) {
    std::cerr << "error: " << db.string() << " holds no microbenchmarks"
              << (arguments.run.empty() ? "" : " for run " + arguments.run)
              << " (record them with: engine profile --db " << db.string() << ")\n";
    return kExitBadInput;
  }

  ProfileFitOptions options;
  options.cores = cores > 0 ? cores : physical_cores();
  options.verbose = common.verbose;
  options.source = arguments.compute_from == "runs"              ? ComputeFitSource::Runs
                   : arguments.compute_from == "microbenchmarks" ? ComputeFitSource::Microbenchmarks
                                                                 : ComputeFitSource::Auto;
  ProfileFitResult fit;
  try {
    fit = fit_profile(records, base, options, in_situ);
  } catch (const std::invalid_argument& error) {
    std::cerr << "error: " << error.what() << "\n";
    return kExitBadInput;
  }

  strategy::HardwareProfile profile = fit.profile;
  profile.name = arguments.name.empty() ? base.name + "-fitted" : arguments.name;
  std::string run_list;
  for (const std::string& id : runs_used) run_list += (run_list.empty() ? "" : ", ") + id;
  char line[768];
  std::snprintf(line, sizeof line,
                "tandem-calibrate fit in %s: compute on %zu %s (%s), communication on %zu microbenchmarks of "
                "profile run(s) %s: compute mean |error| %.1f%% -> %.1f%%, communication %.1f%% -> %.1f%%",
                db.filename().c_str(), fit.compute_records,
                fit.compute_source == "training runs" ? "in-situ ops" : "microbenchmarks",
                fit.compute_source == "training runs" ? (std::to_string(training_runs_used.size()) + " training runs").c_str()
                                                      : "engine profile",
                fit.communication_records, run_list.c_str(), fit.compute_mape_before, fit.compute_mape_after,
                fit.communication_mape_before, fit.communication_mape_after);
  profile.sources.insert(profile.sources.begin(), line);
  if (profile.backend == "cpu")
    profile.description = "CPU ranks of the engine's CPU backend on this machine (" + std::to_string(profile.cores) +
                          " cores), fitted by tandem-calibrate fit";
  try {
    report::write_file_atomically(arguments.out, strategy::hardware_profile_to_yaml(profile));
    (void)strategy::load_hardware_profile(fs::absolute(arguments.out).string(), fs::current_path(), "--out");
  } catch (const std::exception& error) {
    std::cerr << "error: --out " << arguments.out << ": " << error.what() << "\n";
    return kExitFailure;
  }

  if (arguments.json) {
    nlohmann::json out = fit_result_to_json(fit);
    out["profile"] = arguments.out;
    out["backend"] = profile.backend;
    out["runs"] = runs_used;
    out["training_runs"] = training_runs_used;
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  // Residuals: per kind, the mean |error| and the worst records.
  std::map<std::string, std::vector<const RecordResidual*>> by_kind;
  for (const RecordResidual& r : fit.residuals) by_kind[r.kind].push_back(&r);
  std::printf("residuals of the fit (predicted with the fitted profile vs measured, per record kind):\n");
  for (auto& [kind, list] : by_kind) {
    double total = 0;
    for (const RecordResidual* r : list) total += std::abs(r->error_percent());
    std::sort(list.begin(), list.end(), [](const RecordResidual* a, const RecordResidual* b) {
      return std::abs(a->error_percent()) > std::abs(b->error_percent());
    });
    std::printf("  %-14s %4zu records, mean |error| %5.1f%%; worst:\n", kind.c_str(), list.size(), total / list.size());
    for (std::size_t i = 0; i < std::min<std::size_t>(common.verbose ? list.size() : 3, list.size()); ++i)
      std::printf("      %-58s measured %10s  predicted %10s  %+6.1f%%\n", list[i]->label.c_str(),
                  strategy::format_duration(list[i]->measured_s).c_str(),
                  strategy::format_duration(list[i]->predicted_s).c_str(), list[i]->error_percent());
  }
  std::printf("\nparameters (base %s -> fitted):\n", base.name.c_str());
  for (const FitParameter& p : fit.parameters) {
    std::printf("  %-52s %14s -> %-14s", p.name.c_str(), parameter_text(p.name, p.before).c_str(),
                parameter_text(p.name, p.after).c_str());
    if (std::isfinite(p.standard_error) && p.standard_error > 0)
      std::printf(" (± %s)", parameter_text(p.name, p.standard_error).c_str());
    std::printf("\n");
  }
  std::printf("\ncompute fitted on %zu %s: error of their summed time %.1f%% with %s, %.1f%% fitted "
              "(mean |error| per op %.1f%% -> %.1f%%)",
              fit.compute_records,
              fit.compute_source == "training runs"
                  ? ("in-situ ops of " + std::to_string(training_runs_used.size()) + " training runs").c_str()
                  : "microbenchmarks",
              fit.compute_time_error_before, base.name.c_str(), fit.compute_time_error_after, fit.compute_mape_before,
              fit.compute_mape_after);
  if (fit.compute_source == "training runs" && fit.microbenchmark_mape > 0)
    std::printf(" (the compute microbenchmarks, alone on hot cores: %.1f%%)", fit.microbenchmark_mape);
  if (fit.compute_kept_base)
    std::printf(" -- the fit (%.1f%%) did not beat %s, so its compute parameters are kept (re-profile on an idle machine)",
                fit.compute_time_error_rejected, base.name.c_str());
  if (fit.communication_records > 0)
    std::printf("; communication records: %.1f%% -> %.1f%%", fit.communication_mape_before, fit.communication_mape_after);
  const std::string sharing = profile.shared_cores ? ", ranks share " + std::to_string(profile.cores) + " cores" : "";
  std::printf("\nwrote %s (backend %s%s); use it as cluster.gpu: %s\n", arguments.out.c_str(), profile.backend.c_str(),
              sharing.c_str(), arguments.out.c_str());
  return 0;
}

}  // namespace tandem::calibration
