#pragma once
// Fitting a hardware profile's compute model (and, from the collective microbenchmarks, its
// communication parameters) to the microbenchmarks of `engine profile`
// (`tandem-calibrate fit`).
//
// Every compute record is one program op (calibration/microbenchmarks.hpp); its prediction is
// sim::ComputeCostModel::op_time of that op with the candidate profile, at the record's kernel
// threads — the formula the twin uses for the same op inside a training step. The fitted
// parameters (what the records can see):
//   gemm.peak_efficiency      fraction of compute.fp32 a large GEMM reaches
//   gemm.k_half               the k-loop ramp
//   gemm.tiles[i].efficiency  relative efficiency of each tile shape but the first (kept at 1)
//   compute.attention_efficiency
//   memory.bandwidth          achieved streaming rate (written with memory.efficiency 1)
//   compute.kernel_overhead   fixed cost per kernel call
//   compute.vector_efficiency non-GEMM arithmetic (GELU's tanh, softmax's exp) vs the fp32 peak
// compute.fp32 is set, not fitted: the best single-thread GEMM rate of the records (per core on
// a cpu profile, whose rates are per core and scale with a rank's threads), so the efficiencies
// stay fractions of something measured. Least squares on log(predicted / measured), Levenberg-
// Marquardt. The communication records (all-reduce, all-gather, ... over groups of ranks on this
// machine) fit node.intra_node bandwidth and latency through the network fit
// (calibration/network_fit.hpp) with the machine as one node.

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "report/run_store.hpp"
#include "strategy/hardware_profile.hpp"

namespace tandem::calibration {

struct FitParameter {
  std::string name;       // the profile key ("gemm.peak_efficiency")
  double before = 0;
  double after = 0;
  double standard_error = 0;  // in the parameter's own units (NaN when not estimable)
};

struct RecordResidual {
  std::string label;      // "matmul backward-weight 384x64x512, 2 threads"
  std::string kind;       // compute kind or collective
  double measured_s = 0;
  double predicted_s = 0;  // with the fitted profile
  double error_percent() const { return measured_s > 0 ? 100 * (predicted_s - measured_s) / measured_s : 0; }
};

struct ProfileFitResult {
  strategy::HardwareProfile profile;
  std::vector<FitParameter> parameters;
  std::vector<RecordResidual> residuals;
  double compute_mape_before = 0;  // mean |error| of the compute records, base profile
  double compute_mape_after = 0;
  bool compute_kept_base = false;  // the fit did not beat the base: its compute parameters kept
  double compute_mape_rejected = 0;  // with compute_kept_base: the rejected fit's mean |error|
  // Σ|predicted − measured| / Σ measured over the compute records, percent: the error of their
  // summed time, which decides whether the fit is kept.
  double compute_time_error_before = 0;
  double compute_time_error_after = 0;
  double compute_time_error_rejected = 0;
  double communication_mape_before = 0;
  double communication_mape_after = 0;
  std::size_t compute_records = 0;        // the records the compute parameters were fitted on
  std::size_t communication_records = 0;
  std::string compute_source;             // "microbenchmarks" or "training runs"
  double microbenchmark_mape = 0;         // compute microbenchmarks with the fitted profile (check)
  int iterations = 0;
};

// A compute op as it ran inside `engine train` (the per-op trace of a stored training run): the
// program op, the rank's kernel threads, the ranks that shared the machine, and the median of
// its traced durations over the steps after the warm-up (and over the layers, micro-batches and
// ranks that run the same op).
struct InSituOp {
  strategy::Op op;
  int threads = 1;
  int ranks = 1;
  double measured_s = 0;
  std::size_t samples = 0;
  std::string run_id;
};

// Of several runs of one configuration (the same scenario text), the fastest: the one whose
// median step after `skip_steps` is the shortest. The twin models a machine that runs only the
// job, and on a shared machine another tenant only ever slows a run down, so the fastest repeat
// is the measurement of the machine and the others measure interference (`validate` measures
// its held-out runs the same way). Keeps `run_ids`' order; runs without step times are kept.
std::vector<std::string> fastest_run_per_configuration(const report::RunStore& store,
                                                       const std::vector<std::string>& run_ids, int skip_steps = 2);

// The in-situ compute ops of stored training runs. Runs whose scenario cannot be rebuilt, or that
// have no trace, are skipped with a note. `skip_steps`: the first steps left out (warm-up).
// Only runs on `backend` (cpu, cuda) when given.
std::vector<InSituOp> in_situ_ops(const report::RunStore& store, const std::vector<std::string>& run_ids,
                                  std::vector<std::string>* notes = nullptr, int skip_steps = 2,
                                  const std::optional<std::string>& backend = std::nullopt);

enum class ComputeFitSource {
  Auto,             // training-run traces when there are any, else the microbenchmarks
  Microbenchmarks,  // the compute microbenchmarks of engine profile
  Runs,             // the in-situ ops of training runs
};

struct ProfileFitOptions {
  int cores = 0;          // physical cores of the machine (cpu profile; 0 = keep the base's)
  ComputeFitSource source = ComputeFitSource::Auto;
  bool verbose = false;
};

// Throws std::invalid_argument when the records hold nothing to fit. With in-situ ops (and
// source Auto or Runs) the compute parameters are fitted to them — what the twin must predict is
// an op inside a training step, which on a CPU can be 1.5-2x slower than the same kernel
// repeated alone — and the compute microbenchmarks are reported with the fitted profile as a
// check; the communication records are fitted either way.
ProfileFitResult fit_profile(const std::vector<report::Microbenchmark>& records, const strategy::HardwareProfile& base,
                             const ProfileFitOptions& options = {}, const std::vector<InSituOp>& in_situ = {});

// The prediction of one compute record with `profile` (seconds; nullopt when it is not a
// compute record).
std::optional<double> predict_compute_record(const report::Microbenchmark& record,
                                             const strategy::HardwareProfile& profile);

nlohmann::json fit_result_to_json(const ProfileFitResult& result);

}  // namespace tandem::calibration
