#pragma once
// Memory per GPU for a training scenario: weights, gradients, optimizer state (per optimizer,
// per ZeRO stage), activations (per recompute mode, TP, SP, CP, pipeline depth and
// interleaving), for every pipeline stage; the worst stage decides whether it fits.
//
// Model state follows Rajbhandari et al. (ZeRO): 16-bit weights and gradients (2 bytes each)
// plus K bytes of optimizer state per parameter, where K = 4 (fp32 master weights) + the
// optimizer's own state (8 for Adam: K = 12). fp32 training keeps 4-byte weights and gradients
// and no master copy. ZeRO-1 shards the optimizer state over the data-parallel ranks (dp*cp),
// ZeRO-2 also the gradients, ZeRO-3 also the weights.

#include <vector>

#include "strategy/scenario.hpp"

namespace tandem::strategy {

struct StageMemory {
  int stage = 0;
  double parameters = 0;   // parameters held by one rank of this stage (before ZeRO-3)
  double weights = 0;      // bytes
  double gradients = 0;
  double optimizer = 0;
  double activations = 0;
  int in_flight_micro_batches = 0;  // chunk-micro-batches whose activations are held at peak
  double total() const { return weights + gradients + optimizer + activations; }
};

struct MemoryEstimate {
  std::vector<StageMemory> stages;
  int worst_stage = 0;
  double capacity_bytes = 0;  // of the smallest GPU in the cluster
  bool fits = true;
  const StageMemory& worst() const { return stages.at(static_cast<std::size_t>(worst_stage)); }
};

// The scenario must be a validated training scenario (model + strategy).
MemoryEstimate estimate_memory(const Scenario& scenario);

// ZeRO's closed form (bytes of model state per GPU), for tests and reports:
// baseline (2+2+K)Ψ; stage 1: 4Ψ + KΨ/N; stage 2: 2Ψ + (2+K)Ψ/N; stage 3: (2+2+K)Ψ/N.
double zero_model_state_bytes(double parameters, double optimizer_bytes_per_parameter,
                              int data_parallel, int zero_stage);

}  // namespace tandem::strategy
