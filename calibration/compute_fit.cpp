#include "calibration/compute_fit.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <tuple>
#include <limits>
#include <sstream>
#include <stdexcept>

#include <Eigen/Dense>

#include "calibration/least_squares.hpp"
#include "calibration/microbenchmarks.hpp"
#include "calibration/network_fit.hpp"
#include "sim/compute_cost.hpp"
#include "strategy/collective_plan.hpp"
#include "strategy/cpu_threading.hpp"
#include "strategy/scenario.hpp"

namespace tandem::calibration {

namespace {

double logit(double p) {
  p = std::clamp(p, 1e-4, 1 - 1e-4);
  return std::log(p / (1 - p));
}
double logistic(double x) { return 1 / (1 + std::exp(-x)); }

double median_of(std::vector<double>& v) {  // sorts v
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct ComputeRecord {
  strategy::Op op;
  int threads = 1;
  int ranks = 1;
  double measured_s = 0;
  std::string label;
};

std::string record_label(const strategy::Op& op, int threads) {
  std::ostringstream text;
  text << strategy::to_string(op.code);
  if (op.compute_kind == strategy::ComputeKind::Matmul) text << " " << op.m << "x" << op.n << "x" << op.k;
  else text << " " << static_cast<long long>(op.bytes) << " B";
  text << ", " << threads << " thread" << (threads > 1 ? "s" : "");
  return text.str();
}

std::optional<strategy::CollectiveKind> collective_of(const std::string& op) {
  using strategy::CollectiveKind;
  if (op == "all-reduce") return CollectiveKind::AllReduce;
  if (op == "all-gather") return CollectiveKind::AllGather;
  if (op == "reduce-scatter") return CollectiveKind::ReduceScatter;
  if (op == "broadcast") return CollectiveKind::Broadcast;
  if (op == "send-recv") return CollectiveKind::SendRecv;
  if (op == "all-to-all") return CollectiveKind::AllToAll;
  return std::nullopt;
}

std::string scale_parameter(strategy::ComputeKind kind) {
  for (const auto& [scaled, key] : strategy::HardwareProfile::OpCostScale::scaled_kinds())
    if (scaled == kind) return "compute.op_cost_scale." + key;
  return "";
}

// The unknowns of the compute fit and how they map onto a profile.
struct ComputeUnknowns {
  std::vector<std::string> names;
  bool attention = false;
  bool matmul = false;
  bool memory = false;
  bool vector = false;
  std::size_t tiles = 0;  // tiles after the first that are fitted
  // gemm.output_cost of forward and weight-gradient GEMMs (the cpu backend), when records of
  // input-gradient GEMMs, which pass over their output once, pin the product's own rate.
  bool forward_output = false;
  bool weight_gradient_output = false;
  // Kinds whose compute.op_cost_scale is fitted: those with records, when element-wise ops (the
  // reference the memory bandwidth is fitted on) have records too.
  std::vector<strategy::ComputeKind> scaled_kinds;
  // cpu.all_core_*_efficiency: fitted when records of 1-thread and multi-thread ranks are both there.
  bool all_core = false;
  // compute.attention_block_overhead: the cpu backend's attention kernel, when attention records
  // are there.
  bool attention_blocks = false;

  // Efficiencies start at most 0.9: near 1 the logistic is flat and the solver cannot move them.
  Eigen::VectorXd start(const strategy::HardwareProfile& p) const {
    std::vector<double> x;
    if (matmul) {
      x.push_back(logit(std::min(0.9, p.gemm.peak_efficiency)));
      x.push_back(std::log(std::max(1.0, p.gemm.k_half)));
      for (std::size_t i = 1; i <= tiles; ++i) x.push_back(logit(std::min(0.9, p.gemm.tiles[i].efficiency)));
    }
    // Starts at >= 0.5 ns an element: from 0 a log parameter cannot move.
    if (forward_output) x.push_back(std::log(std::max(0.5e-9, p.gemm.output_cost.forward_s)));
    if (weight_gradient_output) x.push_back(std::log(std::max(0.2e-9, p.gemm.output_cost.backward_weight_s)));
    if (attention) x.push_back(logit(p.attention_efficiency));
    if (attention_blocks) x.push_back(std::log(std::max(1e-6, p.attention_block_overhead_s)));
    if (memory) x.push_back(std::log(p.memory_bandwidth_bytes_per_s * p.memory_efficiency));
    if (vector) x.push_back(logit(std::min(0.9, p.vector_efficiency)));
    for (strategy::ComputeKind kind : scaled_kinds) x.push_back(std::log(p.op_cost_scale.of(kind)));
    if (all_core) {
      x.push_back(logit(std::min(0.95, p.all_core_compute_efficiency)));
      x.push_back(logit(std::min(0.95, p.all_core_memory_efficiency)));
    }
    x.push_back(std::log(std::max(1e-8, p.kernel_overhead_s)));
    return Eigen::Map<Eigen::VectorXd>(x.data(), static_cast<Eigen::Index>(x.size()));
  }
  void apply(const Eigen::VectorXd& x, strategy::HardwareProfile& p) const {
    Eigen::Index i = 0;
    if (matmul) {
      p.gemm.peak_efficiency = logistic(x[i++]);
      p.gemm.k_half = std::clamp(std::exp(x[i++]), 0.5, 1e5);  // a k-ramp of a fraction of one k step is none
      for (std::size_t t = 1; t <= tiles; ++t) p.gemm.tiles[t].efficiency = logistic(x[i++]);
    }
    if (forward_output) p.gemm.output_cost.forward_s = std::exp(x[i++]);
    if (weight_gradient_output) p.gemm.output_cost.backward_weight_s = std::exp(x[i++]);
    if (attention) p.attention_efficiency = logistic(x[i++]);
    if (attention_blocks) p.attention_block_overhead_s = std::exp(x[i++]);
    if (memory) {
      p.memory_bandwidth_bytes_per_s = std::exp(x[i++]);
      p.memory_efficiency = 1.0;
    }
    if (vector) p.vector_efficiency = logistic(x[i++]);
    for (strategy::ComputeKind kind : scaled_kinds) p.op_cost_scale.of(kind) = std::clamp(std::exp(x[i++]), 0.02, 50.0);
    if (all_core) {
      p.all_core_compute_efficiency = logistic(x[i++]);
      p.all_core_memory_efficiency = logistic(x[i++]);
    }
    p.kernel_overhead_s = std::exp(x[i++]);
  }
  std::vector<std::string> parameter_names() const {
    std::vector<std::string> n;
    if (matmul) {
      n.push_back("gemm.peak_efficiency");
      n.push_back("gemm.k_half");
      for (std::size_t t = 1; t <= tiles; ++t) n.push_back("gemm.tiles[" + std::to_string(t) + "].efficiency");
    }
    if (forward_output) n.push_back("gemm.output_cost.forward");
    if (weight_gradient_output) n.push_back("gemm.output_cost.backward_weight");
    if (attention) n.push_back("compute.attention_efficiency");
    if (attention_blocks) n.push_back("compute.attention_block_overhead");
    if (memory) n.push_back("memory.bandwidth (achieved, efficiency 1)");
    if (vector) n.push_back("compute.vector_efficiency");
    for (strategy::ComputeKind kind : scaled_kinds) n.push_back(scale_parameter(kind));
    if (all_core) {
      n.push_back("cpu.all_core_compute_efficiency");
      n.push_back("cpu.all_core_memory_efficiency");
    }
    n.push_back("compute.kernel_overhead");
    return n;
  }
};

double value_of(const std::string& name, const strategy::HardwareProfile& p) {
  if (name == "gemm.peak_efficiency") return p.gemm.peak_efficiency;
  if (name == "gemm.k_half") return p.gemm.k_half;
  if (name == "gemm.output_cost.forward") return p.gemm.output_cost.forward_s;
  if (name == "gemm.output_cost.backward_weight") return p.gemm.output_cost.backward_weight_s;
  if (name.starts_with("gemm.tiles[")) return p.gemm.tiles[static_cast<std::size_t>(std::stoi(name.substr(11)))].efficiency;
  if (name == "compute.attention_efficiency") return p.attention_efficiency;
  if (name == "compute.attention_block_overhead") return p.attention_block_overhead_s;
  if (name.starts_with("memory.bandwidth")) return p.memory_bandwidth_bytes_per_s * p.memory_efficiency;
  if (name == "compute.kernel_overhead") return p.kernel_overhead_s;
  if (name == "compute.vector_efficiency") return p.vector_efficiency;
  if (name == "cpu.all_core_compute_efficiency") return p.all_core_compute_efficiency;
  if (name == "cpu.all_core_memory_efficiency") return p.all_core_memory_efficiency;
  for (const auto& [kind, key] : strategy::HardwareProfile::OpCostScale::scaled_kinds())
    if (name == scale_parameter(kind)) return p.op_cost_scale.of(kind);
  return 0;
}

double mape_of(const std::vector<RecordResidual>& residuals, bool communication) {
  double total = 0;
  std::size_t count = 0;
  for (const RecordResidual& r : residuals) {
    const bool is_communication = collective_of(r.kind).has_value();
    if (is_communication != communication) continue;
    total += std::abs(r.error_percent());
    ++count;
  }
  return count > 0 ? total / static_cast<double>(count) : 0;
}

// The error of the records' summed time, Σ|predicted − measured| / Σ measured in percent: what
// a step-time prediction inherits from the per-op errors (a step is a sum of op times, so a 2x
// error on a 5 us residual add matters less than 10% on a 2 ms GEMM).
double time_weighted_error_of(const std::vector<RecordResidual>& residuals) {
  double error = 0, total = 0;
  for (const RecordResidual& r : residuals) {
    if (collective_of(r.kind).has_value()) continue;
    error += std::abs(r.predicted_s - r.measured_s);
    total += r.measured_s;
  }
  return total > 0 ? 100 * error / total : 0;
}

}  // namespace

std::optional<double> predict_compute_record(const report::Microbenchmark& record,
                                             const strategy::HardwareProfile& profile) {
  strategy::Op op;
  int threads = 1;
  if (!op_of_microbenchmark(record, op, threads)) return std::nullopt;
  const sim::ComputeCostModel model(profile, strategy::Precision::Fp32, threads, 1);
  return model.op_time(op);
}

ProfileFitResult fit_profile(const std::vector<report::Microbenchmark>& records, const strategy::HardwareProfile& base,
                             const ProfileFitOptions& options, const std::vector<InSituOp>& in_situ) {
  std::vector<ComputeRecord> microbenchmarks;
  std::vector<NcclPoint> communication;
  for (const report::Microbenchmark& record : records) {
    if (record.time_s <= 0) continue;
    strategy::Op op;
    int threads = 1;
    if (op_of_microbenchmark(record, op, threads)) {
      microbenchmarks.push_back({op, threads, 1, record.time_s, record_label(op, threads)});
      continue;
    }
    const auto kind = collective_of(record.op);
    if (!kind) continue;
    nlohmann::json params = nlohmann::json::parse(record.params_json.empty() ? "{}" : record.params_json, nullptr, false);
    const int group = params.is_object() ? params.value("group_size", 0) : 0;
    if (group < 2) continue;
    NcclPoint point;
    point.file = "microbenchmarks";
    point.collective = record.op;
    point.kind = *kind;
    point.gpus = group;
    point.nodes = 1;
    point.gpus_per_node = group;
    point.size_bytes = record.size_bytes;
    point.measured_busbw_gbps =
        record.size_bytes / record.time_s * strategy::bus_bandwidth_factor(*kind, group) / 1e9;
    communication.push_back(point);
  }
  std::vector<ComputeRecord> runs;
  for (const InSituOp& o : in_situ) {
    // Ops the engine does not run as a kernel (the residual backward is an identity: both
    // branches read the same gradient) are traced at a few hundred nanoseconds; they say nothing
    // about the kernels.
    if (o.measured_s < 1e-6) continue;
    std::string label = record_label(o.op, o.threads);
    if (o.ranks > 1) label += ", " + std::to_string(o.ranks) + " ranks";
    runs.push_back({o.op, o.threads, o.ranks, o.measured_s, label + " (in situ)"});
  }
  const bool use_runs = options.source == ComputeFitSource::Runs ||
                        (options.source == ComputeFitSource::Auto && !runs.empty());
  if (options.source == ComputeFitSource::Runs && runs.empty())
    throw std::invalid_argument("no in-situ op to fit: the store holds no traced training run (engine train --db)");
  const std::vector<ComputeRecord>& compute = use_runs ? runs : microbenchmarks;
  if (compute.empty() && communication.empty())
    throw std::invalid_argument("no compute or communication microbenchmark to fit (run engine profile first)");

  ProfileFitResult result;
  result.compute_records = compute.size();
  result.communication_records = communication.size();
  result.compute_source = use_runs ? "training runs" : "microbenchmarks";
  strategy::HardwareProfile profile = base;
  if (profile.backend == "cpu" && options.cores > 0) {
    profile.cores = options.cores;
    profile.shared_cores = true;
  }
  auto predict_record = [](const strategy::HardwareProfile& p, const ComputeRecord& r) {
    const sim::ComputeCostModel model(p, strategy::Precision::Fp32, r.threads, r.ranks);
    return model.op_time(r.op);
  };

  // ---- compute ----
  if (!compute.empty()) {
    const strategy::HardwareProfile unfitted = profile;
    // compute.fp32: the best GEMM rate of one thread (per core on a cpu profile), from the
    // microbenchmarks when there are any (an op alone on a core), else from the in-situ ops.
    double best = 0;
    for (const std::vector<ComputeRecord>* list : {static_cast<const std::vector<ComputeRecord>*>(&microbenchmarks), &compute}) {
      for (const ComputeRecord& r : *list)
        if (r.op.compute_kind == strategy::ComputeKind::Matmul && (r.threads == 1 || !profile.shared_cores))
          best = std::max(best, r.op.flops / r.measured_s);
      if (best > 0) break;
    }
    // The peak is never below what was measured: at least 1.1x the best GEMM (so the fitted
    // peak_efficiency, a fraction, has room for the k-loop ramp of that GEMM).
    const double fp32_before = profile.peak_flops_fp32;
    if (best > 0 && 1.1 * best > profile.peak_flops_fp32) {
      const double scale = 1.1 * best / profile.peak_flops_fp32;
      profile.peak_flops_fp32 = 1.1 * best;
      if (profile.peak_flops_bf16 > 0) profile.peak_flops_bf16 *= scale;
    }
    result.parameters.push_back({profile.shared_cores ? "compute.fp32 (per core, >= 1.1x the best 1-thread GEMM)"
                                                      : "compute.fp32 (>= 1.1x the best GEMM)",
                                 fp32_before, profile.peak_flops_fp32, 0});
    ComputeUnknowns unknowns;
    for (const ComputeRecord& r : compute) {
      const auto kind = r.op.compute_kind;
      unknowns.matmul = unknowns.matmul || kind == strategy::ComputeKind::Matmul;
      unknowns.attention = unknowns.attention || kind == strategy::ComputeKind::Attention;
      const bool streaming = kind != strategy::ComputeKind::Matmul && kind != strategy::ComputeKind::Attention;
      unknowns.memory = unknowns.memory || streaming;
      unknowns.vector = unknowns.vector || (streaming && r.op.flops > 0);
    }
    if (unknowns.matmul && profile.gemm.tiles.size() > 1) unknowns.tiles = profile.gemm.tiles.size() - 1;
    unknowns.attention_blocks = unknowns.attention && profile.shared_cores && profile.backend == "cpu";
    if (profile.backend == "cpu") {
      std::set<strategy::Phase> phases;
      for (const ComputeRecord& r : compute)
        if (r.op.compute_kind == strategy::ComputeKind::Matmul) phases.insert(r.op.phase);
      const bool input_gradients = phases.contains(strategy::Phase::BackwardInput);
      unknowns.forward_output = input_gradients && phases.contains(strategy::Phase::Forward);
      unknowns.weight_gradient_output = input_gradients && phases.contains(strategy::Phase::BackwardWeight);
    }
    const auto has_kind = [&](strategy::ComputeKind kind) {
      return std::any_of(compute.begin(), compute.end(), [&](const ComputeRecord& r) { return r.op.compute_kind == kind; });
    };
    if (profile.shared_cores && profile.cores > 1) {
      bool one_core = false, all_cores = false;
      for (const ComputeRecord& r : compute) {
        const int busy = std::min(profile.cores, r.threads);  // the cores of one rank's threads
        one_core = one_core || busy == 1;
        all_cores = all_cores || busy > 1;
      }
      unknowns.all_core = one_core && all_cores;
    }
    if (has_kind(strategy::ComputeKind::Elementwise))
      for (const auto& [kind, key] : strategy::HardwareProfile::OpCostScale::scaled_kinds())
        if (has_kind(kind)) unknowns.scaled_kinds.push_back(kind);
    // Weights: a step's time is mostly its long ops, so each record's log error counts with
    // sqrt(its time / the median time), clipped to [0.3, 3].
    std::vector<double> times;
    for (const ComputeRecord& r : compute) times.push_back(r.measured_s);
    std::nth_element(times.begin(), times.begin() + static_cast<std::ptrdiff_t>(times.size() / 2), times.end());
    const double median_time = times[times.size() / 2];
    std::vector<double> weights;
    for (const ComputeRecord& r : compute) weights.push_back(std::clamp(std::sqrt(r.measured_s / median_time), 0.3, 3.0));
    // cpu.parallel_grain is not fitted: it is the engine's own rule for splitting a loop over its
    // threads (strategy/cpu_threading.hpp), known exactly. Fitted as a free parameter it came out
    // 16x too large (1.6e7) and made the twin predict 2-thread steps 13-22% too slow, against
    // -1..+2% with the kernels' rule (tandem-calibrate validate, 2026-11-22).
    if (profile.shared_cores)
      profile.parallel_grain_flops = static_cast<double>(strategy::cpu_threading::kMinLoopWorkPerThread);
    // The vector efficiency sits inside a roofline max, so it starts from a few values; the best
    // fit wins.
    std::vector<double> vector_starts{profile.vector_efficiency};
    if (unknowns.vector) vector_starts = {0.05, 0.2, 0.6};
    LeastSquaresResult solution;
    strategy::HardwareProfile start_profile = profile;
    double best_cost = std::numeric_limits<double>::infinity();
    for (double vector_start : vector_starts) {
      strategy::HardwareProfile candidate = profile;
      candidate.vector_efficiency = vector_start;
      auto residuals = [&](const Eigen::VectorXd& x) {
        strategy::HardwareProfile p = candidate;
        unknowns.apply(x, p);
        Eigen::VectorXd r(static_cast<Eigen::Index>(compute.size()));
        for (std::size_t i = 0; i < compute.size(); ++i)
          r[static_cast<Eigen::Index>(i)] =
              weights[i] * std::log(std::max(1e-12, predict_record(p, compute[i])) / compute[i].measured_s);
        return r;
      };
      LeastSquaresOptions solver;
      solver.max_iterations = 100;
      solver.verbose = options.verbose;
      LeastSquaresResult attempt = levenberg_marquardt(residuals, unknowns.start(candidate), solver);
      if (attempt.final_cost < best_cost) {
        best_cost = attempt.final_cost;
        solution = std::move(attempt);
        start_profile = candidate;
      }
    }
    profile = start_profile;
    result.iterations = solution.iterations;
    const Eigen::VectorXd errors = solution.standard_errors();
    unknowns.apply(solution.x, profile);
    const auto names = unknowns.parameter_names();
    for (std::size_t i = 0; i < names.size(); ++i) {
      const double after = value_of(names[i], profile);
      // Standard error through the parameter's map (logistic or exp) at the solution.
      double derivative = after;  // exp: d/dx e^x = e^x
      const double xi = solution.x[static_cast<Eigen::Index>(i)];
      if (names[i].find("efficiency") != std::string::npos) derivative = logistic(xi) * (1 - logistic(xi));
      result.parameters.push_back({names[i], value_of(names[i], base), after,
                                   std::abs(derivative) * errors[static_cast<Eigen::Index>(i)]});
    }
    std::vector<RecordResidual> base_residuals;
    for (const ComputeRecord& r : compute) {
      result.residuals.push_back({r.label, std::string(strategy::to_string(r.op.compute_kind)), r.measured_s,
                                  predict_record(profile, r)});
      base_residuals.push_back({r.label, std::string(strategy::to_string(r.op.compute_kind)), r.measured_s,
                                predict_record(base, r)});
    }
    result.compute_mape_before = mape_of(base_residuals, false);
    result.compute_mape_after = mape_of(result.residuals, false);
    result.compute_time_error_before = time_weighted_error_of(base_residuals);
    result.compute_time_error_after = time_weighted_error_of(result.residuals);
    // The fit minimises weighted log errors; on thin or noisy measurements its optimum can be
    // worse than the base. Never hand back a profile worse than the one we started from, judged
    // by the error of the ops' summed time (what step-time predictions inherit): keep the base's
    // compute parameters then (the printed before/after say so).
    if (result.compute_time_error_after > result.compute_time_error_before) {
      result.compute_mape_rejected = result.compute_mape_after;
      result.compute_time_error_rejected = result.compute_time_error_after;
      result.compute_time_error_after = result.compute_time_error_before;
      profile = unfitted;
      for (FitParameter& parameter : result.parameters) parameter.after = parameter.before;
      result.residuals = base_residuals;
      result.compute_mape_after = result.compute_mape_before;
      result.compute_kept_base = true;
    }
    if (use_runs && !microbenchmarks.empty()) {
      std::vector<RecordResidual> check;
      for (const ComputeRecord& r : microbenchmarks)
        check.push_back({r.label, std::string(strategy::to_string(r.op.compute_kind)), r.measured_s,
                         predict_record(profile, r)});
      result.microbenchmark_mape = mape_of(check, false);
    }
  }

  // ---- communication ----
  if (!communication.empty()) {
    // The machine is one node whose ranks talk over node.intra_node. The fit's NVLink efficiency
    // is a fraction of the raw bandwidth: give it room (4x the best measured bus bandwidth), then
    // fold the fitted fraction back into the raw number (efficiency 1).
    std::vector<NcclPoint> before = communication;
    predict(before, base, PredictionEngine::Analytic);
    double top = 0;
    for (const NcclPoint& p : communication) top = std::max(top, p.measured_busbw_gbps * 1e9);
    strategy::HardwareProfile network_base = profile;
    const double raw_before = profile.intra_node.bandwidth_bytes_per_s;
    const double latency_before = profile.intra_node.latency_s;
    network_base.intra_node.bandwidth_bytes_per_s = 4 * top;
    network_base.collective_efficiency = 0.25;
    NetworkFitOptions network_options;
    network_options.min_size_bytes = 0;
    network_options.verbose = options.verbose;
    network_options.fit_collective_cost_scales = true;
    const NetworkFitResult network = fit_network(communication, network_base, network_options);
    profile.intra_node.bandwidth_bytes_per_s =
        network_base.intra_node.bandwidth_bytes_per_s * network.fitted.nvlink_efficiency;
    profile.intra_node.latency_s = network.fitted.nvlink_latency_s;
    profile.collective_latency_s = network.fitted.collective_latency_s;
    profile.reduction_bandwidth_bytes_per_s = network.fitted.reduction_bandwidth;
    profile.collective_cost_scale = network.fitted.collective_cost_scale;
    profile.collective_efficiency = 1.0;
    result.parameters.push_back({"node.intra_node.bandwidth (achieved, collective_efficiency 1)", raw_before,
                                 profile.intra_node.bandwidth_bytes_per_s, std::numeric_limits<double>::quiet_NaN()});
    result.parameters.push_back({"node.intra_node.latency", latency_before, profile.intra_node.latency_s,
                                 std::numeric_limits<double>::quiet_NaN()});
    result.parameters.push_back({"node.collective_latency", base.collective_latency_s, profile.collective_latency_s,
                                 std::numeric_limits<double>::quiet_NaN()});
    if (profile.reduction_bandwidth_bytes_per_s != base.reduction_bandwidth_bytes_per_s)
      result.parameters.push_back({"node.reduction_bandwidth (the pace of the ranks' reductions)",
                                   base.reduction_bandwidth_bytes_per_s, profile.reduction_bandwidth_bytes_per_s,
                                   std::numeric_limits<double>::quiet_NaN()});
    for (const auto& [kind, key] : strategy::HardwareProfile::CollectiveCostScale::scaled_kinds())
      if (profile.collective_cost_scale.of(kind) != base.collective_cost_scale.of(kind))
        result.parameters.push_back({"node.collective_cost_scale." + key, base.collective_cost_scale.of(kind),
                                     profile.collective_cost_scale.of(kind), std::numeric_limits<double>::quiet_NaN()});
    std::vector<NcclPoint> after = communication;
    predict(after, profile, PredictionEngine::Analytic);
    auto to_residual = [](const NcclPoint& p) {
      // Back to seconds: time = S · factor / busbw.
      const double factor = strategy::bus_bandwidth_factor(p.kind, p.gpus);
      RecordResidual r;
      r.label = p.collective + " " + std::to_string(static_cast<long long>(p.size_bytes)) + " B over " +
                std::to_string(p.gpus) + " ranks";
      r.kind = p.collective;
      r.measured_s = p.size_bytes * factor / (p.measured_busbw_gbps * 1e9);
      r.predicted_s = p.predicted_busbw_gbps > 0 ? p.size_bytes * factor / (p.predicted_busbw_gbps * 1e9) : 0;
      return r;
    };
    std::vector<RecordResidual> base_residuals;
    for (const NcclPoint& p : before) base_residuals.push_back(to_residual(p));
    for (const NcclPoint& p : after) result.residuals.push_back(to_residual(p));
    result.communication_mape_before = mape_of(base_residuals, true);
    result.communication_mape_after = mape_of(result.residuals, true);
  }
  result.profile = profile;
  return result;
}

std::vector<std::string> fastest_run_per_configuration(const report::RunStore& store,
                                                       const std::vector<std::string>& run_ids, int skip_steps) {
  std::vector<std::string> kept;          // one run per configuration, in first-seen order
  std::vector<double> kept_median_s;      // its median step (infinity: no step times)
  std::map<std::string, std::size_t> slot;  // scenario text -> index in kept
  for (const std::string& id : run_ids) {
    std::vector<double> steps;
    for (const report::MetricPoint& point : store.load_metrics(id, "step_time_s"))
      if (point.step > skip_steps && std::isfinite(point.value)) steps.push_back(point.value);
    if (steps.empty()) {
      kept.push_back(id);
      kept_median_s.push_back(std::numeric_limits<double>::infinity());
      continue;
    }
    const double median_step = median_of(steps);
    const auto [it, first_run] = slot.emplace(store.load_run(id).info.scenario_yaml, kept.size());
    if (first_run) {
      kept.push_back(id);
      kept_median_s.push_back(median_step);
    } else if (median_step < kept_median_s[it->second]) {
      kept[it->second] = id;
      kept_median_s[it->second] = median_step;
    }
  }
  return kept;
}

std::vector<InSituOp> in_situ_ops(const report::RunStore& store, const std::vector<std::string>& run_ids,
                                  std::vector<std::string>* notes, int skip_steps,
                                  const std::optional<std::string>& backend) {
  struct Key {
    strategy::OpCode code;
    std::int64_t m, n, k, batch;
    double flops, bytes;
    int threads, ranks;
    auto tie() const { return std::tie(code, m, n, k, batch, flops, bytes, threads, ranks); }
    bool operator<(const Key& other) const { return tie() < other.tie(); }
  };
  std::vector<InSituOp> result;
  for (const std::string& id : run_ids) {
    auto note = [&](const std::string& why) {
      if (notes) notes->push_back("run " + id + ": " + why);
    };
    const report::RunRecord run = store.load_run(id);
    if (run.info.scenario_yaml.empty()) {
      note("no scenario stored");
      continue;
    }
    strategy::Scenario scenario;
    try {
      scenario = strategy::parse_scenario(run.info.scenario_yaml, std::filesystem::current_path());
    } catch (const std::exception&) {
      // A profile path that no longer exists: the program does not depend on the hardware.
      try {
        YAML::Node document = YAML::Load(run.info.scenario_yaml);
        document["cluster"]["gpu"] = "cpu";
        scenario = strategy::scenario_from_document(document, std::filesystem::current_path());
      } catch (const std::exception& error) {
        note(std::string("its scenario does not load (") + error.what() + ")");
        continue;
      }
    }
    if (!scenario.model || !scenario.strategy) {
      note("not a training scenario");
      continue;
    }
    if (backend && scenario.cluster.profile.backend != *backend) {
      note("ran on the " + scenario.cluster.profile.backend + " backend");
      continue;
    }
    strategy::Program program;
    try {
      program = strategy::build_program(scenario);
    } catch (const std::exception& error) {
      note(std::string("its program does not build (") + error.what() + ")");
      continue;
    }
    const int threads = scenario.cluster.threads_per_rank;
    const int ranks = scenario.cluster.gpus();
    std::map<std::pair<int, std::uint32_t>, std::vector<double>> per_op;  // (rank, op id) -> durations
    std::map<std::pair<int, std::uint32_t>, strategy::OpCode> traced_code;
    const auto steps = store.trace_steps(id);
    std::size_t used_steps = 0;
    for (std::int64_t step : steps) {
      if (step <= skip_steps) continue;
      ++used_steps;
      for (const report::TraceRecord& record : store.load_trace(id, step).records) {
        if (record.code != strategy::OpCode::StepBegin && record.end_s > record.start_s) {
          per_op[{record.rank, record.op_id}].push_back(record.end_s - record.start_s);
          traced_code[{record.rank, record.op_id}] = record.code;
        }
      }
    }
    if (used_steps == 0) {
      note("no traced step after the first " + std::to_string(skip_steps));
      continue;
    }
    std::map<Key, std::vector<double>> grouped;
    std::map<Key, strategy::Op> op_of;
    double summed_medians = 0;  // one step's ops, each at its median
    std::size_t other_program = 0;  // ops whose id names another op in this version's program
    for (auto& [where, durations] : per_op) {
      const auto& ops = program.ops_of_rank(where.first);
      if (where.second >= ops.size() || ops[where.second].code != traced_code[where]) {
        ++other_program;
        continue;
      }
      const strategy::Op& op = ops[where.second];
      if (op.type != strategy::OpType::Compute) continue;
      const Key key{op.code, op.m, op.n, op.k, op.batch, op.flops, op.bytes, threads, ranks};
      grouped[key].push_back(median_of(durations));
      summed_medians += grouped[key].back();
      op_of.emplace(key, op);
    }
    if (other_program > 0) {
      note("traced with another version of the step program (" + std::to_string(other_program) +
           " op ids name other ops now); run it again");
      continue;
    }
    // A 1-rank step is its compute ops back to back, but the ops' medians add up to 1.5-4% less
    // than the median step (each op's median drops that op's slow steps, which the step keeps,
    // and ~0.1 ms runs between ops): scale them to add up to the median step, the number
    // validate measures. Ranks that wait for each other are left as they are.
    double step_scale = 1;
    if (ranks == 1 && summed_medians > 0) {
      std::vector<double> step_times;
      for (const report::MetricPoint& point : store.load_metrics(id, "step_time_s"))
        if (point.step > skip_steps && std::isfinite(point.value)) step_times.push_back(point.value);
      if (!step_times.empty()) step_scale = std::clamp(median_of(step_times) / summed_medians, 0.9, 1.15);
    }
    for (auto& [key, medians] : grouped) {
      InSituOp o;
      o.op = op_of[key];
      o.threads = threads;
      o.ranks = ranks;
      o.samples = medians.size();
      o.measured_s = step_scale * median_of(medians);
      o.run_id = id;
      result.push_back(std::move(o));
    }
  }
  return result;
}

nlohmann::json fit_result_to_json(const ProfileFitResult& result) {
  nlohmann::json parameters = nlohmann::json::array();
  for (const FitParameter& p : result.parameters)
    parameters.push_back({{"name", p.name},
                          {"before", p.before},
                          {"after", p.after},
                          {"standard_error", std::isfinite(p.standard_error) ? nlohmann::json(p.standard_error)
                                                                             : nlohmann::json(nullptr)}});
  nlohmann::json residuals = nlohmann::json::array();
  for (const RecordResidual& r : result.residuals)
    residuals.push_back({{"record", r.label},
                         {"kind", r.kind},
                         {"measured_s", r.measured_s},
                         {"predicted_s", r.predicted_s},
                         {"error_percent", r.error_percent()}});
  return {{"compute_records", result.compute_records},
          {"compute_source", result.compute_source},
          {"microbenchmark_mape", result.microbenchmark_mape},
          {"communication_records", result.communication_records},
          {"compute_mape_before", result.compute_mape_before},
          {"compute_kept_base", result.compute_kept_base},
          {"compute_mape_rejected", result.compute_mape_rejected},
          {"compute_time_error_before", result.compute_time_error_before},
          {"compute_time_error", result.compute_time_error_after},
          {"compute_time_error_rejected", result.compute_time_error_rejected},
          {"compute_mape", result.compute_mape_after},
          {"communication_mape_before", result.communication_mape_before},
          {"communication_mape", result.communication_mape_after},
          {"iterations", result.iterations},
          {"parameters", parameters},
          {"residuals", residuals}};
}

}  // namespace tandem::calibration
