// Folding collective phases (sim/collective_folding.hpp): what is kept, and that it keeps the
// per-link loads (checked with the analytic estimate, which reads only link loads).
#include <gtest/gtest.h>

#include "sim/collective_folding.hpp"
#include "strategy/collective_plan.hpp"
#include "strategy/scenario.hpp"

namespace {

using namespace tandem;

strategy::Scenario cluster(int nodes, int gpus_per_node, int per_leaf) {
  return strategy::parse_scenario(
      "name: t\ncluster: {gpu: h100-80gb, nodes: " + std::to_string(nodes) + ", gpus_per_node: " +
          std::to_string(gpus_per_node) + ", fabric: {topology: fat-tree, nodes_per_leaf: " +
          std::to_string(per_leaf) + ", oversubscription: 2}}\ncollective: {kind: all-reduce, sizes: [1MiB]}\n",
      ".");
}

std::vector<int> iota(int n, int first = 0, int stride = 1) {
  std::vector<int> ranks;
  for (int i = 0; i < n; ++i) ranks.push_back(first + i * stride);
  return ranks;
}

TEST(Folding, IntraNodeGroupsFoldToOneNode) {
  const auto s = cluster(16, 8, 4);
  const sim::ClusterTopology topology(s.cluster);
  auto node_of = [&](int r) { return topology.node_of(r); };
  std::vector<strategy::CollectivePlan> plans;
  for (int node = 0; node < 16; ++node)
    plans.push_back(strategy::plan_collective(strategy::CollectiveKind::AllGather, strategy::CollectiveAlgorithm::Ring,
                                              iota(8, node * 8), 64e6, node_of));
  sim::FoldOptions options;
  options.preferred_node = 5;
  const sim::FoldedPlan folded = sim::fold_plans(topology, plans, options);
  ASSERT_EQ(folded.phases.size(), 1u);
  EXPECT_EQ(folded.phases[0].original_transfers, 128u);
  ASSERT_EQ(folded.phases[0].transfers.size(), 8u);
  for (const auto& t : folded.phases[0].transfers) EXPECT_EQ(topology.node_of(t.source), 5);
  EXPECT_TRUE(folded.exact);
  // Same time as the unfolded plan: every node's NVLink carries the same load.
  sim::FoldOptions unfold;
  unfold.fold = false;
  EXPECT_DOUBLE_EQ(sim::estimate_plan_time(topology, folded), sim::estimate_plan_time(topology, sim::fold_plans(topology, plans, unfold)));
}

TEST(Folding, ShiftInvariantRingsFoldToAWindowOfLeaves) {
  const auto s = cluster(64, 1, 4);
  const sim::ClusterTopology topology(s.cluster);
  auto node_of = [&](int r) { return topology.node_of(r); };
  const auto plan = strategy::plan_collective(strategy::CollectiveKind::AllReduce, strategy::CollectiveAlgorithm::Ring,
                                              iota(64), 1e9, node_of);
  sim::FoldOptions options;
  options.flow_budget = 16;
  const sim::FoldedPlan folded = sim::fold_plans(topology, {plan}, options);
  ASSERT_EQ(folded.phases.size(), 2u);
  EXPECT_EQ(folded.phases[0].transfers.size(), 8u);  // two leaves of four nodes
  EXPECT_NE(folded.phases[0].folding.find("translation"), std::string::npos);
  EXPECT_TRUE(folded.exact);  // 64 nodes = 16 full leaves
  sim::FoldOptions unfold;
  unfold.fold = false;
  EXPECT_NEAR(sim::estimate_plan_time(topology, folded),
              sim::estimate_plan_time(topology, sim::fold_plans(topology, {plan}, unfold)), 1e-12);
  // Latency is never folded: the wrap-around hop crosses leaves in both.
  EXPECT_DOUBLE_EQ(folded.phases[0].max_latency_s, topology.route(63, 0).latency_s);
}

TEST(Folding, TreesBeyondTheBudgetAreSampledAndSaySo) {
  const auto s = cluster(256, 1, 8);
  const sim::ClusterTopology topology(s.cluster);
  auto node_of = [&](int r) { return topology.node_of(r); };
  const auto plan = strategy::plan_collective(strategy::CollectiveKind::AllReduce, strategy::CollectiveAlgorithm::Tree,
                                              iota(256), 1e9, node_of);
  sim::FoldOptions options;
  options.flow_budget = 100;
  const sim::FoldedPlan folded = sim::fold_plans(topology, {plan}, options);
  EXPECT_FALSE(folded.exact);
  // The tree's reduce and broadcast stream as one folded phase: each plan phase is folded to the
  // budget, the merged phase runs both.
  ASSERT_EQ(folded.phases.size(), 1u);
  EXPECT_EQ(folded.phases[0].merged_phases, 2);
  for (const auto& phase : folded.phases) {
    EXPECT_LE(phase.transfers.size(), 100u * static_cast<std::size_t>(phase.merged_phases));
    EXPECT_GT(phase.transfers.size(), 0u);
    EXPECT_NE(phase.folding.find("sampled"), std::string::npos);
  }
}

TEST(Folding, NoFoldKeepsEverything) {
  const auto s = cluster(8, 8, 4);
  const sim::ClusterTopology topology(s.cluster);
  auto node_of = [&](int r) { return topology.node_of(r); };
  const auto plan = strategy::plan_collective(strategy::CollectiveKind::AllReduce, strategy::CollectiveAlgorithm::Hierarchical,
                                              iota(64), 1e9, node_of);
  sim::FoldOptions options;
  options.fold = false;
  const sim::FoldedPlan folded = sim::fold_plans(topology, {plan}, options);
  for (std::size_t i = 0; i < plan.phases.size(); ++i)
    EXPECT_EQ(folded.phases[i].transfers.size(), plan.phases[i].transfers.size());
}

TEST(Folding, EstimateMatchesTheIdealPlanTimeOnAStar) {
  // One GPU per node on a star: every transfer uses its own NIC up and the peer's NIC down, as
  // ideal_plan_time assumes.
  const auto s = strategy::parse_scenario(
      "name: t\ncluster: {gpu: h100-80gb, nodes: 16, gpus_per_node: 1, fabric: {topology: star, switch_latency: 0us},"
      " nic: {count: 1, bandwidth: 400Gbps, latency: 4us}}\ncollective: {kind: all-reduce, sizes: [1MiB]}\n",
      ".");
  const sim::ClusterTopology topology(s.cluster);
  auto node_of = [&](int r) { return topology.node_of(r); };
  for (auto kind : {strategy::CollectiveKind::AllReduce, strategy::CollectiveKind::AllGather,
                    strategy::CollectiveKind::ReduceScatter}) {
    const auto plan = strategy::plan_collective(kind, strategy::CollectiveAlgorithm::Ring, iota(16), 256e6, node_of);
    const double bandwidth = topology.route_bandwidth(topology.route(0, 1));
    EXPECT_NEAR(sim::estimate_plan_time(topology, sim::fold_plans(topology, {plan}, {})),
                strategy::ideal_plan_time(plan, bandwidth, 4e-6), 1e-9);
  }
}

}  // namespace
