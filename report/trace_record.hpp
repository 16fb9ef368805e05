#pragma once
// One executed operation, as both the twin and the engine record it (DESIGN.md): a real run and
// its simulation write the same record, so they can be laid side by side op by op.

#include <cstdint>
#include <string>
#include <vector>

#include "strategy/program.hpp"

namespace tandem::report {

struct TraceRecord {
  int rank = 0;
  int rank_class = 0;
  strategy::Stream stream = strategy::Stream::Compute;
  std::uint32_t op_id = 0;  // index in the rank class's program (stable across twin and engine)
  strategy::OpCode code = strategy::OpCode::StepBegin;
  strategy::Phase phase = strategy::Phase::None;
  std::int32_t layer = -1;
  std::int32_t micro_batch = -1;
  double bytes = 0;
  double flops = 0;
  double start_s = 0;  // seconds from the start of the step (twin) or of the run (engine)
  double end_s = 0;
};

// A trace of one step (twin) or of a run (engine), with the run it belongs to.
struct Trace {
  std::string run_id;
  std::vector<TraceRecord> records;
};

// Fills the descriptive fields (code, stream, phase, layer, micro-batch, bytes, FLOPs) of a
// record from the program op it executes.
TraceRecord record_for(const strategy::Op& op, int rank, int rank_class, double start_s,
                       double end_s);

}  // namespace tandem::report
