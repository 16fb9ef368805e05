// Collective plans on an idealised network reach the nccl-tests bus-bandwidth factors
// (nccl-tests doc/PERFORMANCE.md): busbw = (S / t) * factor = link bandwidth.
#include <gtest/gtest.h>

#include <map>
#include <numeric>

#include "strategy/collective_plan.hpp"

using namespace tandem::strategy;

namespace {

std::vector<int> ranks(int n) {
  std::vector<int> r(static_cast<std::size_t>(n));
  std::iota(r.begin(), r.end(), 0);
  return r;
}

double ideal_busbw(CollectiveKind kind, CollectiveAlgorithm algorithm, int n, double size, int per_node) {
  const double bandwidth = 100e9;
  const auto plan = plan_collective(kind, algorithm, ranks(n), size, [per_node](int r) { return r / per_node; });
  const double time = ideal_plan_time(plan, bandwidth, 0);
  return size / time * bus_bandwidth_factor(kind, n) / bandwidth;
}

}  // namespace

TEST(CollectivePlan, RingReachesLinkBandwidthForEveryKind) {
  for (int n : {2, 3, 8, 16, 64}) {
    for (CollectiveKind kind : {CollectiveKind::AllReduce, CollectiveKind::ReduceScatter, CollectiveKind::AllGather,
                                CollectiveKind::AllToAll}) {
      EXPECT_NEAR(ideal_busbw(kind, CollectiveAlgorithm::Ring, n, 1 << 30, 8), 1.0, 1e-9)
          << to_string(kind) << " n=" << n;
    }
    EXPECT_NEAR(ideal_busbw(CollectiveKind::SendRecv, CollectiveAlgorithm::Ring, n - n % 2 + 2, 1 << 30, 8), 1.0, 1e-9);
  }
}

TEST(CollectivePlan, PipelinedBroadcastApproachesLinkBandwidth) {
  // A pipelined chain sends S over every hop concurrently: busbw = bandwidth (factor 1).
  EXPECT_NEAR(ideal_busbw(CollectiveKind::Broadcast, CollectiveAlgorithm::Ring, 16, 1 << 30, 8), 1.0, 1e-9);
}

TEST(CollectivePlan, DoubleBinaryTreeMovesTwiceTheBufferPerRank) {
  // The reduce streams into the broadcast (NCCL pipelines them), so a rank's link carries both at
  // once. A rank interior in one tree (two children) and a leaf in the other sends S/2 + S/2 up
  // and S down: 2S per direction, busbw = 2(n-1)/n / 2 -> (n-1)/n.
  for (int n : {16, 64}) {
    const double busbw = ideal_busbw(CollectiveKind::AllReduce, CollectiveAlgorithm::Tree, n, 1 << 30, 1);
    EXPECT_NEAR(busbw, static_cast<double>(n - 1) / n, 1e-9) << n;
  }
  // On 4 ranks the only ranks with two children are the trees' roots, which send nothing up: the
  // busiest sends 3/2 S, so busbw = (2 x 3/4) / (3/2) = 1.
  EXPECT_NEAR(ideal_busbw(CollectiveKind::AllReduce, CollectiveAlgorithm::Tree, 4, 1 << 30, 1), 1.0, 1e-9);
}

TEST(CollectivePlan, HierarchicalSendsOnlyOneShardAcrossNodes) {
  // 4 nodes x 8 GPUs: inter-node traffic per rank must be 2(N-1)/N of S/g, as a flat ring's.
  const int nodes = 4, g = 8, n = nodes * g;
  const double size = 1 << 30;
  const auto node_of = [](int r) { return r / g; };
  const auto plan = plan_collective(CollectiveKind::AllReduce, CollectiveAlgorithm::Hierarchical, ranks(n), size, node_of);
  double inter = 0, intra = 0;
  for (const CollectivePhase& phase : plan.phases)
    for (const Transfer& t : phase.transfers) {
      if (t.source != 0) continue;
      (node_of(t.source) == node_of(t.destination) ? intra : inter) += t.bytes * phase.repeat;
    }
  EXPECT_NEAR(inter, 2.0 * (nodes - 1) / nodes * size / g, 1);
  EXPECT_NEAR(intra, 2.0 * (g - 1) / g * size, 1);
  // Every rank sends in every phase (all NICs and NVLinks busy).
  for (const CollectivePhase& phase : plan.phases) {
    std::map<int, int> senders;
    for (const Transfer& t : phase.transfers) ++senders[t.source];
    EXPECT_EQ(senders.size(), static_cast<std::size_t>(n));
  }
}

TEST(CollectivePlan, HierarchicalGatherAndScatterMoveTheMinimumAcrossNodes) {
  const int nodes = 4, g = 8, n = nodes * g;
  const double size = 1 << 30;
  const auto node_of = [](int r) { return r / g; };
  for (CollectiveKind kind : {CollectiveKind::AllGather, CollectiveKind::ReduceScatter}) {
    const auto plan = plan_collective(kind, CollectiveAlgorithm::Hierarchical, ranks(n), size, node_of);
    double inter = 0;
    for (const CollectivePhase& phase : plan.phases)
      for (const Transfer& t : phase.transfers)
        if (t.source == 0 && node_of(t.destination) != 0) inter += t.bytes * phase.repeat;
    EXPECT_NEAR(inter, (nodes - 1) * size / n, 1) << to_string(kind);
  }
}

TEST(CollectivePlan, CandidatesDependOnTheGroupShape) {
  const auto node_of = [](int r) { return r / 8; };
  EXPECT_EQ(candidate_algorithms(CollectiveKind::AllReduce, ranks(8), node_of).size(), 2u);
  EXPECT_EQ(candidate_algorithms(CollectiveKind::AllReduce, ranks(32), node_of).size(), 3u);
  EXPECT_EQ(candidate_algorithms(CollectiveKind::AllReduce, ranks(2), node_of).size(), 1u);
}

TEST(CollectivePlan, LatencyTermsCountSteps) {
  const int n = 16;
  const auto plan = plan_collective(CollectiveKind::AllReduce, CollectiveAlgorithm::Ring, ranks(n), 16,
                                    [](int r) { return r; });
  // Tiny message: 2(n-1) latencies.
  EXPECT_NEAR(ideal_plan_time(plan, 1e15, 1e-6), 2 * (n - 1) * 1e-6, 1e-9);
}
