#pragma once
// Collective what-ifs (a scenario's `collective:` section): one collective over every GPU of the
// cluster, per size and per candidate algorithm, with nccl-tests' conventions — S is the size as
// nccl-tests counts it (strategy/collective_plan.hpp), algbw = S / time, busbw = algbw times the
// bus-bandwidth factor (all-reduce 2(n-1)/n; reduce-scatter, all-gather, all-to-all (n-1)/n;
// broadcast and send-recv 1). `auto` simulates every candidate and keeps the fastest.
//
// Each candidate's phases are folded (sim/collective_folding.hpp) — so a 100k-GPU all-reduce
// simulates one node's NVLink ring, a window of two leaves of each rail's ring and a sampled top
// of each rail's tree — and run one after another on the platform, alone.

#include <string>
#include <vector>

#include "strategy/scenario.hpp"

namespace tandem::sim {

struct CollectiveCandidate {
  strategy::CollectiveAlgorithm algorithm = strategy::CollectiveAlgorithm::Ring;
  double time_s = 0;
  std::size_t flows = 0;       // simulated (after folding), over all phases
  std::size_t transfers = 0;   // of the full plan, over all phases
  bool exact = true;           // folding exact (no sampling)
  std::string folding;         // FoldedPlan::description()
};

struct CollectiveRow {
  double size_bytes = 0;
  strategy::CollectiveAlgorithm algorithm = strategy::CollectiveAlgorithm::Ring;  // the fastest
  double time_s = 0;
  double algbw_bytes_per_s = 0;
  double busbw_bytes_per_s = 0;
  std::vector<CollectiveCandidate> candidates;
};

struct CollectiveOptions {
  bool fold = true;
  std::size_t flow_budget = 2048;
  bool verbose = false;
};

// Runs in the calling process and creates the SimGrid engine: once per process.
std::vector<CollectiveRow> simulate_collective(const strategy::Scenario& scenario, const CollectiveOptions& options);

}  // namespace tandem::sim
