#pragma once
// The cluster's network as the twin sees it, independent of SimGrid: which links exist, their
// bandwidth and latency, and the route between any two GPUs. The SimGrid platform
// (sim/platform.hpp) materialises exactly these links; tests, the collective folder and the
// algorithm tuner read routes from here without starting a simulation.
//
// Shape (per node group where the cluster has several):
//   - every GPU has an NVLink port into its node's NVSwitch: one link up (GPU -> switch) and one
//     down (switch -> GPU), each `intra_node.bandwidth` per direction; the NVSwitch itself is
//     non-blocking (no link of its own), so two GPUs of a node talk over src-up + dst-down;
//   - every node has `nic.count` NICs (up and down links of `nic.bandwidth` each); GPU i of a node
//     uses NIC i*count/gpus_per_node (GPUs reach their NIC over PCIe, not NVLink, so inter-node
//     traffic does not load the NVLink ports);
//   - the fabric joins the NICs:
//       fat-tree        nodes are grouped `nodes_per_leaf` to a leaf switch; a leaf's uplink to the
//                       (non-blocking) spine layer carries the sum of its NICs' bandwidth divided
//                       by `oversubscription`; traffic between two leaves crosses the source
//                       leaf's uplink and the destination leaf's downlink (3 switch hops), traffic
//                       inside a leaf only the NICs (1 hop);
//       rail-optimized  NIC r of the `nodes_per_leaf` nodes of a scalable unit shares rail switch
//                       (unit, r); same rail and unit: 1 hop; anything else crosses that rail
//                       switch's uplink to the spines (capacity its NICs' bandwidth divided by
//                       `oversubscription`) and the destination rail switch's downlink;
//       star            one ideal switch: only the NICs limit (1 hop).
//   - sites (cluster.sites): every site has its own fabric (leaves and rail units are counted
//     within the site) and one WAN uplink and downlink of `wan.bandwidth` each to a WAN core that
//     joins the sites; traffic between sites crosses the source NIC, the source leaf's uplink
//     (not on a star), the source site's WAN uplink, the destination site's WAN downlink, the
//     destination leaf's downlink and the destination NIC, and pays `wan.latency` on top of the
//     NICs and 2 switch hops per site (1 on a star). The WAN carries its bandwidth as given (no
//     efficiency factor: state what a WAN transfer achieves);
//   - each switch hop adds `fabric.switch_latency`; a link's latency is half its endpoint pair's
//     one-way latency, so GPU->GPU over NVLink costs `intra_node.latency` and NIC->NIC costs
//     `nic.latency` plus the switch hops.
//
// Achievable bandwidth: NCCL-style transfers do not reach a link's raw rate; each link carries
// `raw * efficiency` with the efficiency of its kind from the node group's profile
// (`node.collective_efficiency` for NVLink, `node.nic_efficiency` for NICs and the fabric).
//
// Link ids are computed, not stored, so a 100k-GPU topology costs a few vectors of node data.

#include <cstdint>
#include <string>
#include <vector>

#include "strategy/scenario.hpp"

namespace tandem::sim {

enum class LinkKind : std::uint8_t {
  NvlinkUp, NvlinkDown, NicUp, NicDown, FabricUp, FabricDown, Loopback, WanUp, WanDown
};

struct TopologyLink {
  LinkKind kind = LinkKind::Loopback;
  double raw_bandwidth_bytes_per_s = 0;  // as specified
  double bandwidth_bytes_per_s = 0;      // achievable: raw * efficiency of its kind
  double latency_s = 0;
  int owner = 0;  // the GPU (NVLink), global NIC index (NIC), leaf / rail switch (fabric), site (WAN)
  std::string name() const;
};

// At most 6 links: NVLink up/down; or NIC up, fabric up, fabric down, NIC down; or between sites
// NIC up, fabric up, WAN up, WAN down, fabric down, NIC down.
struct Route {
  int links[6] = {0, 0, 0, 0, 0, 0};
  int link_count = 0;
  double latency_s = 0;  // sum of link latencies plus switch hops
  void add(int link) { links[link_count++] = link; }
};

class ClusterTopology {
 public:
  explicit ClusterTopology(const strategy::ClusterSpec& cluster);

