#include "strategy/pipeline_schedule.hpp"

#include <algorithm>
#include <cassert>

namespace tandem::strategy {
namespace {

// Megatron's mapping of the k-th forward (or backward) of a stage to (micro-batch, chunk) in the
// interleaved schedule: micro-batches advance in groups of `stages` through the chunks.
PipelineStep interleaved_step(int k, bool forward, int stages, int virtual_stages) {
  const int group = stages * virtual_stages;
  const int in_group = k % group;
  int chunk = in_group / stages;
  if (!forward) chunk = virtual_stages - 1 - chunk;
  const int micro_batch = (k / group) * stages + in_group % stages;
  return {forward, micro_batch, chunk};
}

}  // namespace

int global_chunk(int stage, int chunk, int stages) { return chunk * stages + stage; }

std::vector<PipelineStep> pipeline_schedule(Schedule schedule, int stages, int stage,
                                            int micro_batches, int virtual_stages) {
  assert(stage >= 0 && stage < stages && micro_batches > 0);
  std::vector<PipelineStep> steps;
  const int m = micro_batches;
  if (schedule == Schedule::GPipe) {
    for (int mb = 0; mb < m; ++mb) steps.push_back({true, mb, 0});
    for (int mb = 0; mb < m; ++mb) steps.push_back({false, mb, 0});
    return steps;
  }
  if (schedule == Schedule::OneFOneB || virtual_stages == 1) {
    const int warmup = std::min(stages - stage - 1, m);
    int next_forward = 0;
    int next_backward = 0;
    for (int i = 0; i < warmup; ++i) steps.push_back({true, next_forward++, 0});
    while (next_forward < m) {
      steps.push_back({true, next_forward++, 0});
      steps.push_back({false, next_backward++, 0});
    }
    while (next_backward < m) steps.push_back({false, next_backward++, 0});
    return steps;
  }
  // Interleaved 1F1B.
  const int total = m * virtual_stages;
  int warmup = (stages - stage - 1) * 2 + (virtual_stages - 1) * stages;
  warmup = std::min(warmup, total);
  int next_forward = 0;
  int next_backward = 0;
  for (int i = 0; i < warmup; ++i)
    steps.push_back(interleaved_step(next_forward++, true, stages, virtual_stages));
  while (next_forward < total) {
    steps.push_back(interleaved_step(next_forward++, true, stages, virtual_stages));
    steps.push_back(interleaved_step(next_backward++, false, stages, virtual_stages));
  }
  while (next_backward < total)
    steps.push_back(interleaved_step(next_backward++, false, stages, virtual_stages));
  return steps;
}

int peak_in_flight(const std::vector<PipelineStep>& steps) {
  int in_flight = 0;
  int peak = 0;
  for (const PipelineStep& step : steps) {
    in_flight += step.forward ? 1 : -1;
    peak = std::max(peak, in_flight);
  }
  return peak;
}

}  // namespace tandem::strategy
