#include "sim/collective_whatif.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include <simgrid/s4u.hpp>

#include "sim/collective_folding.hpp"
#include "sim/platform.hpp"
#include "sim/topology.hpp"
#include "strategy/collective_plan.hpp"

namespace tandem::sim {

namespace s4u = simgrid::s4u;

std::vector<CollectiveRow> simulate_collective(const strategy::Scenario& scenario, const CollectiveOptions& options) {
  const strategy::CollectiveSpec& spec = *scenario.collective;
  const ClusterTopology topology(scenario.cluster);
  const int n = topology.gpus();
  std::vector<int> ranks(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) ranks[static_cast<std::size_t>(i)] = i;
  auto node_of = [&](int rank) { return topology.node_of(rank); };
  std::vector<strategy::CollectiveAlgorithm> candidates{spec.algorithm};
  if (spec.algorithm == strategy::CollectiveAlgorithm::Auto)
    candidates = strategy::candidate_algorithms(spec.kind, ranks, node_of);

  FoldOptions fold;
  fold.fold = options.fold;
  fold.flow_budget = options.flow_budget;
  fold.preferred_node = 0;
  struct Job {
    std::size_t row = 0;
    strategy::CollectiveAlgorithm algorithm{};
    FoldedPlan plan;
    std::size_t transfers = 0;
    double time_s = 0;
  };
  std::vector<Job> jobs;
  std::set<int> gpus{0};
  for (std::size_t row = 0; row < spec.sizes_bytes.size(); ++row) {
    for (strategy::CollectiveAlgorithm algorithm : candidates) {
      Job job;
      job.row = row;
      job.algorithm = algorithm;
      const strategy::CollectivePlan plan =
          strategy::plan_collective(spec.kind, algorithm, ranks, spec.sizes_bytes[row], node_of, spec.peer);
      for (const auto& phase : plan.phases) job.transfers += phase.transfers.size();
      job.plan = fold_plans(topology, {plan}, fold);
      for (const auto& phase : job.plan.phases)
        for (const auto& t : phase.transfers) {
          gpus.insert(t.source);
          gpus.insert(t.destination);
        }
      jobs.push_back(std::move(job));
    }
  }

  auto engine = configure_simgrid(options.verbose);
  SimPlatform platform(topology, std::vector<int>(gpus.begin(), gpus.end()));
  s4u::Actor::create("collective", platform.control_host(), [&] {
    for (Job& job : jobs) {
      const double start = s4u::Engine::get_clock();
      for (const FoldedPhase& phase : job.plan.phases) {
        const double phase_start = s4u::Engine::get_clock();
        std::vector<s4u::CommPtr> flows;
        flows.reserve(phase.transfers.size());
        for (const auto& t : phase.transfers) {
          const double bytes = std::max(1.0, std::ceil(t.bytes * phase.repeat));
          flows.push_back(s4u::Comm::sendto_async(platform.host(t.source), platform.host(t.destination),
                                                  static_cast<std::uint64_t>(bytes)));
        }
        s4u::Comm::wait_all(flows);
        double tail = phase.tail_latency_s();
        const double reduction = topology.group(0).profile.reduction_bandwidth_bytes_per_s;
        if (reduction > 0 && phase.reduce_bytes_per_rank > 0)
          tail = std::max(tail, phase.repeat * phase.reduce_bytes_per_rank / reduction -
                                    (s4u::Engine::get_clock() - phase_start));
        if (tail > 0) s4u::this_actor::sleep_for(tail);
      }
      job.time_s = s4u::Engine::get_clock() - start;
    }
  });
  engine->run();

  std::vector<CollectiveRow> rows(spec.sizes_bytes.size());
  for (std::size_t row = 0; row < rows.size(); ++row) rows[row].size_bytes = spec.sizes_bytes[row];
  for (const Job& job : jobs) {
    CollectiveRow& row = rows[job.row];
    CollectiveCandidate candidate;
    candidate.algorithm = job.algorithm;
    candidate.time_s = job.time_s;
    candidate.transfers = job.transfers;
    for (const auto& phase : job.plan.phases) candidate.flows += phase.transfers.size();
    candidate.exact = job.plan.exact;
    candidate.folding = job.plan.description();
    row.candidates.push_back(candidate);
  }
  for (CollectiveRow& row : rows) {
    const auto best = std::min_element(row.candidates.begin(), row.candidates.end(),
                                       [](const auto& a, const auto& b) { return a.time_s < b.time_s; });
    row.algorithm = best->algorithm;
    row.time_s = best->time_s;
    if (row.time_s > 0) {
      row.algbw_bytes_per_s = row.size_bytes / row.time_s;
      row.busbw_bytes_per_s = row.algbw_bytes_per_s * strategy::bus_bandwidth_factor(spec.kind, n);
    }
  }
  return rows;
}

}  // namespace tandem::sim
