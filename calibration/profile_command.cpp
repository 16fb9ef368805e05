#include "calibration/profile_command.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

#include <nlohmann/json.hpp>

#include "calibration/microbenchmarks.hpp"
#include "calibration/process.hpp"
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
  command.add_flag("!--no-training-runs", arguments.training_runs,
                   "skip the short engine train runs of the calibration set (in-situ op times)");
  command.add_option("--ranks", arguments.ranks,
                     "then measure the collectives and send/recv over this many ranks, started with mpirun as "
                     "validate starts its runs (default: 2 when there are 2+ cores and mpirun is on PATH; 1: none)")
      ->check(CLI::PositiveNumber);
  command.add_flag("--emit-records", arguments.emit_records,
                   "print the communication microbenchmarks as JSON on stdout instead of storing them "
                   "(how engine profile --ranks collects them from its ranks)");
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

struct CalibrationRun {
  int hidden, heads, seq_len, micro_batch, threads;
  std::string name() const {
    return "profile-h" + std::to_string(hidden) + "-s" + std::to_string(seq_len) + "-b" + std::to_string(micro_batch) +
           "-t" + std::to_string(threads);
  }
};

// Runs of each calibration configuration (quick: 1).
constexpr int kCalibrationRepeats = 5;

// The calibration set: GPT shapes unlike the validation matrix's (hidden 64/128/256 here,
// 96/192/288/384 there), at 1 thread and at the machine's cores.
std::vector<CalibrationRun> calibration_set(bool quick, int cores) {
  std::vector<CalibrationRun> runs;
  if (quick) return {{64, 4, 64, 4, 1}, {128, 4, 64, 2, 1}};
  std::vector<int> threads{1};
  if (cores > 1) threads.push_back(std::min(cores, 8));
  for (int t : threads)
    for (const auto& [hidden, heads] : std::vector<std::pair<int, int>>{{64, 4}, {128, 4}, {256, 8}})
      for (const auto& [seq, batch] : std::vector<std::pair<int, int>>{{64, 8}, {128, 2}}) runs.push_back({hidden, heads, seq, batch, t});
  return runs;
}

// Trains each configuration of the calibration set for a few steps with this engine executable,
// `repeats` times, repeat by repeat across the set (so that a slow spell of a shared machine falls
// on one repeat of every configuration, not on every repeat of one; `fit` keeps the fastest repeat
// of each), recording them in `db`. Returns the run ids; failures are reported and skipped.
std::vector<std::string> run_calibration_set(const std::vector<CalibrationRun>& set, int repeats,
                                             const std::filesystem::path& db,
                                             const std::function<void(std::size_t, const std::string&)>& progress,
                                             const std::function<void()>& after_each_repeat) {
  std::vector<std::string> ids;
  std::error_code code;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", code);
  if (code) {
    std::fprintf(stderr, "engine profile: cannot find this executable (/proc/self/exe); no calibration runs\n");
    return ids;
  }
  const std::filesystem::path directory =
      std::filesystem::temp_directory_path() / ("tandem-profile-" + std::to_string(::getpid()));
  std::filesystem::create_directories(directory);
  std::size_t done = 0;
  const std::size_t total = set.size() * static_cast<std::size_t>(std::max(1, repeats));
  for (std::size_t index = 0; index < total; ++index) {
    const CalibrationRun& run = set[index % set.size()];
    const std::filesystem::path path = directory / (run.name() + ".yaml");
    std::ofstream(path) << "name: " << run.name() << "\nmodel: {layers: 2, hidden: " << run.hidden << ", heads: " << run.heads
                        << ", vocab: 256, seq_len: " << run.seq_len << "}\n"
                        << "cluster: {gpu: cpu, nodes: 1, gpus_per_node: 1, threads_per_rank: " << run.threads << "}\n"
                        << "strategy: {tp: 1, pp: 1, dp: 1, micro_batch: " << run.micro_batch
                        << ", global_batch: " << run.micro_batch << ", precision: fp32, optimizer: adamw}\n"
                        << "training: {steps: 20, lr: 1e-3, warmup_steps: 1, seed: 3, data: synthetic, eval_every: 0, "
                           "eval_batches: 1, checkpoint_every: 0}\n";
    ProcessResult result;
    try {
      result = run_process({self.string(), "train", path.string(), "--db", db.string(), "--json", "--quiet"}, {}, 900);
    } catch (const std::exception& error) {
      result.exit_code = -1;
      result.err = error.what();
    }
    ++done;
    if (result.exit_code == 0) {
      const auto j = nlohmann::json::parse(result.out.substr(std::min(result.out.size(), result.out.find('{'))), nullptr, false);
      if (j.is_object() && j.contains("run_id")) ids.push_back(j["run_id"].get<std::string>());
    } else {
      std::fprintf(stderr, "engine profile: calibration run %s failed (%d): %s\n", run.name().c_str(), result.exit_code,
                   result.err.c_str());
    }
    if (progress) progress(done, "engine train " + run.name());
    if (after_each_repeat && (index + 1) % set.size() == 0) after_each_repeat();
  }
  std::filesystem::remove_all(directory, code);
  return ids;
}

