#pragma once
// Recording simulations in the run store the same way from simrun and tandem-studio.

#include <string>
#include <vector>

#include "report/run_store.hpp"
#include "sim/simulation.hpp"

namespace tandem::sim {

// The indexed headline numbers of a result (step time, throughput, MFU, memory, GPUs).
report::Headline headline_of(const SimulationResult& result);

struct RecordedSweep {
  std::string parent;               // the 'sweep' run
  std::vector<std::string> points;  // one 'simulation' run per point, in order
};
// A sweep parent run with one child per point (infeasible-but-simulated points are finished
// with their result; invalid points are recorded as failed with their reason).
RecordedSweep record_sweep(report::RunStore& store, const strategy::Scenario& base,
                           const std::vector<SweepResult>& results);

}  // namespace tandem::sim
