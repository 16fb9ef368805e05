#include "sim/platform.hpp"

#include <algorithm>
#include <string>
#include <unordered_map>

#include <simgrid/kernel/routing/NetPoint.hpp>
#include <simgrid/kernel/routing/NetZoneImpl.hpp>
#include <xbt/log.h>

namespace tandem::sim {

namespace s4u = simgrid::s4u;
namespace routing = simgrid::kernel::routing;
namespace resource = simgrid::kernel::resource;

std::unique_ptr<s4u::Engine> configure_simgrid(bool verbose) {
  static std::vector<std::string> arguments{"tandem-twin"};
  static std::vector<char*> argv;
  argv.clear();
  for (auto& argument : arguments) argv.push_back(argument.data());
  int argc = static_cast<int>(argv.size());
  xbt_log_control_set(verbose ? "root.thresh:warning" : "root.thresh:critical");
  auto engine = std::make_unique<s4u::Engine>(&argc, argv.data());
  s4u::Engine::set_config("network/model:CM02");
  s4u::Engine::set_config("network/TCP-gamma:0");
  s4u::Engine::set_config("network/crosstraffic:0");
  s4u::Engine::set_config("contexts/stack-size:512");
  return engine;
}

// One zone holding every materialised GPU; routes come from the topology.
class SimPlatform::Zone : public routing::NetZoneImpl {
 public:
  Zone(const ClusterTopology& topology) : NetZoneImpl("cluster"), topology_(topology) {}

  void get_local_route(const routing::NetPoint* source, const routing::NetPoint* destination,
                       routing::Route* route, double* latency) override {
    const int a = gpu_of(source->id());
    const int b = gpu_of(destination->id());
    if (a < 0 || b < 0 || a == b) {
      route->link_list_.push_back(links_[static_cast<std::size_t>(topology_.loopback_link())]);
      return;
    }
    const Route r = topology_.route(a, b);
    for (int i = 0; i < r.link_count; ++i) route->link_list_.push_back(links_[static_cast<std::size_t>(r.links[i])]);
    if (latency != nullptr) *latency += r.latency_s;
  }

  int gpu_of(unsigned long vertex) const {
    return vertex < gpu_of_vertex_.size() ? gpu_of_vertex_[vertex] : -1;
  }

  const ClusterTopology& topology_;
  std::vector<int> gpu_of_vertex_;
  std::vector<resource::StandardLinkImpl*> links_;  // by topology link id (nullptr: absent)
  std::vector<s4u::Link*> link_interfaces_;
  std::unordered_map<int, s4u::Host*> hosts_;
};

SimPlatform::SimPlatform(const ClusterTopology& topology, std::vector<int> gpus) : topology_(topology) {
  std::sort(gpus.begin(), gpus.end());
  gpus.erase(std::unique(gpus.begin(), gpus.end()), gpus.end());
  zone_ = new Zone(topology);
  s4u::NetZone* zone = zone_->get_iface();
  zone_->links_.assign(topology.link_count(), nullptr);
  zone_->link_interfaces_.assign(topology.link_count(), nullptr);

  auto add_host = [&](const std::string& name, double speed, int gpu) {
    s4u::Host* host = zone->create_host(name, speed);
    const unsigned long vertex = host->get_netpoint()->id();
    if (zone_->gpu_of_vertex_.size() <= vertex) zone_->gpu_of_vertex_.resize(vertex + 1, -1);
    zone_->gpu_of_vertex_[vertex] = gpu;
    return host;
  };
  control_ = add_host("control", 1e9, -1);
  clock_ = add_host("clock", kClockSpeed, -1);
  clock_->set_core_count(1000000);
  for (int gpu : gpus) {
    zone_->hosts_[gpu] = add_host("gpu" + std::to_string(gpu), 1e9, gpu);
    ++gpu_count_;
  }

  auto add_link = [&](int id) {
    if (zone_->links_[static_cast<std::size_t>(id)] != nullptr) return;
    const TopologyLink spec = topology.link(id);
    s4u::Link* link = zone->create_link(spec.name(), spec.bandwidth_bytes_per_s);
    link->set_latency(0);  // route latencies (links + switch hops) come from the topology
    if (spec.kind == LinkKind::Loopback) link->set_sharing_policy(s4u::Link::SharingPolicy::FATPIPE);
    link->seal();
    zone_->links_[static_cast<std::size_t>(id)] = link->get_impl();
    zone_->link_interfaces_[static_cast<std::size_t>(id)] = link;
    ++link_count_;
  };
  add_link(topology.loopback_link());
  std::vector<int> ids;
  for (int gpu : gpus) {
    ids.clear();
    topology.links_of_gpu(gpu, ids);
    for (int id : ids) add_link(id);
  }
  zone->seal();
}

SimPlatform::~SimPlatform() = default;

s4u::Host* SimPlatform::host(int gpu) const {
  auto it = zone_->hosts_.find(gpu);
  return it == zone_->hosts_.end() ? nullptr : it->second;
}

s4u::Link* SimPlatform::link(int id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= zone_->link_interfaces_.size()) return nullptr;
  return zone_->link_interfaces_[static_cast<std::size_t>(id)];
}

}  // namespace tandem::sim
