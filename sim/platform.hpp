#pragma once
// The SimGrid platform of a cluster (sim/topology.hpp describes its shape). Built in C++ as one
// custom netzone whose routes are computed from GPU indices (no route table, so a 100k-GPU
// cluster routes in O(1) per transfer). Only the GPUs a simulation touches — and the links their
// traffic can cross — are materialised: SimGrid spends ~17 us per link, and a folded simulation
// of a 100k-GPU cluster touches a few hundred GPUs.
//
// Besides the GPUs, two helper hosts: `control` (where the executor's actors live; actor-to-actor
// notifications travel over its loopback, which costs no time) and `clock` (a host with a
// million cores on which compute ops and cached collective durations run as timed executions,
// so any number of timers can run side by side without sharing a CPU).
//
// Network model: SimGrid's CM02 (max-min fair bandwidth sharing plus route latency), without
// TCP window limits, cross-traffic or bandwidth/latency correction factors: a flow alone on a
// route of achievable bandwidth B and latency L takes L + bytes/B.
//
// Must be constructed inside a process that runs exactly one SimGrid simulation (a child
// process: SimGrid's global state does not reset), after configure_simgrid().

#include <memory>
#include <vector>

#include <simgrid/s4u.hpp>

#include "sim/topology.hpp"

namespace tandem::sim {

// Creates the engine with Tandem's network model settings and quiet logs. Call once per process.
std::unique_ptr<simgrid::s4u::Engine> configure_simgrid(bool verbose = false);

class SimPlatform {
 public:
  // `gpus`: the GPU indices to materialise (any order; duplicates ignored).
  SimPlatform(const ClusterTopology& topology, std::vector<int> gpus);
  ~SimPlatform();
  SimPlatform(const SimPlatform&) = delete;
  SimPlatform& operator=(const SimPlatform&) = delete;

  simgrid::s4u::Host* host(int gpu) const;  // nullptr when not materialised
  simgrid::s4u::Host* control_host() const { return control_; }
  simgrid::s4u::Host* clock_host() const { return clock_; }
  static constexpr double kClockSpeed = 1e9;  // "flops" per second of the clock host
  simgrid::s4u::Link* link(int id) const;     // nullptr when not materialised
  const ClusterTopology& topology() const { return topology_; }
  std::size_t materialised_links() const { return link_count_; }
  std::size_t materialised_gpus() const { return gpu_count_; }

 private:
  class Zone;
  const ClusterTopology& topology_;
  Zone* zone_ = nullptr;  // owned by SimGrid
  simgrid::s4u::Host* control_ = nullptr;
  simgrid::s4u::Host* clock_ = nullptr;
  std::size_t link_count_ = 0;
  std::size_t gpu_count_ = 0;
};

}  // namespace tandem::sim
