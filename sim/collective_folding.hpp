#pragma once
// Folding a collective's flows: which transfers the twin actually puts on the simulated network.
//
// A collective plan (strategy/collective_plan.hpp) is a list of phases; in a phase every
// transfer starts together and the phase ends with the slowest. Simulating one flow per GPU per
// phase is exact but costs ~N² in SimGrid's bandwidth-sharing solver (N concurrent flows), so
// the twin keeps a representative subset whose slowest flow takes as long as the slowest of the
// full set. The rules, in order (FoldedPhase::folding says which applied):
//
//  1. Intra-node (exact). Transfers between GPUs of one node use only that node's NVLink ports,
//     which no other node's traffic touches. Nodes whose intra-node transfers are the same
//     (same hardware group, same local source/destination/bytes) take the same time, so one node
//     per distinct pattern is simulated (the preferred node — the representative's — first).
//  2. Translation (exact when every leaf is full, else the partial last leaf is approximated).
//     Inter-node transfers on a homogeneous run of nodes whose pattern is unchanged by shifting
//     every node by one leaf (nodes_per_leaf nodes, cyclically) — rings in node order, per-rail
//     rings, the flat ring's node-crossing hops — load every NIC and every leaf up/downlink
//     identically in every leaf. The twin keeps the transfers leaving the first W leaves
//     (W = 2, or more when a transfer reaches further than a leaf) and wraps their destinations
//     into that window: every link in the window then carries exactly the flows it carries in
//     the full pattern. Applied only when the phase has more inter-node transfers than the
//     budget.
//  3. Sampling (approximation). Patterns that are not shift-invariant (double binary trees
//     over thousands of nodes) and still exceed the budget keep the transfers among the first K
//     nodes in the order the plan lists them (for a heap-ordered tree: the top of the tree, a
//     smaller tree of the same shape), K a whole number of leaves. Per-node loads of interior
//     nodes and per-leaf up/downlink loads of full leaves are those of the full tree; the
//     fabric's spine-level balance and the partially filled levels are not.
//
// Latency is never folded: a phase's latency is the largest route latency over all its
// original transfers, and `pipeline_hops` adds that per hop. A phase repeated `repeat` times
// (a ring's steps) adds, per further step, the mean route latency of its transfers: each step of
// a rank waits for its predecessor's previous step, so over the steps the chain of waits runs
// along the ring and crosses its hops in proportion (NCCL's tuner likewise counts a ring's
// intra-node steps at the NVLink latency and only its inter-node steps at the network's). The
// first phase also pays the profile's fixed per-collective latency (node.collective_latency).
//
// Streaming phases (CollectivePhase::streams_into_next, NCCL's pipelined tree) are merged into
// one folded phase: their transfers run together (each carrying its phase's repeated bytes), so
// the busiest link bounds the whole run, and `streamed_latency_s` adds the latencies the merged
// phases would have paid after the first's route latency: the first chunk's trip through every
// stage of the pipeline. A run that carries tree_bus_bytes_per_rank (NCCL's tree) takes at least
// those bytes over the profile's node.tree_bandwidth: when its busiest link would finish sooner,
// `tree_cap_wait_s` adds the difference (NCCL's per-channel tree bandwidth cap). The profile
// states the cap of a tree over 3 or more nodes; NCCL's tuner allows a tree over 1 or 2 nodes more
// per channel, and tree_bandwidth_scale gives its ratios.

#include <cstddef>
#include <string>
#include <vector>

#include "sim/topology.hpp"
#include "strategy/collective_plan.hpp"

namespace tandem::sim {

struct FoldedPhase {
  std::vector<strategy::Transfer> transfers;  // GPU (= global rank) ids
  int repeat = 1;
  int pipeline_hops = 0;
  double reduce_bytes_per_rank = 0;
  double max_latency_s = 0;     // over every original transfer
  double step_latency_s = 0;    // mean route latency over every original transfer
  double fixed_latency_s = 0;   // the collective's fixed latency (first phase only)
  double streamed_latency_s = 0;  // merged streaming phases: their latencies beyond max_latency_s
  int merged_phases = 1;          // plan phases folded into this one (> 1: a streaming run)
  double tree_bus_bytes_per_rank = 0;  // from the plan (NCCL's tree runs)
  double tree_cap_wait_s = 0;     // the tree_bandwidth cap's wait beyond the busiest link's time
  int tree_nodes = 0;             // nodes the tree spans (its cap depends on them)
  bool point_to_point = false;    // a send/recv plan's phase (node.p2p_bandwidth caps its streams)
  double p2p_cap_wait_s = 0;      // that cap's wait beyond the busiest link's time
  std::size_t original_transfers = 0;
  std::string folding;          // "", "intra-node", "translation", "sampled" (joined by '+')
  bool exact = true;

  // The latency the phase adds after its flows (which paid their own route latency once): the
  // further repeated steps, the pipelined hops and the fixed per-collective latency.
  double tail_latency_s() const {
    return (repeat - 1) * step_latency_s + pipeline_hops * max_latency_s + fixed_latency_s + streamed_latency_s +
           tree_cap_wait_s + p2p_cap_wait_s;
  }
};

struct FoldedPlan {
  std::vector<FoldedPhase> phases;
  bool exact = true;
  std::string description() const;  // "phase 1: 100000 -> 71 transfers (intra-node, translation)"
};

struct FoldOptions {
  bool fold = true;               // false: keep every transfer (the --no-fold executor)
  std::size_t flow_budget = 2048; // translation and sampling apply above this many transfers
  int preferred_node = -1;        // node kept first by the intra-node fold
};

// Folds the concurrent plans `plans` (their i-th phases run together; e.g. the same collective on
// every sibling group) into representative phases.
FoldedPlan fold_plans(const ClusterTopology& topology, const std::vector<strategy::CollectivePlan>& plans,
                      const FoldOptions& options);

// The analytic estimate of a folded plan (the algorithm tuner of `auto` inside training steps,
// like NCCL's): per phase, repeat times the most loaded link's bytes over its achievable
// bandwidth, plus the largest route latency and the phase's tail latency.
double estimate_plan_time(const ClusterTopology& topology, const FoldedPlan& plan);

// node.tree_bandwidth is the cap of a tree over 3 or more nodes; a tree over `nodes` nodes gets
// this multiple of it (NCCL's Ampere perChMaxTreeBws, NCCL 2.12-2.28: 24.0 / 23.6 / 17.8 GB/s per channel
// on 1 / 2 / 3+ nodes).
double tree_bandwidth_scale(int nodes);

// node.p2p_bandwidth of the node group `gpu` belongs to; infinity when the profile sets none.
double p2p_cap_of(const ClusterTopology& topology, int gpu);

}  // namespace tandem::sim
