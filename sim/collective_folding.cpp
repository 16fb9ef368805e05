#include "sim/collective_folding.hpp"

#include <algorithm>
#include <limits>
#include <cmath>
#include <cstring>
#include <map>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

namespace tandem::sim {
namespace {

using strategy::Transfer;

std::uint64_t bits_of(double value) {
  std::uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

void append_folding(FoldedPhase& phase, const char* what, bool exact) {
  if (!phase.folding.empty()) phase.folding += "+";
  phase.folding += what;
  phase.exact = phase.exact && exact;
}

// Rule 1: one node per distinct intra-node pattern.
std::vector<Transfer> fold_intra_node(const ClusterTopology& topology, const std::vector<Transfer>& intra,
                                      int preferred_node, bool& folded) {
  using Key = std::vector<std::tuple<int, int, std::uint64_t>>;
  std::unordered_map<int, std::vector<const Transfer*>> by_node;
  std::vector<int> node_order;
  for (const Transfer& transfer : intra) {
    const int node = topology.node_of(transfer.source);
    auto [it, inserted] = by_node.try_emplace(node);
    if (inserted) node_order.push_back(node);
    it->second.push_back(&transfer);
  }
  if (preferred_node >= 0) {
    auto it = std::find(node_order.begin(), node_order.end(), preferred_node);
    if (it != node_order.end()) std::rotate(node_order.begin(), it, it + 1);
  }
  std::map<std::pair<int, Key>, int> seen;
  std::vector<Transfer> kept;
  for (int node : node_order) {
    const auto& transfers = by_node[node];
    Key key;
    key.reserve(transfers.size());
    for (const Transfer* t : transfers)
      key.emplace_back(topology.local_index(t->source), topology.local_index(t->destination), bits_of(t->bytes));
    std::sort(key.begin(), key.end());
    if (seen.emplace(std::make_pair(topology.node_group_of(node), std::move(key)), node).second) {
      for (const Transfer* t : transfers) kept.push_back(*t);
    }
  }
  folded = kept.size() < intra.size();
  return kept;
}

// Rule 2: a window of leaves of a shift-invariant pattern. Returns false when it does not apply.
bool fold_translation(const ClusterTopology& topology, const std::vector<Transfer>& inter,
                      std::vector<Transfer>& kept, bool& exact) {
  if (inter.empty()) return false;
  const int per_leaf = topology.nodes_per_leaf();
  const int gpn = topology.gpus_per_node();
  int first = topology.nodes();
  int last = -1;
  for (const Transfer& t : inter) {
    first = std::min({first, topology.node_of(t.source), topology.node_of(t.destination)});
    last = std::max({last, topology.node_of(t.source), topology.node_of(t.destination)});
  }
  const int span = last - first + 1;
  const int site = topology.site_of(first);
  if ((first - topology.site_first_node(site)) % per_leaf != 0 || span < 3 * per_leaf) return false;
  const int group = topology.node_group_of(first);
  for (int node = first; node <= last; ++node)
    if (topology.node_group_of(node) != group || topology.site_of(node) != site) return false;
  // Signed cyclic shift from source node to destination node, in (-span/2, span/2].
  auto shift_of = [&](const Transfer& t) {
    int delta = topology.node_of(t.destination) - topology.node_of(t.source);
    delta = ((delta % span) + span) % span;
    if (delta > span / 2) delta -= span;
    return delta;
  };
  struct KeyHash {
    std::size_t operator()(const std::tuple<int, int, int, int, std::uint64_t>& k) const {
      auto [a, b, c, d, e] = k;
      std::size_t h = static_cast<std::size_t>(a) * 1000003u ^ static_cast<std::size_t>(b) * 10007u ^
                      static_cast<std::size_t>(c + 1000000) * 101u ^ static_cast<std::size_t>(d) ^
                      static_cast<std::size_t>(e * 0x9E3779B97F4A7C15ull);
      return h;
    }
  };
  std::unordered_set<std::tuple<int, int, int, int, std::uint64_t>, KeyHash> present;
  present.reserve(inter.size() * 2);
  int reach = 0;
  for (const Transfer& t : inter) {
    const int delta = shift_of(t);
    reach = std::max(reach, std::abs(delta));
    present.emplace(topology.node_of(t.source) - first, topology.local_index(t.source), delta,
                    topology.local_index(t.destination), bits_of(t.bytes));
  }
  for (const Transfer& t : inter) {
    const int shifted = (topology.node_of(t.source) - first + per_leaf) % span;
    if (!present.contains({shifted, topology.local_index(t.source), shift_of(t),
                           topology.local_index(t.destination), bits_of(t.bytes)}))
      return false;
  }
  int window_leaves = 2;
  while (window_leaves * per_leaf < 2 * reach + per_leaf) ++window_leaves;
  const int window = window_leaves * per_leaf;
  if (window >= span) return false;
  kept.clear();
  for (const Transfer& t : inter) {
    const int offset = topology.node_of(t.source) - first;
    if (offset >= window) continue;
    const int destination_offset = ((offset + shift_of(t)) % window + window) % window;
    Transfer folded = t;
    folded.destination = (first + destination_offset) * gpn + topology.local_index(t.destination);
    kept.push_back(folded);
  }
  exact = span % per_leaf == 0;
  return true;
}

// Rule 3: the transfers among the first K nodes in plan order.
std::vector<Transfer> sample_nodes(const ClusterTopology& topology, const std::vector<Transfer>& inter,
                                   std::size_t budget) {
  std::unordered_map<int, int> order;
  auto order_of = [&](int node) {
    auto [it, inserted] = order.try_emplace(node, static_cast<int>(order.size()));
    return it->second;
  };
  std::vector<int> rank_max(inter.size());
  for (std::size_t i = 0; i < inter.size(); ++i) {
    const int a = order_of(topology.node_of(inter[i].source));
    const int b = order_of(topology.node_of(inter[i].destination));
    rank_max[i] = std::max(a, b);
  }
  std::vector<int> sorted = rank_max;
  std::sort(sorted.begin(), sorted.end());
  // Largest K with count(rank_max < K) <= budget.
  int k = budget < sorted.size() ? sorted[budget] : static_cast<int>(order.size());
  const int per_leaf = topology.nodes_per_leaf();
  if (k >= per_leaf) k = k / per_leaf * per_leaf;
  k = std::max(k, 2);
  std::vector<Transfer> kept;
  for (std::size_t i = 0; i < inter.size(); ++i)
    if (rank_max[i] < k) kept.push_back(inter[i]);
  return kept;
}

}  // namespace

double tree_bandwidth_scale(int nodes) {
  // NCCL's perChMaxTreeBws for Ampere (src/graph/tuning.cc, unchanged from 2.12 through 2.28):
  // 24.0 / 23.6 / 17.8 GB/s per channel on 1 / 2 / 3+ nodes, relative to the 3+ node value
  // node.tree_bandwidth states.
  if (nodes <= 1) return 24.0 / 17.8;
  if (nodes == 2) return 23.6 / 17.8;
  return 1.0;
}

namespace {

// The most loaded link's time for one run of the phase's transfers (repeat 1).
double busiest_link_time(const ClusterTopology& topology, const FoldedPhase& phase) {
  std::unordered_map<int, double> load;
  for (const Transfer& t : phase.transfers) {
    const Route route = topology.route(t.source, t.destination);
    for (int i = 0; i < route.link_count; ++i) load[route.links[i]] += t.bytes;
  }
  double busiest = 0;
  for (const auto& [link, bytes] : load) busiest = std::max(busiest, bytes / topology.link(link).bandwidth_bytes_per_s);
  return busiest;
}

// node.p2p_bandwidth: a send/recv phase lasts at least its largest stream between two nodes over
// the cap (the slower end's profile), when its busiest link would finish sooner.
void apply_p2p_cap(const ClusterTopology& topology, FoldedPlan& plan) {
  for (FoldedPhase& phase : plan.phases) {
    if (!phase.point_to_point) continue;
    double longest = 0;
    for (const Transfer& t : phase.transfers) {
      if (topology.node_of(t.source) == topology.node_of(t.destination)) continue;
      const double cap = std::min(p2p_cap_of(topology, t.source), p2p_cap_of(topology, t.destination));
      if (cap > 0) longest = std::max(longest, phase.repeat * t.bytes / cap);
    }
    if (longest > 0) phase.p2p_cap_wait_s = std::max(0.0, longest - phase.repeat * busiest_link_time(topology, phase));
  }
}

}  // namespace

double p2p_cap_of(const ClusterTopology& topology, int gpu) {
  const double cap = topology.group(topology.node_of(gpu)).profile.p2p_bandwidth_bytes_per_s;
  return cap > 0 ? cap : std::numeric_limits<double>::infinity();
}

std::string FoldedPlan::description() const {
  std::string text;
  for (std::size_t i = 0; i < phases.size(); ++i) {
    const FoldedPhase& phase = phases[i];
    if (!text.empty()) text += "; ";
    text += "phase " + std::to_string(i + 1) + ": " + std::to_string(phase.original_transfers) + " -> " +
            std::to_string(phase.transfers.size()) + " transfers";
    if (!phase.folding.empty()) text += " (" + phase.folding + (phase.exact ? ", exact)" : ", approximate)");
  }
  return text;
}

FoldedPlan fold_plans(const ClusterTopology& topology, const std::vector<strategy::CollectivePlan>& plans,
                      const FoldOptions& options) {
  FoldedPlan folded;
  std::size_t phase_count = 0;
  for (const auto& plan : plans) phase_count = std::max(phase_count, plan.phases.size());
  for (std::size_t p = 0; p < phase_count; ++p) {
    FoldedPhase phase;
    std::vector<Transfer> intra;
    std::vector<Transfer> inter;
    double latency_sum = 0;
    std::size_t latency_count = 0;
    for (const auto& plan : plans) {
      if (p >= plan.phases.size()) continue;
      const auto& source = plan.phases[p];
      phase.repeat = std::max(phase.repeat, source.repeat);
      phase.point_to_point = phase.point_to_point || plan.kind == strategy::CollectiveKind::SendRecv;
      phase.pipeline_hops = std::max(phase.pipeline_hops, source.pipeline_hops);
      phase.reduce_bytes_per_rank = std::max(phase.reduce_bytes_per_rank, source.reduce_bytes_per_rank);
      phase.tree_bus_bytes_per_rank = std::max(phase.tree_bus_bytes_per_rank, source.tree_bus_bytes_per_rank);
      if (source.tree_bus_bytes_per_rank > 0) {
        std::unordered_set<int> nodes;
        for (const Transfer& t : source.transfers) nodes.insert(topology.node_of(t.source));
        phase.tree_nodes = std::max(phase.tree_nodes, static_cast<int>(nodes.size()));
      }
      for (Transfer t : source.transfers) {
        const double latency = topology.route(t.source, t.destination).latency_s;
        phase.max_latency_s = std::max(phase.max_latency_s, latency);
        latency_sum += latency;
        ++latency_count;
        // The kind's own pace (node.collective_cost_scale): its transfers carry that many times
        // their bytes over the links.
        t.bytes *= topology.group(topology.node_of(t.source)).profile.collective_cost_scale.of(plan.kind);
        (topology.node_of(t.source) == topology.node_of(t.destination) ? intra : inter).push_back(t);
      }
    }
    phase.original_transfers = intra.size() + inter.size();
    phase.step_latency_s = latency_count > 0 ? latency_sum / static_cast<double>(latency_count) : 0;
    if (p == 0) {
      // The collective's fixed latency: the largest of the node groups it touches.
      for (const Transfer& t : intra) phase.fixed_latency_s = std::max(phase.fixed_latency_s, topology.group(topology.node_of(t.source)).profile.collective_latency_s);
      for (const Transfer& t : inter) phase.fixed_latency_s = std::max(phase.fixed_latency_s, topology.group(topology.node_of(t.source)).profile.collective_latency_s);
    }
    if (options.fold) {
      bool intra_folded = false;
      intra = fold_intra_node(topology, intra, options.preferred_node, intra_folded);
      if (intra_folded) append_folding(phase, "intra-node", true);
      if (inter.size() > options.flow_budget) {
        std::vector<Transfer> window;
        bool exact = true;
        if (fold_translation(topology, inter, window, exact)) {
          inter = std::move(window);
          append_folding(phase, "translation", exact);
        }
      }
      // Sampling keeps the first nodes in plan order, which would drop WAN crossings: patterns
      // that cross sites are simulated whole.
      const bool crosses_sites = std::any_of(inter.begin(), inter.end(), [&](const Transfer& t) {
        return topology.site_of(topology.node_of(t.source)) != topology.site_of(topology.node_of(t.destination));
      });
      if (inter.size() > options.flow_budget && !crosses_sites) {
        inter = sample_nodes(topology, inter, options.flow_budget);
        append_folding(phase, "sampled", false);
      }
    }
    phase.transfers = std::move(intra);
    phase.transfers.insert(phase.transfers.end(), inter.begin(), inter.end());
    folded.exact = folded.exact && phase.exact;
    folded.phases.push_back(std::move(phase));
  }
  apply_p2p_cap(topology, folded);
  // Merge each run of streaming phases into one (NCCL's pipelined tree).
  std::vector<bool> streams(phase_count, false);
  for (const auto& plan : plans)
    for (std::size_t p = 0; p + 1 < plan.phases.size(); ++p)
      if (plan.phases[p].streams_into_next) streams[p] = true;
  if (std::none_of(streams.begin(), streams.end(), [](bool s) { return s; })) return folded;
  std::vector<FoldedPhase> merged;
  for (std::size_t p = 0; p < phase_count; ++p) {
    FoldedPhase& phase = folded.phases[p];
    const bool continues = p > 0 && streams[p - 1];
    if (!continues && !streams[p]) {
      merged.push_back(std::move(phase));
      continue;
    }
    // The latency this phase pays on its own: its flows' route latency, then its tail.
    const double own_latency = phase.max_latency_s + phase.tail_latency_s() - phase.fixed_latency_s;
    for (Transfer& t : phase.transfers) t.bytes *= phase.repeat;
    phase.reduce_bytes_per_rank *= phase.repeat;
    phase.repeat = 1;
    phase.pipeline_hops = 0;
    phase.step_latency_s = phase.max_latency_s;
    if (!continues) {
      phase.streamed_latency_s = own_latency - phase.max_latency_s;
      merged.push_back(std::move(phase));
      continue;
    }
    FoldedPhase& run = merged.back();
    const double run_latency = run.max_latency_s + run.streamed_latency_s + own_latency;
    run.transfers.insert(run.transfers.end(), phase.transfers.begin(), phase.transfers.end());
    run.reduce_bytes_per_rank += phase.reduce_bytes_per_rank;
    run.max_latency_s = std::max(run.max_latency_s, phase.max_latency_s);
    run.step_latency_s = run.max_latency_s;
    run.streamed_latency_s = run_latency - run.max_latency_s;
    run.fixed_latency_s += phase.fixed_latency_s;
    run.original_transfers += phase.original_transfers;
    if (!phase.folding.empty()) append_folding(run, phase.folding.c_str(), phase.exact);
    run.exact = run.exact && phase.exact;
    ++run.merged_phases;
  }
  folded.phases = std::move(merged);
  // NCCL's tree bandwidth cap: a tree run takes at least its bus bytes over node.tree_bandwidth.
  // With a low-latency protocol in the profile the run is priced both ways (that protocol's cap,
  // less fixed latency) and takes the faster, as NCCL's tuner picks a protocol per call.
  for (FoldedPhase& phase : folded.phases) {
    if (phase.tree_bus_bytes_per_rank <= 0 || phase.transfers.empty()) continue;
    double cap = 0, ll_cap = 0, ll_saving = 0;
    for (const Transfer& t : phase.transfers) {
      const strategy::HardwareProfile& profile = topology.group(topology.node_of(t.source)).profile;
      const double bandwidth = profile.tree_bandwidth_bytes_per_s;
      if (bandwidth > 0) cap = cap > 0 ? std::min(cap, bandwidth) : bandwidth;
      const double ll_bandwidth = profile.ll_tree_bandwidth_bytes_per_s;
      if (ll_bandwidth > 0) ll_cap = ll_cap > 0 ? std::min(ll_cap, ll_bandwidth) : ll_bandwidth;
      ll_saving = std::max(ll_saving, profile.ll_latency_saving_s);
    }
    const double links = busiest_link_time(topology, phase);
    const double scale = tree_bandwidth_scale(phase.tree_nodes);
    if (cap > 0) phase.tree_cap_wait_s = std::max(0.0, phase.tree_bus_bytes_per_rank / (cap * scale) - links);
    if (ll_cap > 0) {
      const double ll_wait = std::max(0.0, phase.tree_bus_bytes_per_rank / (ll_cap * scale) - links);
      const double saving = std::min(ll_saving, phase.fixed_latency_s);
      if (ll_wait - saving < phase.tree_cap_wait_s) {
        phase.tree_cap_wait_s = ll_wait;
        phase.fixed_latency_s -= saving;
      }
    }
  }
  return folded;
}

double estimate_plan_time(const ClusterTopology& topology, const FoldedPlan& plan) {
  // As the executor times a phase: its transfers and latencies, unless the reduction engine
  // (node.reduction_bandwidth, when set) is slower and sets the pace.
  const double reduction_bandwidth = topology.group(0).profile.reduction_bandwidth_bytes_per_s;
  double total = 0;
  for (const FoldedPhase& phase : plan.phases) {
    const double transfers =
        phase.repeat * busiest_link_time(topology, phase) + phase.max_latency_s + phase.tail_latency_s();
    const double reduction = reduction_bandwidth > 0 && phase.reduce_bytes_per_rank > 0
                                 ? phase.repeat * phase.reduce_bytes_per_rank / reduction_bandwidth
                                 : 0;
    total += std::max(transfers, reduction);
  }
  return total;
}

}  // namespace tandem::sim
