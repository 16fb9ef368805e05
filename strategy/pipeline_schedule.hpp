#pragma once
// Pipeline schedules: the order in which one pipeline stage runs the forward and backward
// passes of its micro-batches (and, interleaved, of its model chunks).
//   GPipe (Huang et al. 2019): all forwards, then all backwards.
//   1F1B (Narayanan et al. 2021, PipeDream-Flush): p-s-1 warm-up forwards, then one forward /
//     one backward alternately, then the cool-down backwards.
//   Interleaved 1F1B (Narayanan et al. 2021 §2.2, Megatron-LM's schedule): each stage holds v
//     chunks; micro-batches advance in groups of p through the chunks. Bubble (p-1)/(v·m).

#include <vector>

#include "strategy/scenario.hpp"

namespace tandem::strategy {

struct PipelineStep {
  bool forward = true;
  int micro_batch = 0;
  int chunk = 0;  // model chunk on this stage (0 unless interleaved)
};

// The steps stage `stage` of `stages` runs, in order. m micro-batches, v chunks per stage.
std::vector<PipelineStep> pipeline_schedule(Schedule schedule, int stages, int stage,
                                            int micro_batches, int virtual_stages);

// Chunk c of stage s holds global model chunk c*stages + s (Megatron's interleaving), i.e.
// layers [(c*stages + s) * L/(stages*v), ...).
int global_chunk(int stage, int chunk, int stages);

// Largest number of chunk-micro-batches whose forward has run and whose backward has not, at any
// point of the stage's schedule: what its activation memory must hold.
int peak_in_flight(const std::vector<PipelineStep>& steps);

}  // namespace tandem::strategy