// The communication microbenchmarks over `ranks` ranks of this executable, started with mpirun
// the way validate starts its multi-rank runs; rank 0 prints them (--emit-records). Throws with
// the ranks' error output.
std::vector<report::Microbenchmark> run_communication_ranks(const ProfileArguments& arguments, int ranks,
                                                            const std::filesystem::path& mpirun) {
  std::error_code code;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", code);
  if (code) throw std::runtime_error("cannot find this executable (/proc/self/exe) to start on " + std::to_string(ranks) + " ranks");
  std::vector<std::string> environment;
  std::vector<std::string> argv = mpirun_prefix(mpirun, ranks, environment);
  argv.push_back(self.string());
  for (const char* a : {"profile", "--only-communication", "--emit-records", "--quiet"}) argv.emplace_back(a);
  if (arguments.quick) argv.emplace_back("--quick");
  if (arguments.min_seconds > 0) {
    argv.emplace_back("--min-time");
    argv.push_back(std::to_string(arguments.min_seconds));
  }
  const ProcessResult result = run_process(argv, environment, 1800);
  const auto j = nlohmann::json::parse(result.out.substr(std::min(result.out.size(), result.out.find('{'))), nullptr, false);
  if (result.exit_code != 0 || !j.is_object() || !j.contains("records")) {
    std::string message = result.err.size() > 600 ? result.err.substr(result.err.size() - 600) : result.err;
    throw std::runtime_error(mpirun.string() + " -np " + std::to_string(ranks) + " engine profile --only-communication exited with " +
                             std::to_string(result.exit_code) + (result.timed_out ? " (timed out)" : "") + ": " + message);
  }
  std::vector<report::Microbenchmark> records;
  for (const auto& r : j["records"])
    records.push_back({r.at("op"), r.at("params_json"), r.at("size_bytes"), r.at("flops"), r.at("repeats"),
                       r.at("time_s"), r.at("time_min_s"), r.at("time_max_s")});
  return records;
}

}  // namespace

void keep_fastest(std::vector<report::Microbenchmark>& kept, const std::vector<report::Microbenchmark>& launch) {
  for (const report::Microbenchmark& record : launch) {
    auto same = std::find_if(kept.begin(), kept.end(), [&](const report::Microbenchmark& k) {
      return k.op == record.op && k.params_json == record.params_json && k.size_bytes == record.size_bytes;
    });
    if (same == kept.end()) {
      kept.push_back(record);
      continue;
    }
    const double low = std::min(same->time_min_s, record.time_min_s);
    const double high = std::max(same->time_max_s, record.time_max_s);
    const int repeats = same->repeats + record.repeats;
    if (record.time_s < same->time_s) *same = record;
    same->time_min_s = low;
    same->time_max_s = high;
    same->repeats = repeats;
  }
}

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
  if (root && !arguments.emit_records) {
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
  double ok = store || arguments.emit_records ? 1 : 0;
  world.broadcast(&ok, 1, comm::DataType::Float64, 0);
  if (ok == 0) return 1;

  const auto started = std::chrono::steady_clock::now();
  std::vector<report::Microbenchmark> compute;
  std::vector<report::Microbenchmark> communication;
  std::vector<std::string> training_run_ids;
  int communication_launches = 0;  // of --ranks
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
    // One process: the communication microbenchmarks on ranks started here, once after each
    // repeat of the calibration set (or once), the fastest launch of each case kept.
    int ranks = 1;
    std::filesystem::path mpirun;
    if (root && world.size() == 1) {
      mpirun = find_mpirun();
      ranks = arguments.ranks >= 0 ? arguments.ranks : (physical_cores() >= 2 && !mpirun.empty() ? 2 : 1);
      if (ranks > 1 && mpirun.empty()) throw std::runtime_error("--ranks " + std::to_string(ranks) + ": no mpirun or mpiexec on PATH");
    }
    const auto launch_ranks = [&] {
      if (ranks <= 1) return;
      bar.update(1, 1, "collectives over " + std::to_string(ranks) + " ranks (mpirun)");
      keep_fastest(communication, run_communication_ranks(arguments, ranks, mpirun));
      ++communication_launches;
    };
    if (root && world.size() == 1 && arguments.training_runs && !arguments.skip_compute) {
      const auto set = calibration_set(arguments.quick, physical_cores());
      const int repeats = arguments.quick ? 1 : kCalibrationRepeats;
      training_run_ids = run_calibration_set(
          set, repeats, store->path(),
          [&](std::size_t done, const std::string& label) { bar.update(done, set.size() * static_cast<std::size_t>(repeats), label); },
          launch_ranks);
    } else {
      launch_ranks();
    }
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
  if (arguments.emit_records) {
    nlohmann::json records = nlohmann::json::array();
    for (const report::Microbenchmark& r : communication)
      records.push_back({{"op", r.op}, {"params_json", r.params_json}, {"size_bytes", r.size_bytes}, {"flops", r.flops},
                         {"repeats", r.repeats}, {"time_s", r.time_s}, {"time_min_s", r.time_min_s},
                         {"time_max_s", r.time_max_s}});
    std::cout << nlohmann::json{{"records", records}}.dump() << std::endl;
    return 0;
  }

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
                        {"training_runs", training_run_ids},
                        {"communication_launches", communication_launches},
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
    std::fprintf(stderr, "engine profile: %zu compute and %zu communication microbenchmarks and %zu calibration "
                 "training runs in %.1f s on %s\n",
                 compute.size(), communication.size(), training_run_ids.size(), seconds, machine.summary().c_str());
    if (communication_launches > 0)
      std::fprintf(stderr, "  collectives and send/recv: the fastest of %d launches over ranks started with mpirun\n",
                   communication_launches);
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
