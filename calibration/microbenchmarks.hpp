#pragma once
// The microbenchmarks of `engine profile`: what this machine's kernels and communicator cost,
// measured through exactly the functions the engine calls (kernels/cpu, comm/), recorded so that
// `tandem-calibrate fit` can predict every record with the twin's cost model.
//
// Every compute record is an op of the program IR (strategy/program.hpp): its params_json holds
// the op's compute kind, phase, code and shape (m, n, k, batch), size_bytes and flops are the
// op's bytes and FLOPs as the strategy layer counts them (fp32), and `threads` the kernel threads.
// The fit rebuilds the strategy::Op and asks sim::ComputeCostModel::op_time, so a record and
// the twin's cost of the same op in a training step use one formula.
//
//   matmul grid      matmul_forward / _backward_input / _backward_weight over a grid of shapes
//                    (the GEMM efficiency curve), ops named by phase;
//   program ops      every compute op of the programs of a few small GPT configurations (the
//                    `profile set`: attention, norms, activations, residuals, embedding,
//                    cross-entropy, the optimizer step, and their GEMMs), run with the shapes the
//                    engine gives the kernel for that op;
//   communication    under mpirun: all-reduce, all-gather, reduce-scatter, broadcast over groups
//                    of 2..world ranks and point-to-point send/recv, over message sizes
//                    (params: kind, group_size, world_size; size_bytes = nccl-tests' S).
//
// Timing: one warm-up call, then calls until min_seconds and min_repeats are reached (at most
// max_repeats); time_s is the median, time_min_s / time_max_s the extremes.

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "comm/communicator.hpp"
#include "report/run_store.hpp"
#include "strategy/program.hpp"

namespace tandem::calibration {

struct MicrobenchmarkOptions {
  bool quick = false;               // a small grid (tests, smoke runs): seconds, not minutes
  std::vector<int> threads;         // kernel thread counts (default: 1 and the machine's cores)
  double min_seconds = 0.03;        // per case
  int min_repeats = 3;
  int max_repeats = 200;
  // Bytes written between timed calls so each starts with cold private caches, as ops in a
  // training step do (0 = hot caches).
  std::size_t evict_bytes = 4 << 20;
};

// (done, total, label of the case just measured)
using MicrobenchmarkProgress = std::function<void(std::size_t done, std::size_t total, const std::string& label)>;

// The compute microbenchmarks (this process only; call on one rank).
std::vector<report::Microbenchmark> run_compute_microbenchmarks(const MicrobenchmarkOptions& options,
                                                               const MicrobenchmarkProgress& progress = {});

// The communication microbenchmarks over `world` (every rank calls; results on world rank 0,
// empty elsewhere). Nothing to do on a world of one.
std::vector<report::Microbenchmark> run_communication_microbenchmarks(comm::Communicator& world,
                                                                     const MicrobenchmarkOptions& options,
                                                                     const MicrobenchmarkProgress& progress = {});

// The op a compute record measured (compute kind, phase, code, m, n, k, batch, flops, bytes),
// and the kernel threads; false when the record is not a compute op.
bool op_of_microbenchmark(const report::Microbenchmark& record, strategy::Op& op, int& threads);

// The physical cores of this machine (falls back to the logical CPUs).
int physical_cores();

}  // namespace tandem::calibration
