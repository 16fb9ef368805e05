#include "calibration/profile_command.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>

#include <nlohmann/json.hpp>

#include "calibration/microbenchmarks.hpp"
#include "report/machine.hpp"
#include "report/run_store.hpp"
#include "tandem/version.hpp"

namespace tandem::calibration {

void add_profile_options(CLI::App& command, ProfileArguments& arguments) {
  command.add_option("--db", arguments.db,
                     "run store to record the microbenchmarks in (default: $TANDEM_DB or "
                     "~/.local/share/tandem/runs.db)");
  command.add_flag("--quick", arguments.quick, "a small grid (seconds): smoke tests and CI");
  command.add_option("--threads", arguments.threads, "kernel thread counts to measure (default: 1 and the "
                                                     "physical cores)")
      ->delimiter(',')
      ->check(CLI::PositiveNumber);
  command.add_flag("--only-communication", arguments.skip_compute,
                   "skip the compute microbenchmarks (under mpirun: only collectives and send/recv)");
  command.add_option("--min-time", arguments.min_seconds, "seconds each case is repeated for (default 0.03, "
                                                           "quick 0.005)")
      ->check(CLI::NonNegativeNumber);
  command.add_option("--name", arguments.name, "name of the profile run in the store");
  command.add_flag("--json", arguments.json, "print one JSON object (run id, record counts) on stdout");
  command.add_flag("-q,--quiet", arguments.quiet, "no progress bar or summary");
}

namespace {

class ProgressBar {
 public:
  explicit ProgressBar(bool enabled) : enabled_(enabled), terminal_(::isatty(2) != 0) {}
  ~ProgressBar() { finish(); }
  void update(std::size_t done, std::size_t total, const std::string& label) {
    if (!enabled_ || total == 0) return;
    const double fraction = static_cast<double>(done) / static_cast<double>(total);
    if (terminal_) {
      const int width = 28;
      const int filled = static_cast<int>(fraction * width + 0.5);
      std::string text = label.substr(0, 44);
      std::fprintf(stderr, "\rprofile [%s%s] %3.0f%% %-44s", std::string(static_cast<std::size_t>(filled), '#').c_str(),
                   std::string(static_cast<std::size_t>(width - filled), ' ').c_str(), 100 * fraction, text.c_str());
      shown_ = true;
    } else {
      // Not a terminal (a log file): a line every tenth.
      const int decile = static_cast<int>(fraction * 10);
      if (decile != last_decile_) {
        std::fprintf(stderr, "profile: %3.0f%% (%zu/%zu) %s\n", 100 * fraction, done, total, label.c_str());
        last_decile_ = decile;
      }
    }
    std::fflush(stderr);
  }
  void finish() {
    if (shown_) std::fprintf(stderr, "\r%*s\r", 100, "");
    shown_ = false;
  }

