#include "sim/topology.hpp"

#include <algorithm>
#include <cassert>
#include <limits>

namespace tandem::sim {

std::string TopologyLink::name() const {
  switch (kind) {
    case LinkKind::NvlinkUp: return "nvlink-up-gpu" + std::to_string(owner);
    case LinkKind::NvlinkDown: return "nvlink-down-gpu" + std::to_string(owner);
    case LinkKind::NicUp: return "nic-up-" + std::to_string(owner);
    case LinkKind::NicDown: return "nic-down-" + std::to_string(owner);
    case LinkKind::FabricUp: return "fabric-up-" + std::to_string(owner);
    case LinkKind::FabricDown: return "fabric-down-" + std::to_string(owner);
    case LinkKind::Loopback: return "loopback";
    case LinkKind::WanUp: return "wan-up-site" + std::to_string(owner);
    case LinkKind::WanDown: return "wan-down-site" + std::to_string(owner);
  }
  return "link";
}

ClusterTopology::ClusterTopology(const strategy::ClusterSpec& cluster)
    : nodes_(cluster.nodes), gpus_per_node_(cluster.gpus_per_node), fabric_(cluster.fabric),
      node_groups_(cluster.node_groups) {
  if (node_groups_.empty()) node_groups_.push_back({0, nodes_, cluster.profile, cluster.intra_node, cluster.nic});
  if (fabric_.nodes_per_leaf < 1) fabric_.nodes_per_leaf = 1;
  node_group_.assign(static_cast<std::size_t>(nodes_), 0);
  nic_offset_.assign(static_cast<std::size_t>(nodes_) + 1, 0);
  for (int node = 0; node < nodes_; ++node) {
    int group = static_cast<int>(node_groups_.size()) - 1;
    for (std::size_t i = 0; i < node_groups_.size(); ++i) {
      const auto& g = node_groups_[i];
      if (node >= g.first_node && node < g.first_node + g.nodes) {
        group = static_cast<int>(i);
        break;
      }
    }
    node_group_[static_cast<std::size_t>(node)] = group;
    const int count = std::max(1, node_groups_[static_cast<std::size_t>(group)].nic.count);
    max_nics_ = std::max(max_nics_, count);
    nic_offset_[static_cast<std::size_t>(node) + 1] = nic_offset_[static_cast<std::size_t>(node)] + count;
  }
  // Sites in node order (one covering everything without cluster.sites), leaves within sites.
  site_of_node_.assign(static_cast<std::size_t>(nodes_), 0);
  site_first_node_.assign(1, 0);
  for (const strategy::SiteSpec& site : cluster.sites) {
    if (site.nodes <= 0) continue;
    const int index = static_cast<int>(site_first_node_.size()) - 1;
    for (int node = site.first_node; node < std::min(nodes_, site.first_node + site.nodes); ++node)
      site_of_node_[static_cast<std::size_t>(node)] = index;
    site_first_node_.push_back(std::min(nodes_, site.first_node + site.nodes));
  }
  if (site_first_node_.back() != nodes_) site_first_node_.assign({0, nodes_});  // no sites given
  leaf_of_node_.assign(static_cast<std::size_t>(nodes_), 0);
  leaf_first_node_.clear();
  for (int site = 0; site < sites(); ++site) {
    for (int node = site_first_node(site); node < site_first_node_[static_cast<std::size_t>(site) + 1]; ++node) {
      if ((node - site_first_node(site)) % fabric_.nodes_per_leaf == 0) leaf_first_node_.push_back(node);
      leaf_of_node_[static_cast<std::size_t>(node)] = static_cast<int>(leaf_first_node_.size()) - 1;
    }
  }
  leaf_first_node_.push_back(nodes_);
  wan_ = cluster.wan;
  nic_base_ = 2 * gpus();
  fabric_base_ = nic_base_ + 2 * nic_offset_.back();
  int fabric_links = 0;
  if (fabric_.topology != strategy::Topology::Star) fabric_links = 2 * leaves() * max_nics_;
  wan_base_ = fabric_base_ + fabric_links;
  loopback_link_ = wan_base_ + (has_wan() ? 2 * sites() : 0);
}

int ClusterTopology::nic_count(int node) const {
  return nic_offset_[static_cast<std::size_t>(node) + 1] - nic_offset_[static_cast<std::size_t>(node)];
}

int ClusterTopology::rail_of(int gpu) const {
  const int node = node_of(gpu);
  return local_index(gpu) * nic_count(node) / gpus_per_node_;
}

int ClusterTopology::nic_of(int gpu) const {
  return nic_offset_[static_cast<std::size_t>(node_of(gpu))] + rail_of(gpu);
}

double ClusterTopology::nvlink_efficiency(int node) const {
  const auto& profile = group(node).profile;
  return profile.collective_efficiency > 0 ? profile.collective_efficiency : 1.0;
}

double ClusterTopology::nic_efficiency(int node) const {
  const auto& profile = group(node).profile;
  if (profile.nic_efficiency > 0) return profile.nic_efficiency;
  return profile.collective_efficiency > 0 ? profile.collective_efficiency : 1.0;
}

double ClusterTopology::leaf_capacity(int leaf, int rail) const {
  const int first = leaf_first_node_[static_cast<std::size_t>(leaf)];
  const int last = leaf_first_node_[static_cast<std::size_t>(leaf) + 1];
  double total = 0;
  for (int node = first; node < last; ++node) {
    const auto& nic = group(node).nic;
    if (fabric_.topology == strategy::Topology::RailOptimized) {
      if (rail < nic_count(node)) total += nic.bandwidth_bytes_per_s;
    } else {
      total += nic.bandwidth_bytes_per_s * nic_count(node);
    }
  }
  return total / std::max(1.0, fabric_.oversubscription);
}

TopologyLink ClusterTopology::link(int id) const {
  TopologyLink link;
  if (id < nic_base_) {
    const int gpu = id / 2;
    const auto& g = group(node_of(gpu));
    link.kind = id % 2 == 0 ? LinkKind::NvlinkUp : LinkKind::NvlinkDown;
    link.owner = gpu;
    link.raw_bandwidth_bytes_per_s = g.intra_node.bandwidth_bytes_per_s;
    link.bandwidth_bytes_per_s = link.raw_bandwidth_bytes_per_s * nvlink_efficiency(node_of(gpu));
    link.latency_s = g.intra_node.latency_s / 2;
    return link;
  }
  if (id < fabric_base_) {
    const int nic = (id - nic_base_) / 2;
    const auto it = std::upper_bound(nic_offset_.begin(), nic_offset_.end(), nic);
    const int node = static_cast<int>(it - nic_offset_.begin()) - 1;
    const auto& g = group(node);
    link.kind = (id - nic_base_) % 2 == 0 ? LinkKind::NicUp : LinkKind::NicDown;
    link.owner = nic;
    link.raw_bandwidth_bytes_per_s = g.nic.bandwidth_bytes_per_s;
    link.bandwidth_bytes_per_s = link.raw_bandwidth_bytes_per_s * nic_efficiency(node);
    link.latency_s = g.nic.latency_s / 2;
    return link;
  }
  if (id < wan_base_) {
    const int index = (id - fabric_base_) / 2;
    const int leaf = index / max_nics_;
    const int rail = index % max_nics_;
    link.kind = (id - fabric_base_) % 2 == 0 ? LinkKind::FabricUp : LinkKind::FabricDown;
    link.owner = index;
    link.raw_bandwidth_bytes_per_s = leaf_capacity(leaf, rail);
    link.bandwidth_bytes_per_s =
        link.raw_bandwidth_bytes_per_s * nic_efficiency(leaf_first_node_[static_cast<std::size_t>(leaf)]);
    link.latency_s = 0;  // switch hops are added per route
    return link;
  }
  if (id < loopback_link_) {
    link.kind = (id - wan_base_) % 2 == 0 ? LinkKind::WanUp : LinkKind::WanDown;
    link.owner = (id - wan_base_) / 2;
    link.raw_bandwidth_bytes_per_s = link.bandwidth_bytes_per_s = wan_.bandwidth_bytes_per_s;
    link.latency_s = 0;  // the WAN latency is added per route
    return link;
  }
  link.kind = LinkKind::Loopback;
  link.raw_bandwidth_bytes_per_s = link.bandwidth_bytes_per_s = 1e18;
  link.latency_s = 0;
  return link;
}

int ClusterTopology::switch_hops(int source, int destination) const {
  const int a = node_of(source);
  const int b = node_of(destination);
  switch (fabric_.topology) {
    case strategy::Topology::Star: return 1;
    case strategy::Topology::FatTree: return leaf_of(a) == leaf_of(b) ? 1 : 3;
    case strategy::Topology::RailOptimized:
      return (leaf_of(a) == leaf_of(b) && rail_of(source) == rail_of(destination)) ? 1 : 3;
  }
  return 1;
}

Route ClusterTopology::route(int source, int destination) const {
  Route route;
  if (source == destination) {
    route.add(loopback_link_);
    return route;
  }
  const int a = node_of(source);
  const int b = node_of(destination);
  if (a == b) {
    route.add(nvlink_up(source));
    route.add(nvlink_down(destination));
    route.latency_s = group(a).intra_node.latency_s;
    return route;
  }
  route.add(nic_up(nic_of(source)));
  if (site_of(a) != site_of(b)) {
    const bool star = fabric_.topology == strategy::Topology::Star;
    const bool rails = fabric_.topology == strategy::Topology::RailOptimized;
    if (!star) route.add(fabric_up(leaf_of(a), rails ? rail_of(source) : 0));
    route.add(wan_up(site_of(a)));
    route.add(wan_down(site_of(b)));
    if (!star) route.add(fabric_down(leaf_of(b), rails ? rail_of(destination) : 0));
    route.add(nic_down(nic_of(destination)));
    route.latency_s = group(a).nic.latency_s / 2 + group(b).nic.latency_s / 2 +
                      (star ? 2 : 4) * fabric_.switch_latency_s + wan_.latency_s;
    return route;
  }
  const int hops = switch_hops(source, destination);
  if (hops > 1) {
    const bool rails = fabric_.topology == strategy::Topology::RailOptimized;
    route.add(fabric_up(leaf_of(a), rails ? rail_of(source) : 0));
    route.add(fabric_down(leaf_of(b), rails ? rail_of(destination) : 0));
  }
  route.add(nic_down(nic_of(destination)));
  route.latency_s = group(a).nic.latency_s / 2 + group(b).nic.latency_s / 2 + hops * fabric_.switch_latency_s;
  return route;
}

double ClusterTopology::route_bandwidth(const Route& route) const {
  double bandwidth = std::numeric_limits<double>::infinity();
  for (int i = 0; i < route.link_count; ++i) bandwidth = std::min(bandwidth, link(route.links[i]).bandwidth_bytes_per_s);
  return bandwidth;
}

void ClusterTopology::links_of_gpu(int gpu, std::vector<int>& out) const {
  out.push_back(nvlink_up(gpu));
  out.push_back(nvlink_down(gpu));
  out.push_back(nic_up(nic_of(gpu)));
  out.push_back(nic_down(nic_of(gpu)));
  const int node = node_of(gpu);
  if (has_wan()) {
    out.push_back(wan_up(site_of(node)));
    out.push_back(wan_down(site_of(node)));
  }
  if (fabric_.topology == strategy::Topology::Star) return;
  if (fabric_.topology == strategy::Topology::FatTree) {
    out.push_back(fabric_up(leaf_of(node)));
    out.push_back(fabric_down(leaf_of(node)));
  } else {
    out.push_back(fabric_up(leaf_of(node), rail_of(gpu)));
    out.push_back(fabric_down(leaf_of(node), rail_of(gpu)));
  }
}

}  // namespace tandem::sim
