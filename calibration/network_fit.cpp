#include "calibration/network_fit.hpp"

#include <algorithm>
#include <cmath>
#include <future>
#include <limits>
#include <map>
#include <numeric>
#include <stdexcept>
#include <tuple>

#include <Eigen/Dense>
#include <spdlog/spdlog.h>

#include "calibration/least_squares.hpp"
#include "sim/collective_folding.hpp"
#include "sim/simulation.hpp"
#include "sim/topology.hpp"
#include "strategy/collective_plan.hpp"

namespace tandem::calibration {

using strategy::CollectiveAlgorithm;
using strategy::CollectiveKind;

std::vector<NcclPoint> points_from_logs(const std::vector<NcclLog>& logs, const strategy::HardwareProfile& base,
                                        bool held_out, std::vector<std::string>* skipped) {
  std::vector<NcclPoint> points;
  auto skip = [&](const NcclSection& section, const std::string& why) {
    if (skipped) skipped->push_back(section.file + " (section " + std::to_string(section.index) + ", " +
                                    section.collective + "): " + why);
  };
  for (const NcclLog& log : logs) {
    for (const NcclSection& section : log.sections) {
      const auto kind = section.kind();
      if (!kind) {
        skip(section, "not a collective the twin models");
        continue;
      }
      if (section.gpus < 2) {
        skip(section, std::to_string(section.gpus) + " GPU: nothing crosses a link");
        continue;
      }
      int nodes = section.nodes;
      int per_node = section.gpus_per_node;
      if (nodes == 0) {  // no device list: fill nodes with the profile's GPUs per node
        per_node = std::min(section.gpus, std::max(1, base.default_gpus_per_node));
        nodes = section.gpus / per_node;
        if (nodes * per_node != section.gpus) per_node = 0;
      }
      if (per_node == 0) {
        skip(section, "GPUs per node differ between nodes");
        continue;
      }
      for (const NcclRow& row : section.rows) {
        if (row.out_of_place.busbw_gbps <= 0 || row.size_bytes <= 0) continue;
        NcclPoint point;
        point.file = section.file;
        point.collective = section.collective;
        point.kind = *kind;
        point.gpus = section.gpus;
        point.nodes = nodes;
        point.gpus_per_node = per_node;
        point.size_bytes = row.size_bytes;
        point.measured_busbw_gbps = row.out_of_place.busbw_gbps;
        point.held_out = held_out;
        points.push_back(point);
      }
    }
  }
  return points;
}

NetworkParameters NetworkParameters::of(const strategy::HardwareProfile& profile) {
  NetworkParameters p;
  p.nvlink_efficiency = profile.collective_efficiency > 0 ? profile.collective_efficiency : 1.0;
  p.nvlink_latency_s = profile.intra_node.latency_s;
  p.nic_efficiency = profile.nic_efficiency > 0 ? profile.nic_efficiency : p.nvlink_efficiency;
  p.nic_latency_s = profile.nic.latency_s;
  p.collective_latency_s = profile.collective_latency_s;
  p.tree_bandwidth = profile.tree_bandwidth_bytes_per_s;
  p.reduction_bandwidth = profile.reduction_bandwidth_bytes_per_s;
  p.ll_tree_bandwidth = profile.ll_tree_bandwidth_bytes_per_s;
  p.ll_latency_saving_s = profile.ll_latency_saving_s;
  p.p2p_bandwidth = profile.p2p_bandwidth_bytes_per_s;
  p.collective_cost_scale = profile.collective_cost_scale;
  return p;
}

void NetworkParameters::apply_to(strategy::HardwareProfile& profile) const {
  profile.collective_efficiency = nvlink_efficiency;
  profile.intra_node.latency_s = nvlink_latency_s;
  profile.nic_efficiency = nic_efficiency;
  profile.nic.latency_s = nic_latency_s;
  profile.collective_latency_s = collective_latency_s;
  profile.tree_bandwidth_bytes_per_s = tree_bandwidth;
  profile.reduction_bandwidth_bytes_per_s = reduction_bandwidth;
  profile.ll_tree_bandwidth_bytes_per_s = ll_tree_bandwidth;
  profile.ll_latency_saving_s = ll_latency_saving_s;
  profile.p2p_bandwidth_bytes_per_s = p2p_bandwidth;
  profile.collective_cost_scale = collective_cost_scale;
}

strategy::Scenario collective_scenario(const strategy::HardwareProfile& profile, int nodes, int gpus_per_node,
                                       CollectiveKind kind, const std::vector<double>& sizes) {
  // Any built-in profile makes the document valid; the cluster then takes `profile` whole.
  strategy::Scenario scenario = strategy::parse_scenario(
      "name: nccl-fit\ncluster: {gpu: a100-40gb, nodes: " + std::to_string(nodes) +
          ", gpus_per_node: " + std::to_string(gpus_per_node) +
          "}\ncollective: {kind: all-reduce, sizes: [1MiB], algorithm: auto}\n",
      std::filesystem::current_path());
  auto& cluster = scenario.cluster;
  cluster.profile = profile;
  cluster.gpu = profile.origin.empty() || profile.origin == "built-in" ? profile.name : profile.origin;
  cluster.intra_node = profile.intra_node;
  cluster.nic = profile.nic;
  cluster.node_groups.clear();
  cluster.node_groups.push_back({0, nodes, profile, profile.intra_node, profile.nic});
  scenario.collective->kind = kind;
  scenario.collective->sizes_bytes = sizes;
  scenario.collective->peer = strategy::SendRecvPeer::Next;  // nccl-tests' sendrecv is a ring shift
  return scenario;
}

namespace {

using GroupKey = std::tuple<int, int, int>;  // nodes, gpus per node, kind

std::map<GroupKey, std::vector<std::size_t>> group_points(const std::vector<NcclPoint>& points,
                                                          const std::vector<std::size_t>& which) {
  std::map<GroupKey, std::vector<std::size_t>> groups;
  for (std::size_t i : which)
    groups[{points[i].nodes, points[i].gpus_per_node, static_cast<int>(points[i].kind)}].push_back(i);
  return groups;
}

const char* algorithm_text(CollectiveAlgorithm algorithm) {
  switch (algorithm) {
    case CollectiveAlgorithm::Auto: return "auto";
    case CollectiveAlgorithm::Ring: return "ring";
    case CollectiveAlgorithm::Tree: return "tree";
    case CollectiveAlgorithm::Hierarchical: return "hierarchical";
  }
  return "ring";
}

// The analytic twin of one group: every candidate's folded plan costed by its links.
void predict_group_analytic(std::vector<NcclPoint>& points, const std::vector<std::size_t>& members,
                            const strategy::HardwareProfile& profile) {
  const NcclPoint& first = points[members.front()];
  const strategy::Scenario scenario =
      collective_scenario(profile, first.nodes, first.gpus_per_node, first.kind, {1});
  const sim::ClusterTopology topology(scenario.cluster);
  const int n = topology.gpus();
  std::vector<int> ranks(static_cast<std::size_t>(n));
  std::iota(ranks.begin(), ranks.end(), 0);
  auto node_of = [&](int rank) { return topology.node_of(rank); };
  const auto candidates = strategy::candidate_algorithms(first.kind, ranks, node_of);
  sim::FoldOptions fold;
  fold.preferred_node = 0;
  const double factor = strategy::bus_bandwidth_factor(first.kind, n);
  for (std::size_t i : members) {
    NcclPoint& point = points[i];
    double best = std::numeric_limits<double>::infinity();
    CollectiveAlgorithm chosen = candidates.front();
    for (CollectiveAlgorithm algorithm : candidates) {
      const auto plan = strategy::plan_collective(point.kind, algorithm, ranks, point.size_bytes, node_of,
                                                  scenario.collective->peer);
      const double time = sim::estimate_plan_time(topology, sim::fold_plans(topology, {plan}, fold));
      if (time < best) {
        best = time;
        chosen = algorithm;
      }
    }
    point.predicted_busbw_gbps = best > 0 ? point.size_bytes / best * factor / 1e9 : 0;
    point.algorithm = algorithm_text(chosen);
  }
}

void predict_group_twin(std::vector<NcclPoint>& points, const std::vector<std::size_t>& members,
                        const strategy::HardwareProfile& profile) {
  const NcclPoint& first = points[members.front()];
  std::vector<double> sizes;
  for (std::size_t i : members) sizes.push_back(points[i].size_bytes);
  const strategy::Scenario scenario =
      collective_scenario(profile, first.nodes, first.gpus_per_node, first.kind, sizes);
  sim::SimulationOptions options;
  options.record_trace = false;
  const sim::SimulationResult result = sim::run_simulation_in_child(scenario, options);
  if (!result.ok)
    throw std::runtime_error("the twin failed on " + std::to_string(first.gpus) + " GPUs: " + result.error);
  if (result.collective_rows.size() != members.size())
    throw std::runtime_error("the twin returned " + std::to_string(result.collective_rows.size()) + " rows for " +
                             std::to_string(members.size()) + " sizes");
  for (std::size_t k = 0; k < members.size(); ++k) {
    NcclPoint& point = points[members[k]];
    point.predicted_busbw_gbps = result.collective_rows[k].busbw_bytes_per_s / 1e9;
    point.algorithm = algorithm_text(result.collective_rows[k].algorithm);
  }
}

}  // namespace

void predict(std::vector<NcclPoint>& points, const strategy::HardwareProfile& profile, PredictionEngine engine,
             int jobs) {
  std::vector<std::size_t> all(points.size());
  std::iota(all.begin(), all.end(), 0);
  const auto groups = group_points(points, all);
  if (engine == PredictionEngine::Analytic) {
    for (const auto& [key, members] : groups) predict_group_analytic(points, members, profile);
    return;
  }
  // Children `jobs` at a time; each group writes only its own points.
  std::vector<std::future<void>> running;
  for (const auto& [key, members] : groups) {
    if (static_cast<int>(running.size()) >= std::max(1, jobs)) {
      running.front().get();
      running.erase(running.begin());
    }
    running.push_back(std::async(std::launch::async, [&points, &profile, members = members] {
      predict_group_twin(points, members, profile);
    }));
  }
  for (auto& job : running) job.get();
}

double busbw_mape(const std::vector<NcclPoint>& points, bool held_out, double min_size_bytes) {
  double total = 0;
  std::size_t count = 0;
  for (const NcclPoint& point : points) {
    if (point.held_out != held_out || point.size_bytes < min_size_bytes) continue;
    total += std::abs(point.error_percent());
    ++count;
  }
  return count > 0 ? total / static_cast<double>(count) : 0;
}

NetworkFitResult fit_network(const std::vector<NcclPoint>& all_points, const strategy::HardwareProfile& base,
                             const NetworkFitOptions& options) {
  std::vector<NcclPoint> points;
  for (const NcclPoint& point : all_points)
    if (!point.held_out && point.size_bytes >= options.min_size_bytes) points.push_back(point);
  if (points.empty())
    throw std::invalid_argument("no measurement to fit: every point is held out or below the minimum size");
  const bool any_intra = std::any_of(points.begin(), points.end(), [](const NcclPoint& p) { return p.gpus_per_node > 1; });
  const bool any_inter = std::any_of(points.begin(), points.end(), [](const NcclPoint& p) { return p.nodes > 1; });
  // NCCL's tree (and so its bandwidth cap) runs only all-reduces over more than 2 ranks.
  const bool any_tree = std::any_of(points.begin(), points.end(), [](const NcclPoint& p) {
    return p.kind == CollectiveKind::AllReduce && p.gpus > 2;
  });
  // A reduction slower than the links (MPI's CPU reductions) shows only beside collectives that
  // move the same bytes without reducing them: fit its pace when both kinds were measured.
  auto reduces = [](const NcclPoint& p) {
    return p.kind == CollectiveKind::AllReduce || p.kind == CollectiveKind::ReduceScatter;
  };
  const bool fit_reduction = std::any_of(points.begin(), points.end(), reduces) &&
                             !std::all_of(points.begin(), points.end(), reduces);
  // NCCL's point-to-point streams between nodes: seen in send/recv across nodes.
  auto p2p_across_nodes = [](const NcclPoint& p) { return p.kind == CollectiveKind::SendRecv && p.nodes > 1; };
  const bool fit_p2p = std::any_of(points.begin(), points.end(), p2p_across_nodes);

  NetworkFitResult result;
  result.initial = NetworkParameters::of(base);
  if (any_tree && result.initial.tree_bandwidth <= 0) {
    // No cap in the base: start where it surely binds, at half the busbw ceiling of the slower
    // level (the NICs' achieved rate across nodes, else NVLink's), and let the fit raise it (a
    // cap that binds nowhere has no gradient).
    const double nvlink = base.intra_node.bandwidth_bytes_per_s * result.initial.nvlink_efficiency;
    const double nics = base.nic.bandwidth_bytes_per_s * std::max(1, base.nic.count) * result.initial.nic_efficiency;
    result.initial.tree_bandwidth = 0.5 * (any_inter ? std::min(nvlink, nics) : nvlink);
  }
  if (fit_reduction && result.initial.reduction_bandwidth <= 0) {
    // Start where it binds (a pace that binds nowhere has no gradient): at the slowest
    // reduction's measured bytes per second.
    double slowest = std::numeric_limits<double>::infinity();
    for (const NcclPoint& p : points)
      if (reduces(p) && p.measured_busbw_gbps > 0) slowest = std::min(slowest, p.measured_busbw_gbps * 1e9);
    result.initial.reduction_bandwidth = std::isfinite(slowest) ? slowest : 1e9;
  }
  if (fit_p2p && result.initial.p2p_bandwidth <= 0) {
    // Start where it binds (a cap that binds nowhere has no gradient): at the slowest measured
    // send/recv stream (its busbw is one stream's bytes per second).
    double slowest = std::numeric_limits<double>::infinity();
    for (const NcclPoint& p : points)
      if (p2p_across_nodes(p) && p.measured_busbw_gbps > 0) slowest = std::min(slowest, p.measured_busbw_gbps * 1e9);
    result.initial.p2p_bandwidth = std::isfinite(slowest) ? slowest : 1e9;
  }
  result.fitted_points = points.size();

  // Unknowns in an unconstrained space: efficiencies through a logistic map onto (0, 1],
  // latencies through log. Parameters the data cannot see (no multi-GPU node, no second node)
  // stay at the base profile's values.
  struct Unknown {
    int which;  // 0 nvlink efficiency, 1 nvlink latency, 2 nic efficiency, 3 nic latency, 4 collective latency,
                // 5 tree bandwidth, 6 reduction bandwidth, 7 low-latency tree bandwidth, 8 its latency saving,
                // 9 point-to-point bandwidth between nodes, 10 + k: collective_cost_scale of the
                // k-th of CollectiveCostScale::scaled_kinds()
  };
  std::vector<Unknown> unknowns;
  if (any_intra) unknowns.push_back({0}), unknowns.push_back({1});
  if (any_inter) unknowns.push_back({2}), unknowns.push_back({3});
  unknowns.push_back({4});
  if (any_tree) unknowns.push_back({5});
  if (fit_reduction) unknowns.push_back({6});
  if (fit_p2p) unknowns.push_back({9});
  // A kind's pace against send/recv: seen when both were measured.
  const auto& scaled_kinds = strategy::HardwareProfile::CollectiveCostScale::scaled_kinds();
  const bool any_send_recv =
      std::any_of(points.begin(), points.end(), [](const NcclPoint& p) { return p.kind == CollectiveKind::SendRecv; });
  if (options.fit_collective_cost_scales && any_send_recv)
    for (std::size_t k = 0; k < scaled_kinds.size(); ++k)
      if (std::any_of(points.begin(), points.end(), [&](const NcclPoint& p) { return p.kind == scaled_kinds[k].first; }))
        unknowns.push_back({10 + static_cast<int>(k)});
  auto scale_of = [&](NetworkParameters& p, int which) -> double& {
    return p.collective_cost_scale.of(scaled_kinds[static_cast<std::size_t>(which - 10)].first);
  };
  // A kind's scale lives in [1/50, 50] (smoothly, through tanh): on noisy or thin measurements a
  // free log-scale can run off to 0 or infinity, which no profile may hold.
  const double scale_range = std::log(50.0);
  auto scale_from = [&](double v) { return std::exp(scale_range * std::tanh(v / scale_range)); };
  auto scale_to = [&](double scale) {
    return scale_range * std::atanh(std::clamp(std::log(scale) / scale_range, -0.999, 0.999));
  };
  auto logit = [](double e) {
    e = std::clamp(e, 1e-3, 0.999);
    return std::log(e / (1 - e));
  };
  auto logistic = [](double x) { return 1 / (1 + std::exp(-x)); };
  NetworkParameters start = result.initial;
  auto parameters_of = [&](const Eigen::VectorXd& x) {
    NetworkParameters p = start;
    for (std::size_t i = 0; i < unknowns.size(); ++i) {
      const double v = x[static_cast<Eigen::Index>(i)];
      switch (unknowns[i].which) {
        case 0: p.nvlink_efficiency = logistic(v); break;
        case 1: p.nvlink_latency_s = std::exp(v); break;
        case 2: p.nic_efficiency = logistic(v); break;
        case 3: p.nic_latency_s = std::exp(v); break;
        case 4: p.collective_latency_s = std::exp(v); break;
        case 5: p.tree_bandwidth = std::exp(v) * 1e9; break;
        case 6: p.reduction_bandwidth = std::exp(v) * 1e9; break;
        case 7: p.ll_tree_bandwidth = std::exp(v) * 1e9; break;
        case 8: p.ll_latency_saving_s = std::exp(v); break;
        case 9: p.p2p_bandwidth = std::exp(v) * 1e9; break;
        default: scale_of(p, unknowns[i].which) = scale_from(v); break;
      }
    }
    return p;
  };
  auto start_vector = [&] {
    Eigen::VectorXd x(static_cast<Eigen::Index>(unknowns.size()));
    for (std::size_t i = 0; i < unknowns.size(); ++i) {
      const auto& p = start;
      double v = 0;
      switch (unknowns[i].which) {
        case 0: v = logit(p.nvlink_efficiency); break;
        case 1: v = std::log(std::max(1e-7, p.nvlink_latency_s)); break;
        case 2: v = logit(p.nic_efficiency); break;
        case 3: v = std::log(std::max(1e-7, p.nic_latency_s)); break;
        case 4: v = std::log(std::max(1e-6, p.collective_latency_s)); break;
        case 5: v = std::log(std::max(1e-3, p.tree_bandwidth / 1e9)); break;
        case 6: v = std::log(std::max(1e-3, p.reduction_bandwidth / 1e9)); break;
        case 7: v = std::log(std::max(1e-3, p.ll_tree_bandwidth / 1e9)); break;
        case 8: v = std::log(std::max(1e-7, p.ll_latency_saving_s)); break;
        case 9: v = std::log(std::max(1e-3, p.p2p_bandwidth / 1e9)); break;
        default: v = scale_to(scale_of(start, unknowns[i].which)); break;
      }
      x[static_cast<Eigen::Index>(i)] = v;
    }
    return x;
  };

  auto residuals = [&](const Eigen::VectorXd& at) {
    strategy::HardwareProfile profile = base;
    parameters_of(at).apply_to(profile);
    predict(points, profile, PredictionEngine::Analytic);
    Eigen::VectorXd r(static_cast<Eigen::Index>(points.size()));
    for (std::size_t i = 0; i < points.size(); ++i)
      r[static_cast<Eigen::Index>(i)] =
          std::log(std::max(1e-9, points[i].predicted_busbw_gbps) / points[i].measured_busbw_gbps);
    return r;
  };

  LeastSquaresOptions solver;
  solver.max_iterations = options.max_iterations;
  solver.verbose = options.verbose;
  LeastSquaresResult solution = levenberg_marquardt(residuals, start_vector(), solver);
  NetworkParameters fitted = parameters_of(solution.x);
  const double initial_cost = solution.initial_cost;
  result.iterations = solution.iterations;
  if (any_tree) {
    // Second stage, NCCL's low-latency protocol: from the first stage's solution (fitted all at
    // once from the base, its parameters pulled the fit into a worse minimum), starting where it
    // wins at small sizes (a lower cap, half the fixed latency saved), so that the fit sees it.
    // Kept only if it lowers the error.
    start = fitted;
    if (start.ll_tree_bandwidth <= 0) start.ll_tree_bandwidth = 0.6 * start.tree_bandwidth;
    if (start.ll_latency_saving_s <= 0) start.ll_latency_saving_s = 0.5 * start.collective_latency_s;
    unknowns.push_back({7});
    unknowns.push_back({8});
    const LeastSquaresResult with_protocol = levenberg_marquardt(residuals, start_vector(), solver);
    result.iterations += with_protocol.iterations;
    if (with_protocol.final_cost < solution.final_cost) {
      solution = with_protocol;
      fitted = parameters_of(with_protocol.x);
    }
  }
  const double count = static_cast<double>(points.size());
  result.initial_rms_log_error = std::sqrt(initial_cost * 2 / count);
  result.final_rms_log_error = std::sqrt(solution.final_cost * 2 / count);
  result.fitted = fitted;
  result.profile = base;
  result.fitted.apply_to(result.profile);
  return result;
}

nlohmann::json points_to_json(const std::vector<NcclPoint>& points) {
  nlohmann::json array = nlohmann::json::array();
  for (const NcclPoint& p : points)
    array.push_back({{"file", p.file},
                     {"collective", p.collective},
                     {"gpus", p.gpus},
                     {"nodes", p.nodes},
                     {"size_bytes", p.size_bytes},
                     {"measured_busbw_GBps", p.measured_busbw_gbps},
                     {"predicted_busbw_GBps", p.predicted_busbw_gbps},
                     {"error_percent", p.error_percent()},
                     {"algorithm", p.algorithm},
                     {"held_out", p.held_out}});
  return array;
}

}  // namespace tandem::calibration