  int gpus() const { return nodes_ * gpus_per_node_; }
  int nodes() const { return nodes_; }
  int gpus_per_node() const { return gpus_per_node_; }
  strategy::Topology fabric() const { return fabric_.topology; }
  int nodes_per_leaf() const { return fabric_.nodes_per_leaf; }

  int node_of(int gpu) const { return gpu / gpus_per_node_; }
  int local_index(int gpu) const { return gpu % gpus_per_node_; }
  int node_group_of(int node) const { return node_group_[static_cast<std::size_t>(node)]; }
  int nic_count(int node) const;
  // The NIC (rail) index within its node that GPU `gpu` uses.
  int rail_of(int gpu) const;
  // Global NIC index (unique across the cluster).
  int nic_of(int gpu) const;
  // Fat-tree leaf, or rail-optimized scalable unit, of a node (counted within its site; leaf ids
  // are global).
  int leaf_of(int node) const { return leaf_of_node_[static_cast<std::size_t>(node)]; }
  int leaves() const { return static_cast<int>(leaf_first_node_.size()) - 1; }
  // Sites (cluster.sites; one site without them).
  int sites() const { return static_cast<int>(site_first_node_.size()) - 1; }
  int site_of(int node) const { return site_of_node_[static_cast<std::size_t>(node)]; }
  int site_first_node(int site) const { return site_first_node_[static_cast<std::size_t>(site)]; }
  bool has_wan() const { return sites() > 1; }

  // Links, by id in [0, link_count()).
  std::size_t link_count() const { return static_cast<std::size_t>(loopback_link_) + 1; }
  TopologyLink link(int id) const;
  int loopback_link() const { return loopback_link_; }
  int nvlink_up(int gpu) const { return 2 * gpu; }
  int nvlink_down(int gpu) const { return 2 * gpu + 1; }
  int nic_up(int nic) const { return nic_base_ + 2 * nic; }
  int nic_down(int nic) const { return nic_base_ + 2 * nic + 1; }
  // Fabric uplink/downlink of a leaf (fat-tree) or of rail switch (unit, rail) (rail-optimized).
  int fabric_up(int leaf, int rail = 0) const { return fabric_base_ + 2 * (leaf * max_nics_ + rail); }
  int fabric_down(int leaf, int rail = 0) const { return fabric_up(leaf, rail) + 1; }
  // A site's WAN uplink (site -> WAN core) and downlink (only with two or more sites).
  int wan_up(int site) const { return wan_base_ + 2 * site; }
  int wan_down(int site) const { return wan_base_ + 2 * site + 1; }
  bool is_wan_link(int id) const { return id >= wan_base_ && id < loopback_link_; }

  // The links a transfer from `source` to `destination` GPU crosses, and its latency.
  // source == destination: the loopback link (no cost).
  Route route(int source, int destination) const;
  // The slowest achievable bandwidth on the route (for the algorithm tuner and tests).
  double route_bandwidth(const Route& route) const;
  // Every link a GPU's traffic can touch (to materialise a subset of the platform).
  void links_of_gpu(int gpu, std::vector<int>& out) const;

  const strategy::NodeGroup& group(int node) const {
    return node_groups_[static_cast<std::size_t>(node_group_of(node))];
  }
  double nvlink_efficiency(int node) const;
  double nic_efficiency(int node) const;

 private:
  double leaf_capacity(int leaf, int rail) const;  // raw
  int switch_hops(int source_gpu, int destination_gpu) const;

  int nodes_ = 1;
  int gpus_per_node_ = 1;
  strategy::FabricSpec fabric_;
  std::vector<strategy::NodeGroup> node_groups_;
  std::vector<int> node_group_;        // per node
  std::vector<int> nic_offset_;        // per node + 1: first global NIC index of the node
  std::vector<int> site_of_node_;      // per node
  std::vector<int> site_first_node_;   // per site + 1
  std::vector<int> leaf_of_node_;      // per node
  std::vector<int> leaf_first_node_;   // per leaf + 1
  strategy::LinkParameters wan_;
  int max_nics_ = 1;
  int nic_base_ = 0;
  int fabric_base_ = 0;
  int wan_base_ = 0;
  int loopback_link_ = 0;
};

}  // namespace tandem::sim
