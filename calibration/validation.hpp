#pragma once
// `tandem-calibrate validate`: real `engine train` runs on a matrix of configurations that no fit
// used, each predicted by the twin with the profile under test, compared step time by step time
// and op by op.
//
// Measurement (this machine is often shared, so single numbers lie): each configuration runs
// `repeats` times; a run's step time is the median of its steps after the first `warmup_steps`
// (first-touch page faults, OpenMP team start). The configuration's measured step time is the
// FASTEST run's median: the twin models a machine that runs only this job, and on a shared
// machine a run is slowed, never sped up, by another tenant taking a core (the same reasoning as
// Python's timeit: the best of several repeats estimates what the machine can do; the others
// measure the interference). The median over the runs is reported beside it, and the spread is
// the run-to-run range (max - min) / fastest of the run medians (with one run: the 10th-90th
// percentile range of its steps / median).
// Prediction: the same scenario simulated unfolded (every rank), with the profile as cluster.gpu.
// The worst ops come from report::align_traces of the prediction and the fastest run's
// trace (steps after the warm-up, median per rank and op id).
//
// Training runs of the matrix are named "validate-<config>" in the run store; `tandem-calibrate
// fit` never uses runs with that prefix, so the held-out matrix stays held out.

#include <cmath>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "report/compare.hpp"
#include "strategy/hardware_profile.hpp"

namespace tandem::calibration {

inline constexpr const char* kValidationRunPrefix = "validate-";

struct ValidationConfig {
  std::string name;          // "h192-b4-tp2"
  int layers = 2;
  int hidden = 64;
  int heads = 4;
  int seq_len = 64;
  int vocab = 256;
  int micro_batch = 4;
  int global_batch = 4;
  int threads = 1;           // per rank
  int dp = 1, tp = 1, pp = 1;
  bool oversubscribed = false;  // ranks x threads > cores (reported separately)

  int ranks() const { return dp * tp * pp; }
  std::string scenario_yaml(const std::string& profile) const;
};

// The held-out matrix for a machine with `cores` physical cores: 1-rank configurations over model
// sizes, micro-batch sizes and thread counts, and 2-rank DP, TP and PP when cores >= 2 (and MPI
// runs), plus a 4-rank DP x TP one marked oversubscribed when `oversubscribed` is set. Quick: three
// small configurations (one 2-rank one when it fits). None of its model shapes is in the profile
// set of `engine profile`.
std::vector<ValidationConfig> validation_matrix(int cores, bool quick, bool oversubscribed, bool have_mpi);

struct ValidationOptions {
  std::filesystem::path engine;      // the engine executable
  std::filesystem::path mpirun;      // empty: no multi-rank configurations
  std::filesystem::path db;          // run store for the engine runs
  std::filesystem::path work_dir;    // scenario files
  std::string profile = "cpu";       // cluster.gpu of the scenarios (built-in name or path)
  int steps = 8;
  int warmup_steps = 2;
  int repeats = 5;
  bool reuse = false;  // measurements: the newest `repeats` stored runs per configuration, none run
  bool quiet = false;
};

struct OpError {
  std::string op;       // "qkv-bwd-weight (layer 1, rank 0)"
  double predicted_s = 0;
  double measured_s = 0;
  double error_percent = 0;
};

struct ValidationRun {
  ValidationConfig config;
  bool ok = false;
  std::string error;                    // when !ok
  double predicted_s = 0;
  double measured_s = 0;                // the fastest run's median step after warm-up
  double median_run_s = 0;              // the median over the runs of their median steps
  double spread_percent = 0;
  std::string spread_kind;              // "run-to-run" or "step-to-step"
  std::vector<double> run_medians_s;    // one per repeat
  std::vector<std::string> run_ids;
  std::vector<OpError> worst_ops;
  double error_percent() const { return measured_s > 0 ? 100 * (predicted_s - measured_s) / measured_s : 0; }
  // The error is no larger than the measurement's own spread: noise cannot tell it from zero.
  bool within_spread() const { return std::abs(error_percent()) <= spread_percent; }
  double median_run_error_percent() const {
    return median_run_s > 0 ? 100 * (predicted_s - median_run_s) / median_run_s : 0;
  }
};

struct ValidationReport {
  std::vector<ValidationRun> runs;
  double mape = 0;                 // configurations that are not oversubscribed, against the fastest run
  double median_run_mape = 0;      // the same against the median run
  double oversubscribed_mape = 0;  // the oversubscribed ones (0 when none)
  double load_before = 0, load_after = 0;  // 1-minute load average
  std::string profile;
};

using ValidationProgress = std::function<void(std::size_t done, std::size_t total, const std::string& label)>;

// Runs and predicts every configuration. Never throws for one configuration's failure (the run
// carries its error); throws std::runtime_error when the engine cannot be started at all.
ValidationReport run_validation(const std::vector<ValidationConfig>& matrix, const ValidationOptions& options,
                                const ValidationProgress& progress = {});

nlohmann::json validation_to_json(const ValidationReport& report);

// The 1-minute load average (/proc/loadavg; 0 when unknown).
double load_average();

}  // namespace tandem::calibration
