#pragma once
// Fitting a GPU cluster profile's network parameters to nccl-tests measurements
// (`tandem-calibrate fit-nccl`).
//
// The parameters are the ones the twin's collective model reads from the profile
// (sim/topology.hpp, sim/collective_folding.hpp):
//   node.collective_efficiency   achieved fraction of the NVLink port bandwidth
//   node.intra_node.latency      one NVLink ring step (GPU -> NVSwitch -> GPU)
//   node.nic_efficiency          achieved fraction of the NIC / fabric bandwidth
//   node.nic.latency             one NIC-to-NIC hop (plus the cluster's switch latency)
//   node.collective_latency      the fixed cost of one collective call (launch, protocol setup)
//   node.tree_bandwidth          the most bus bandwidth NCCL's (pipelined) tree reaches per GPU
//   node.p2p_bandwidth           the most one send/recv stream between two nodes reaches
//   node.collective_cost_scale   (MPI backends only) each collective kind's pace against send/recv
// The raw link bandwidths and the NIC count stay those of the base profile (`--gpu`): they are
// datasheet numbers, and bandwidth x efficiency is all the model sees.
//
// Least squares on log(predicted / measured) busbw, Levenberg-Marquardt (Eigen) with a numerical
// Jacobian. Every evaluation uses the twin's own collective model: the strategy layer's plan of
// each candidate algorithm, folded exactly as the twin folds it, costed with the analytic
// estimate of its links (sim::estimate_plan_time: the most loaded link's bytes over its
// bandwidth plus the step latencies, which is what the simulation of a collective alone on the
// network gives), the fastest candidate kept as the what-if's `auto` keeps it. The reported
// predictions then come from the twin itself: a collective what-if simulated in a child
// process with the written profile.

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "calibration/nccl_log.hpp"
#include "strategy/hardware_profile.hpp"
#include "strategy/scenario.hpp"

namespace tandem::calibration {

// One measured size of one nccl-tests section.
struct NcclPoint {
  std::string file;
  std::string collective;  // nccl-tests name (all_reduce, ...)
  strategy::CollectiveKind kind = strategy::CollectiveKind::AllReduce;
  int gpus = 0;
  int nodes = 1;
  int gpus_per_node = 1;
  double size_bytes = 0;
  double measured_busbw_gbps = 0;   // out-of-place
  double predicted_busbw_gbps = 0;  // filled by predict
  std::string algorithm;            // the twin's choice (filled by predict)
  bool held_out = false;            // not fitted: predicted only

  double error_percent() const {
    return measured_busbw_gbps > 0 ? 100.0 * (predicted_busbw_gbps - measured_busbw_gbps) / measured_busbw_gbps : 0;
  }
};

// The points of parsed logs the twin can model: sections of a collective kind it knows, with at
// least 2 GPUs and a uniform number per node, sizes with a non-zero busbw. `skipped` collects
// one line per section left out and why.
std::vector<NcclPoint> points_from_logs(const std::vector<NcclLog>& logs, const strategy::HardwareProfile& base,
                                        bool held_out, std::vector<std::string>* skipped = nullptr);

struct NetworkParameters {
  double nvlink_efficiency = 0.75;
  double nvlink_latency_s = 5e-6;
  double nic_efficiency = 0.8;
  double nic_latency_s = 5e-6;
  double collective_latency_s = 0;
  double tree_bandwidth = 0;  // bytes/s, 0 = no cap
  double reduction_bandwidth = 0;  // bytes/s a rank reduces at, 0 = not slower than its links
  double ll_tree_bandwidth = 0;    // bytes/s, the tree's cap under NCCL's low-latency protocol (0 = none)
  double ll_latency_saving_s = 0;  // the fixed latency that protocol saves
  double p2p_bandwidth = 0;        // bytes/s one send/recv stream between nodes reaches (0 = no cap)
  strategy::HardwareProfile::CollectiveCostScale collective_cost_scale;  // per kind, send/recv = 1

  static NetworkParameters of(const strategy::HardwareProfile& profile);
  void apply_to(strategy::HardwareProfile& profile) const;
};

enum class PredictionEngine { Analytic, Twin };

// Fills predicted_busbw_gbps and algorithm of every point with `profile` (Analytic: in process;
// Twin: one collective what-if per (gpus, nodes, collective) in a child process, `jobs` at a
// time). Throws std::runtime_error when a simulation fails.
void predict(std::vector<NcclPoint>& points, const strategy::HardwareProfile& profile, PredictionEngine engine,
             int jobs = 1);

struct NetworkFitOptions {
  double min_size_bytes = 1 << 20;  // fit (and score) sizes at or above this
  int max_iterations = 60;
  bool verbose = false;
  // Fit node.collective_cost_scale of every measured kind against the send/recv points (an MPI
  // backend, whose collectives each run their own algorithm). Off for nccl-tests logs: the twin
  // models NCCL's algorithms one by one.
  bool fit_collective_cost_scales = false;
};

struct NetworkFitResult {
  NetworkParameters initial;
  NetworkParameters fitted;
  strategy::HardwareProfile profile;  // the base profile with the fitted parameters
  int iterations = 0;
  double initial_rms_log_error = 0;
  double final_rms_log_error = 0;
  std::size_t fitted_points = 0;
};

// Least-squares fit of the network parameters on the points that are not held out and are at
// least min_size_bytes. Throws std::invalid_argument when there is nothing to fit.
NetworkFitResult fit_network(const std::vector<NcclPoint>& points, const strategy::HardwareProfile& base,
                             const NetworkFitOptions& options = {});

// Mean absolute percentage error of the points at or above min_size_bytes, held out or not.
double busbw_mape(const std::vector<NcclPoint>& points, bool held_out, double min_size_bytes);

// A collective scenario of `point`'s cluster shape with `profile` (the scenario's gpu is
// written as `gpu_text`, e.g. the profile path).
strategy::Scenario collective_scenario(const strategy::HardwareProfile& profile, int nodes, int gpus_per_node,
                                       strategy::CollectiveKind kind, const std::vector<double>& sizes);

nlohmann::json points_to_json(const std::vector<NcclPoint>& points);

}  // namespace tandem::calibration
