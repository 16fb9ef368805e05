// The platform's shape: routes, bandwidths and latencies between GPUs (sim/topology.hpp), checked
// against the cluster spec by hand.
#include <gtest/gtest.h>

#include <algorithm>

#include "sim/topology.hpp"
#include "strategy/scenario.hpp"

namespace {

using namespace tandem;

strategy::Scenario cluster_scenario(const std::string& cluster_yaml) {
  return strategy::parse_scenario("name: t\ncluster:\n" + cluster_yaml +
                                      "collective: {kind: all-reduce, sizes: [1MiB]}\n",
                                  ".");
}

TEST(Topology, GpusOfOneNodeTalkOverNvlink) {
  const auto s = cluster_scenario(
      "  gpu: a100-80gb\n  nodes: 2\n  gpus_per_node: 8\n"
      "  intra_node: {bandwidth: 300GB/s, latency: 2us}\n");
  const sim::ClusterTopology topology(s.cluster);
  const sim::Route route = topology.route(1, 6);
  ASSERT_EQ(route.link_count, 2);
  EXPECT_EQ(route.links[0], topology.nvlink_up(1));
  EXPECT_EQ(route.links[1], topology.nvlink_down(6));
  EXPECT_DOUBLE_EQ(route.latency_s, 2e-6);
  const sim::TopologyLink link = topology.link(route.links[0]);
  EXPECT_DOUBLE_EQ(link.raw_bandwidth_bytes_per_s, 300e9);
  EXPECT_DOUBLE_EQ(link.bandwidth_bytes_per_s, 300e9 * s.cluster.profile.collective_efficiency);
  EXPECT_DOUBLE_EQ(topology.route_bandwidth(route), 300e9 * s.cluster.profile.collective_efficiency);
}

TEST(Topology, FatTreeLeavesAndOversubscription) {
  const auto s = cluster_scenario(
      "  gpu: a100-80gb\n  nodes: 8\n  gpus_per_node: 8\n"
      "  nic: {count: 4, bandwidth: 200Gbps, latency: 2us}\n"
      "  fabric: {topology: fat-tree, nodes_per_leaf: 4, oversubscription: 2, switch_latency: 0.5us}\n");
  const sim::ClusterTopology topology(s.cluster);
  // GPU i of a node uses NIC i * 4 / 8.
  EXPECT_EQ(topology.rail_of(0), 0);
  EXPECT_EQ(topology.rail_of(3), 1);
  EXPECT_EQ(topology.rail_of(7), 3);
  EXPECT_EQ(topology.nic_of(8 + 5), 4 + 2);
  // Same leaf (nodes 0 and 3): NIC up, NIC down, one switch.
  const sim::Route inside = topology.route(0, 3 * 8);
  ASSERT_EQ(inside.link_count, 2);
  EXPECT_NEAR(inside.latency_s, 2e-6 + 0.5e-6, 1e-15);
  // Across leaves (nodes 0 and 5): NIC up, leaf uplink, leaf downlink, NIC down; three switches.
  const sim::Route across = topology.route(0, 5 * 8);
  ASSERT_EQ(across.link_count, 4);
  EXPECT_EQ(across.links[1], topology.fabric_up(0));
  EXPECT_EQ(across.links[2], topology.fabric_down(1));
  EXPECT_NEAR(across.latency_s, 2e-6 + 3 * 0.5e-6, 1e-15);
  // A leaf's uplink: its 4 nodes x 4 NICs x 25 GB/s over oversubscription 2.
  EXPECT_DOUBLE_EQ(topology.link(topology.fabric_up(0)).raw_bandwidth_bytes_per_s, 4 * 4 * 25e9 / 2);
  EXPECT_DOUBLE_EQ(topology.link(across.links[0]).raw_bandwidth_bytes_per_s, 25e9);
  EXPECT_DOUBLE_EQ(topology.route_bandwidth(across), 25e9 * topology.nic_efficiency(0));
}

TEST(Topology, RailOptimizedKeepsARailOnItsSwitch) {
  const auto s = cluster_scenario(
      "  gpu: h100-80gb\n  nodes: 4\n  gpus_per_node: 8\n"
      "  fabric: {topology: rail-optimized, nodes_per_leaf: 2, switch_latency: 1us}\n");
  const sim::ClusterTopology topology(s.cluster);
  // Same rail, same unit: one hop, NICs only.
  EXPECT_EQ(topology.route(2, 8 + 2).link_count, 2);
  // Different rails in a unit, or another unit: through the rail switches' uplinks.
  const sim::Route cross_rail = topology.route(2, 8 + 3);
  ASSERT_EQ(cross_rail.link_count, 4);
  EXPECT_EQ(cross_rail.links[1], topology.fabric_up(0, 2));
  EXPECT_EQ(cross_rail.links[2], topology.fabric_down(0, 3));
  const sim::Route cross_unit = topology.route(2, 2 * 8 + 2);
  EXPECT_EQ(cross_unit.links[1], topology.fabric_up(0, 2));
  EXPECT_EQ(cross_unit.links[2], topology.fabric_down(1, 2));
}

TEST(Topology, StarHasOnlyNics) {
  const auto s = cluster_scenario("  gpu: h100-80gb\n  nodes: 3\n  gpus_per_node: 2\n  fabric: {topology: star}\n");
  const sim::ClusterTopology topology(s.cluster);
  EXPECT_EQ(topology.route(0, 5).link_count, 2);
  EXPECT_EQ(topology.route(4, 4).links[0], topology.loopback_link());
}

TEST(Topology, NodeGroupsHaveTheirOwnNics) {
  const auto s = cluster_scenario(
      "  gpu: a100-80gb\n  nodes: 4\n  gpus_per_node: 8\n  nic: {count: 8, bandwidth: 200Gbps}\n"
      "  node_groups:\n    - {nodes: 2}\n    - {nodes: 2, nic: {count: 2, bandwidth: 100Gbps}}\n");
  const sim::ClusterTopology topology(s.cluster);
  EXPECT_EQ(topology.nic_count(0), 8);
  EXPECT_EQ(topology.nic_count(3), 2);
  EXPECT_EQ(topology.rail_of(3 * 8 + 5), 1);
  EXPECT_DOUBLE_EQ(topology.link(topology.nic_up(topology.nic_of(3 * 8))).raw_bandwidth_bytes_per_s, 12.5e9);
  EXPECT_DOUBLE_EQ(topology.link(topology.nic_up(topology.nic_of(0))).raw_bandwidth_bytes_per_s, 25e9);
}

TEST(Topology, SitesAreJoinedByTheirWanLinks) {
  // Two sites of 3 and 2 nodes (4 nodes per leaf: the first site's leaf holds 3 nodes, leaves
  // are counted within each site), 10 Gb/s and 30 ms between them.
  const auto s = cluster_scenario(
      "  gpu: a100-80gb\n  nodes: 5\n  gpus_per_node: 8\n  nic: {count: 8, bandwidth: 200Gbps, latency: 2us}\n"
      "  fabric: {topology: fat-tree, nodes_per_leaf: 4, switch_latency: 0.5us}\n"
      "  sites: [{name: east, nodes: 3}, {name: west, nodes: 2}]\n  wan: {bandwidth: 10Gbps, latency: 30ms}\n");
  const sim::ClusterTopology topology(s.cluster);
  ASSERT_EQ(topology.sites(), 2);
  EXPECT_TRUE(topology.has_wan());
  EXPECT_EQ(topology.site_of(2), 0);
  EXPECT_EQ(topology.site_of(3), 1);
  EXPECT_EQ(topology.leaves(), 2);
  EXPECT_EQ(topology.leaf_of(2), 0);
  EXPECT_EQ(topology.leaf_of(3), 1);
  // Inside a site: NIC -> NIC through one leaf.
  const sim::Route inside = topology.route(0, 2 * 8);
  EXPECT_EQ(inside.link_count, 2);
  EXPECT_DOUBLE_EQ(inside.latency_s, 2e-6 + 0.5e-6);
  // Across: NIC up, leaf up, WAN up (east), WAN down (west), leaf down, NIC down.
  const sim::Route across = topology.route(8 + 3, 4 * 8 + 3);
  ASSERT_EQ(across.link_count, 6);
  EXPECT_EQ(across.links[0], topology.nic_up(topology.nic_of(8 + 3)));
  EXPECT_EQ(across.links[1], topology.fabric_up(0));
  EXPECT_EQ(across.links[2], topology.wan_up(0));
  EXPECT_EQ(across.links[3], topology.wan_down(1));
  EXPECT_EQ(across.links[4], topology.fabric_down(1));
  EXPECT_EQ(across.links[5], topology.nic_down(topology.nic_of(4 * 8 + 3)));
  EXPECT_DOUBLE_EQ(across.latency_s, 2e-6 + 4 * 0.5e-6 + 0.03);
  EXPECT_TRUE(topology.is_wan_link(topology.wan_up(0)));
  EXPECT_FALSE(topology.is_wan_link(topology.fabric_up(1)));
  const sim::TopologyLink wan = topology.link(topology.wan_down(1));
  EXPECT_EQ(wan.kind, sim::LinkKind::WanDown);
  EXPECT_DOUBLE_EQ(wan.bandwidth_bytes_per_s, 10e9 / 8);  // as given, no efficiency factor
  EXPECT_DOUBLE_EQ(topology.route_bandwidth(across), 10e9 / 8);
  // The first site's leaf has its 3 nodes' NICs behind its uplink.
  EXPECT_DOUBLE_EQ(topology.link(topology.fabric_up(0)).raw_bandwidth_bytes_per_s, 3 * 8 * 25e9);
  EXPECT_DOUBLE_EQ(topology.link(topology.fabric_up(1)).raw_bandwidth_bytes_per_s, 2 * 8 * 25e9);
  std::vector<int> links;
  topology.links_of_gpu(0, links);
  EXPECT_NE(std::find(links.begin(), links.end(), topology.wan_up(0)), links.end());
  EXPECT_NE(std::find(links.begin(), links.end(), topology.wan_down(0)), links.end());
  // A star: NIC, WAN, WAN, NIC; one switch per site.
  const auto star = cluster_scenario(
      "  gpu: a100-80gb\n  nodes: 2\n  gpus_per_node: 1\n  nic: {count: 1, bandwidth: 100Gbps, latency: 1us}\n"
      "  fabric: {topology: star, switch_latency: 1us}\n"
      "  sites: [{nodes: 1}, {nodes: 1}]\n  wan: {bandwidth: 1Gbps, latency: 10ms}\n");
  const sim::ClusterTopology star_topology(star.cluster);
  const sim::Route star_route = star_topology.route(1, 0);
  ASSERT_EQ(star_route.link_count, 4);
  EXPECT_EQ(star_route.links[1], star_topology.wan_up(1));
  EXPECT_EQ(star_route.links[2], star_topology.wan_down(0));
  EXPECT_DOUBLE_EQ(star_route.latency_s, 1e-6 + 2 * 1e-6 + 0.01);
}

}  // namespace
