#pragma once
// Human-readable reports of simulation results (what simrun prints without --json).

#include <string>
#include <vector>

#include "sim/simulation.hpp"

namespace tandem::sim {

// One line describing the scenario's cluster and strategy.
std::string scenario_summary(const strategy::Scenario& scenario);
std::string format_memory(const MemorySummary& memory);
std::string format_result(const strategy::Scenario& scenario, const SimulationResult& result);
// Sorted by step time; infeasible points listed after, with their reason.
std::string format_sweep(const std::vector<SweepResult>& results);

}  // namespace tandem::sim