 private:
  bool enabled_;
  bool terminal_;
  bool shown_ = false;
  int last_decile_ = -1;
};

}  // namespace

int run_profile(const ProfileArguments& arguments, comm::Communicator& world) {
  const bool root = world.rank() == 0;
  MicrobenchmarkOptions options;
  options.quick = arguments.quick;
  options.threads = arguments.threads;
  options.min_seconds = arguments.min_seconds > 0 ? arguments.min_seconds : (arguments.quick ? 0.005 : 0.03);
  if (arguments.quick) options.max_repeats = 50;
  if (const char* hot = std::getenv("TANDEM_PROFILE_HOT_CACHES"); hot != nullptr && hot[0] == '1') options.evict_bytes = 0;

  std::optional<report::RunStore> store;
  std::string run_id;
  const report::MachineDescription machine = report::describe_machine();
  if (root) {
    try {
      store.emplace(report::RunStore::open(arguments.db.empty() ? report::default_database_path()
                                                                 : std::filesystem::path(arguments.db)));
      report::RunInfo info;
      info.kind = report::RunKind::Profile;
      info.name = arguments.name;
      info.tandem_version = kVersion;
      info.git_revision = kGitRevision;
      info.host = machine.summary();
      info.overrides_json = nlohmann::json{{"quick", arguments.quick}, {"world_size", world.size()}}.dump();
      run_id = store->begin_run(info);
    } catch (const std::exception& error) {
      std::fprintf(stderr, "engine profile: %s\n", error.what());
      store.reset();
    }
  }
  // Every rank learns whether rank 0 could open the store.
  double ok = store ? 1 : 0;
  world.broadcast(&ok, 1, comm::DataType::Float64, 0);
  if (ok == 0) return 1;

  const auto started = std::chrono::steady_clock::now();
  std::vector<report::Microbenchmark> compute;
  std::vector<report::Microbenchmark> communication;
  try {
    ProgressBar bar(root && !arguments.quiet && !arguments.json);
    if (root && !arguments.skip_compute) {
      compute = run_compute_microbenchmarks(options, [&](std::size_t done, std::size_t total, const std::string& label) {
        bar.update(done, total, label);
      });
    }
    world.barrier();
    communication = run_communication_microbenchmarks(
        world, options, [&](std::size_t done, std::size_t total, const std::string& label) { bar.update(done, total, label); });
    bar.finish();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "engine profile: rank %d: %s\n", world.rank(), error.what());
    if (root && store) {
      try {
        store->fail_run(run_id, error.what());
      } catch (const std::exception&) {
      }
    }
    return 1;
  }
  if (!root) return 0;

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  // Headline numbers: the best GEMM rate per thread count, the best streaming rate of the
  // element-wise and norm ops, the all-reduce of the largest size.
  std::map<int, double> gemm_flops;
  std::map<int, double> stream_bytes;
  for (const auto& record : compute) {
    strategy::Op op;
    int threads = 1;
    if (!op_of_microbenchmark(record, op, threads) || record.time_s <= 0) continue;
    if (op.compute_kind == strategy::ComputeKind::Matmul)
      gemm_flops[threads] = std::max(gemm_flops[threads], record.flops / record.time_s);
    if (op.compute_kind == strategy::ComputeKind::Elementwise || op.compute_kind == strategy::ComputeKind::Norm)
      stream_bytes[threads] = std::max(stream_bytes[threads], record.size_bytes / record.time_s);
  }
  nlohmann::json result{{"machine",
                         {{"hostname", machine.hostname},
                          {"cpu_model", machine.cpu_model},
                          {"logical_cores", machine.logical_cores},
                          {"physical_cores", physical_cores()},
                          {"memory_bytes", machine.memory_bytes},
                          {"operating_system", machine.operating_system}}},
                        {"world_size", world.size()},
                        {"quick", arguments.quick},
                        {"compute_records", compute.size()},
                        {"communication_records", communication.size()},
                        {"seconds", seconds}};
  nlohmann::json headline = nlohmann::json::object();
  for (const auto& [threads, rate] : gemm_flops) headline["gemm_gflops_threads_" + std::to_string(threads)] = rate / 1e9;
  for (const auto& [threads, rate] : stream_bytes)
    headline["streaming_gbps_threads_" + std::to_string(threads)] = rate / 1e9;
  result["headline"] = headline;
  try {
    std::vector<report::Microbenchmark> all = compute;
    all.insert(all.end(), communication.begin(), communication.end());
    store->add_microbenchmarks(run_id, all);
    store->finish_run(run_id, result.dump(), {});
  } catch (const std::exception& error) {
    std::fprintf(stderr, "engine profile: could not record the microbenchmarks: %s\n", error.what());
    return 1;
  }
  if (arguments.json) {
    result["run_id"] = run_id;
    result["db"] = store->path().string();
    std::cout << result.dump(2) << std::endl;
  } else if (!arguments.quiet) {
    std::fprintf(stderr, "engine profile: %zu compute and %zu communication microbenchmarks in %.1f s on %s\n",
                 compute.size(), communication.size(), seconds, machine.summary().c_str());
    for (const auto& [threads, rate] : gemm_flops)
      std::fprintf(stderr, "  best GEMM           %7.1f GFLOP/s on %d thread%s\n", rate / 1e9, threads, threads > 1 ? "s" : "");
    for (const auto& [threads, rate] : stream_bytes)
      std::fprintf(stderr, "  best streaming op   %7.1f GB/s on %d thread%s\n", rate / 1e9, threads, threads > 1 ? "s" : "");
    std::fprintf(stderr, "  recorded as profile run %s in %s\n  next: tandem-calibrate fit --db %s --out profile.yaml\n",
                 run_id.c_str(), store->path().c_str(), store->path().c_str());
  }
  return 0;
}

}  // namespace tandem::calibration
