#include "strategy/collective_plan.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <map>

namespace tandem::strategy {
namespace {

int tree_depth(int n) {
  int depth = 0;
  while ((1 << depth) < n + 1) ++depth;
  return std::max(depth - 1, 0);
}

// A ring step over `ranks`: every rank sends `bytes` to its successor.
CollectivePhase ring_phase(const std::vector<int>& ranks, double bytes, int repeat, double reduce) {
  CollectivePhase phase;
  const int n = static_cast<int>(ranks.size());
  for (int i = 0; i < n; ++i)
    phase.transfers.push_back({ranks[static_cast<std::size_t>(i)],
                               ranks[static_cast<std::size_t>((i + 1) % n)], bytes});
  phase.repeat = repeat;
  phase.reduce_bytes_per_rank = reduce;
  return phase;
}

// Ring steps of several disjoint rings at once (one per node, or one per rail): their transfers
// run concurrently, so they are one phase.
CollectivePhase rings_phase(const std::vector<std::vector<int>>& rings, double bytes, int repeat,
                            double reduce) {
  CollectivePhase phase;
  for (const auto& ring : rings) {
    CollectivePhase one = ring_phase(ring, bytes, repeat, reduce);
    phase.transfers.insert(phase.transfers.end(), one.transfers.begin(), one.transfers.end());
  }
  phase.repeat = repeat;
  phase.reduce_bytes_per_rank = reduce;
  return phase;
}

// NCCL's double binary tree: two heap-ordered binary trees, the second over the ranks in
// reverse order, so a leaf of one is (mostly) interior in the other. Each carries half the data.
// Returns the reduce (child -> parent) and broadcast (parent -> child) phases for all `groups`.
std::pair<CollectivePhase, CollectivePhase> double_tree_phases(
    const std::vector<std::vector<int>>& groups, double bytes) {
  CollectivePhase up;
  CollectivePhase down;
  int depth = 0;
  for (const auto& group : groups) {
    const int n = static_cast<int>(group.size());
    if (n < 2) continue;
    depth = std::max(depth, tree_depth(n));
    for (int tree = 0; tree < 2; ++tree) {
      auto at = [&](int position) {
        return group[static_cast<std::size_t>(tree == 0 ? position : n - 1 - position)];
      };
      for (int position = 1; position < n; ++position) {
        const int parent = (position - 1) / 2;
        up.transfers.push_back({at(position), at(parent), bytes / 2});
        down.transfers.push_back({at(parent), at(position), bytes / 2});
      }
    }
  }
  up.pipeline_hops = down.pipeline_hops = std::max(depth - 1, 0);
  up.reduce_bytes_per_rank = bytes;
  up.streams_into_next = true;  // NCCL pipelines the reduce into the broadcast chunk by chunk
  return {up, down};
}

struct NodeSplit;
CollectivePhase channel_rings_phase(const std::vector<int>& ranks, const NodeSplit& split, double bytes, int repeat,
                                    double reduce);

struct NodeSplit {
  std::vector<std::vector<int>> per_node;  // ranks of the group on each node, in group order
  std::vector<std::vector<int>> rails;     // the i-th rank of every node
  bool uniform = false;                    // same count on every node
};

NodeSplit split_by_node(const std::vector<int>& ranks, const std::function<int(int)>& node_of) {
  NodeSplit split;
  std::map<int, std::size_t> index_of_node;
  for (int rank : ranks) {
    const int node = node_of(rank);
    auto [it, inserted] = index_of_node.emplace(node, split.per_node.size());
    if (inserted) split.per_node.emplace_back();
    split.per_node[it->second].push_back(rank);
  }
  const std::size_t local = split.per_node.front().size();
  split.uniform = std::all_of(split.per_node.begin(), split.per_node.end(),
                              [&](const auto& node) { return node.size() == local; });
  if (split.uniform) {
    split.rails.resize(local);
    for (const auto& node : split.per_node)
      for (std::size_t i = 0; i < local; ++i) split.rails[i].push_back(node[i]);
  }
  return split;
}

bool hierarchical_applies(const NodeSplit& split) {
  return split.uniform && split.per_node.size() > 1 && split.per_node.front().size() > 1;
}

// NCCL's ring over several nodes: g channels (g = ranks per node), each a ring through every rank
// carrying 1/g of each step's data, so every NIC of a node carries one channel's node-crossing
// hop instead of one NIC carrying them all. Channel c enters node k at local rank (c - k) mod g,
// walks the node's ranks in order and leaves from the rank before it; the next node is entered
// at that same local index, so node-crossing hops stay on one rail (NIC index), as NCCL arranges
// them. Per rank and step the bytes sent are those of a single ring (S/n), so on an idealised
// network it is exactly a ring; with a single rank per node (or one node) it is a single ring.
CollectivePhase channel_rings_phase(const std::vector<int>& ranks, const NodeSplit& split, double bytes, int repeat,
                                    double reduce) {
  if (!hierarchical_applies(split)) return ring_phase(ranks, bytes, repeat, reduce);
  const int g = static_cast<int>(split.per_node.front().size());
  const int nodes = static_cast<int>(split.per_node.size());
  std::vector<std::vector<int>> rings;
  for (int c = 0; c < g; ++c) {
    std::vector<int> ring;
    for (int k = 0; k < nodes; ++k) {
      const int first = ((c - k) % g + g) % g;
      for (int j = 0; j < g; ++j)
        ring.push_back(split.per_node[static_cast<std::size_t>(k)][static_cast<std::size_t>((first + j) % g)]);
    }
    rings.push_back(std::move(ring));
  }
  return rings_phase(rings, bytes / g, repeat, reduce);
}

void append_all_reduce(CollectivePlan& plan, CollectiveAlgorithm algorithm,
                       const std::vector<int>& ranks, double size,
                       const std::function<int(int)>& node_of) {
  const int n = static_cast<int>(ranks.size());
  const NodeSplit split = split_by_node(ranks, node_of);
  if (algorithm == CollectiveAlgorithm::Ring || n == 2) {
    plan.phases.push_back(channel_rings_phase(ranks, split, size / n, n - 1, size / n));  // reduce-scatter
    plan.phases.push_back(channel_rings_phase(ranks, split, size / n, n - 1, 0));         // all-gather
    return;
  }
  const bool two_level = hierarchical_applies(split);
  if (!two_level) {
    // Single node, or one rank per node: the whole group is one level.
    if (algorithm == CollectiveAlgorithm::Tree || algorithm == CollectiveAlgorithm::Hierarchical) {
      if (algorithm == CollectiveAlgorithm::Hierarchical) {
        plan.phases.push_back(ring_phase(ranks, size / n, n - 1, size / n));
        plan.phases.push_back(ring_phase(ranks, size / n, n - 1, 0));
        return;
      }
      auto [up, down] = double_tree_phases({ranks}, size);
      plan.phases.push_back(up);
      plan.phases.push_back(down);
    }
    return;
  }
  // Two levels: reduce-scatter inside each node, all-reduce across nodes per rail (each rail
  // carries 1/g of the data, so all NICs work), all-gather inside each node.
  const int g = static_cast<int>(split.per_node.front().size());
  const double shard = size / g;
  plan.phases.push_back(rings_phase(split.per_node, shard, g - 1, shard));
  const int nodes = static_cast<int>(split.per_node.size());
  if (algorithm == CollectiveAlgorithm::Tree) {
    // NCCL's tree streams chunks through the node (its chain), up and down the inter-node tree
    // and back through the node at once: the four phases are one pipeline.
    plan.phases.back().streams_into_next = true;
    auto [up, down] = double_tree_phases(split.rails, shard);
    down.streams_into_next = true;
    plan.phases.push_back(up);
    plan.phases.push_back(down);
  } else {
    plan.phases.push_back(rings_phase(split.rails, shard / nodes, nodes - 1, shard / nodes));
    plan.phases.push_back(rings_phase(split.rails, shard / nodes, nodes - 1, 0));
  }
  plan.phases.push_back(rings_phase(split.per_node, shard, g - 1, 0));
}

// All-gather (reduce = false) or reduce-scatter (reduce = true) of total size S.
void append_gather_or_scatter(CollectivePlan& plan, CollectiveAlgorithm algorithm,
                              const std::vector<int>& ranks, double size, bool reduce,
                              const std::function<int(int)>& node_of) {
  const int n = static_cast<int>(ranks.size());
  const NodeSplit split = split_by_node(ranks, node_of);
  if (algorithm != CollectiveAlgorithm::Hierarchical || !hierarchical_applies(split)) {
    plan.phases.push_back(channel_rings_phase(ranks, split, size / n, n - 1, reduce ? size / n : 0));
    return;
  }
  // Two levels (intra-node ring on the full buffer, then inter-node rings per rail on 1/g of
  // it): the slow inter-node links carry only (N-1)/n of S per rank, as a flat ring would.
  // Reduce-scatter goes intra then inter; all-gather mirrors it.
  const int g = static_cast<int>(split.per_node.front().size());
  const int nodes = static_cast<int>(split.per_node.size());
  const double block = size / n;
  CollectivePhase intra = rings_phase(split.per_node, size / g, g - 1, reduce ? size / g : 0);
  CollectivePhase inter = rings_phase(split.rails, block, nodes - 1, reduce ? block : 0);
  if (reduce) {
    plan.phases.push_back(intra);
    plan.phases.push_back(inter);
  } else {
    plan.phases.push_back(inter);
    plan.phases.push_back(intra);
  }
}

}  // namespace

double bus_bandwidth_factor(CollectiveKind kind, int n) {
  switch (kind) {
    case CollectiveKind::AllReduce: return 2.0 * (n - 1) / n;
    case CollectiveKind::ReduceScatter:
    case CollectiveKind::AllGather:
    case CollectiveKind::AllToAll: return static_cast<double>(n - 1) / n;
    case CollectiveKind::Broadcast:
    case CollectiveKind::SendRecv: return 1.0;
  }
  return 1.0;
}

std::vector<CollectiveAlgorithm> candidate_algorithms(CollectiveKind kind,
                                                      const std::vector<int>& ranks,
                                                      const std::function<int(int)>& node_of) {
  const bool two_level = hierarchical_applies(split_by_node(ranks, node_of));
  switch (kind) {
    case CollectiveKind::AllReduce:
      if (ranks.size() <= 2) return {CollectiveAlgorithm::Ring};
      if (two_level)
        return {CollectiveAlgorithm::Ring, CollectiveAlgorithm::Tree, CollectiveAlgorithm::Hierarchical};
      return {CollectiveAlgorithm::Ring, CollectiveAlgorithm::Tree};
    case CollectiveKind::AllGather:
    case CollectiveKind::ReduceScatter:
      if (two_level) return {CollectiveAlgorithm::Ring, CollectiveAlgorithm::Hierarchical};
      return {CollectiveAlgorithm::Ring};
    case CollectiveKind::Broadcast:
      return {CollectiveAlgorithm::Ring, CollectiveAlgorithm::Tree};
    case CollectiveKind::AllToAll:
    case CollectiveKind::SendRecv:
      return {CollectiveAlgorithm::Ring};
  }
  return {CollectiveAlgorithm::Ring};
}

CollectivePlan plan_collective(CollectiveKind kind, CollectiveAlgorithm algorithm,
                               const std::vector<int>& ranks, double size,
                               const std::function<int(int)>& node_of, SendRecvPeer peer) {
  assert(algorithm != CollectiveAlgorithm::Auto);
  CollectivePlan plan;
  plan.kind = kind;
  plan.algorithm = algorithm;
  const int n = static_cast<int>(ranks.size());
  if (n < 2 || size <= 0) return plan;
  switch (kind) {
    case CollectiveKind::AllReduce:
      if (algorithm == CollectiveAlgorithm::Tree && n > 2 &&
          !hierarchical_applies(split_by_node(ranks, node_of))) {
        auto [up, down] = double_tree_phases({ranks}, size);
        plan.phases.push_back(up);
        plan.phases.push_back(down);
      } else {
        append_all_reduce(plan, algorithm, ranks, size, node_of);
      }
      if (algorithm == CollectiveAlgorithm::Tree && !plan.phases.empty() && plan.phases.front().streams_into_next)
        plan.phases.front().tree_bus_bytes_per_rank = bus_bandwidth_factor(kind, n) * size;
      break;
    case CollectiveKind::ReduceScatter:
      append_gather_or_scatter(plan, algorithm, ranks, size, true, node_of);
      break;
    case CollectiveKind::AllGather:
      append_gather_or_scatter(plan, algorithm, ranks, size, false, node_of);
      break;
    case CollectiveKind::Broadcast: {
      if (algorithm == CollectiveAlgorithm::Tree) {
        auto [up, down] = double_tree_phases({ranks}, size);
        plan.phases.push_back(down);
      } else {
        // Pipelined chain from ranks[0]: every hop carries S, streaming.
        CollectivePhase chain;
        for (int i = 0; i + 1 < n; ++i)
          chain.transfers.push_back({ranks[static_cast<std::size_t>(i)], ranks[static_cast<std::size_t>(i + 1)], size});
        chain.pipeline_hops = n - 2;
        plan.phases.push_back(chain);
      }
      break;
    }
    case CollectiveKind::AllToAll:
      // Shift k: rank i sends its k-th block (S/n) to rank i+k.
      for (int shift = 1; shift < n; ++shift) {
        CollectivePhase phase;
        for (int i = 0; i < n; ++i)
          phase.transfers.push_back({ranks[static_cast<std::size_t>(i)],
                                     ranks[static_cast<std::size_t>((i + shift) % n)], size / n});
        plan.phases.push_back(std::move(phase));
      }
      break;
    case CollectiveKind::SendRecv: {
      CollectivePhase phase;
      if (peer == SendRecvPeer::Next) {
        // nccl-tests' sendrecv: rank i sends S to rank i + 1 (and so receives S from i - 1).
        for (int i = 0; i < n; ++i)
          phase.transfers.push_back({ranks[static_cast<std::size_t>(i)], ranks[static_cast<std::size_t>((i + 1) % n)], size});
      } else {
        // Rank i exchanges S with rank i + n/2 (both directions).
        const int half = n / 2;
        for (int i = 0; i < half; ++i) {
          phase.transfers.push_back({ranks[static_cast<std::size_t>(i)], ranks[static_cast<std::size_t>(i + half)], size});
          phase.transfers.push_back({ranks[static_cast<std::size_t>(i + half)], ranks[static_cast<std::size_t>(i)], size});
        }
      }
      plan.phases.push_back(std::move(phase));
      break;
    }
  }
  return plan;
}

double ideal_plan_time(const CollectivePlan& plan, double bandwidth, double latency) {
  double total = 0;
  // Each rank's outgoing and incoming bytes share its one link per direction; phases that stream
  // into the next share the links with it (their bytes add up), their latencies add up.
  std::map<int, double> sent;
  std::map<int, double> received;
  for (std::size_t p = 0; p < plan.phases.size(); ++p) {
    const CollectivePhase& phase = plan.phases[p];
    for (const Transfer& transfer : phase.transfers) {
      sent[transfer.source] += phase.repeat * transfer.bytes;
      received[transfer.destination] += phase.repeat * transfer.bytes;
    }
    total += (phase.repeat + phase.pipeline_hops) * latency;
    if (phase.streams_into_next && p + 1 < plan.phases.size()) continue;
    double busiest = 0;
    for (const auto& [rank, bytes] : sent) busiest = std::max(busiest, bytes);
    for (const auto& [rank, bytes] : received) busiest = std::max(busiest, bytes);
    total += busiest / bandwidth;
    sent.clear();
    received.clear();
  }
  return total;
}

}  // namespace tandem::strategy
