#pragma once
// The executor: one training step of a program (strategy/program.hpp) on the SimGrid platform.
//
// One SimGrid actor per simulated rank — the representative (lowest rank) of each rank class
// when folded, every rank with --no-fold — runs its program as an event loop: each stream runs
// its ops in order, an op starts when its stream reaches it and its dependencies are done, and
// the actor waits for whichever activity ends first.
//   compute ops      a timed execution of the cost model's duration (sim/compute_cost.hpp);
//                    consecutive compute ops that nothing on another stream waits for run as one
//                    execution (their trace times are still per op);
//   collectives      the plan of strategy/collective_plan.hpp, phase by phase, as flows
//                    (Comm::sendto_async between the transfers' GPUs). A phase's `repeat`
//                    identical steps run as one flow of repeat x bytes per transfer — so the links
//                    stay loaded for the whole collective and concurrent traffic sees the
//                    contention — followed by the (repeat - 1) step latencies the single flow did
//                    not pay, and `pipeline_hops` more; reductions slower than the links extend
//                    the phase. A collective whose ranks span several simulated ranks starts when
//                    all have reached it (the slowest sets the pace: a data-parallel all-reduce
//                    across fast and slow node groups runs at the slow group's speed).
//   send/recv        pipeline messages are flows from the sender's GPU to the peer's, matched by
//                    (receiver, activation/gradient, micro-batch, model chunk); a send completes
//                    when its flow does, a receive when the message has arrived. Ring-attention
//                    exchanges (cp) run as a one-phase collective over the cp group.
//
// Folding (ExecutorOptions::fold): a representative stands for every rank of its class, so its
// collectives carry the flows of every group of that kind whose ranks belong to the same
// classes (they run in lockstep by symmetry), reduced by sim/collective_folding.hpp (TP groups:
// one node, since other nodes' NVLink is disjoint; DP groups crossing the fabric: all of them,
// up to the flow budget). A pipeline send carries the flows of the class's ranks on the
// representative's node (they share its NICs).
//
// Caching: the executor tracks which links carry traffic. A collective that starts with its
// links (after folding) idle and finishes without any other traffic having joined them ran
// alone; its duration is stored under (traffic category, kind, algorithm, bytes). A later
// identical collective that finds its links idle replays that duration as a timer instead of
// simulating its flows (it still marks its links busy, and a replay that other traffic joins
// midway is counted in ExecutorStatistics::replays_overlapped — the only inexact case). Tensor-
// parallel collectives on NVLink, thousands per step, are almost all replays.
//
// Outer synchronisation (ops with period > 1, strategy.outer): the step is simulated with its
// outer ops, and the time per step is the average over a period: the inner step (every op of
// period 1) plus what one sync exposes divided by the period. A blocking sync (overlap_steps 0)
// exposes everything from the end of the inner step to the end of the outer ops; an overlapped
// one (Streaming DiLoCo) started at the beginning of the step and may run for overlap_steps inner
// steps before its update waits for it: it exposes max(0, exchange end - overlap_steps x inner
// step) plus the update's compute. The critical class is the one with the longest average step;
// the breakdown covers its inner step plus `outer_sync` (the exposed time / period).
//
// Breakdown (critical class = the one whose StepEnd is last; its StepEnd is the step time): the
// compute stream of that class is either busy — compute (forward, backward, recompute) or the
// optimizer step — or idle waiting for the op that the next compute op (or StepEnd) depended on
// and that finished last. The idle time goes to the stream of that op: tensor-parallel,
// context-parallel, data-parallel (gradient reductions, ZeRO gathers, gradient norm) or
// pipeline communication. A wait on a pipeline receive is exposed pipeline communication while
// the message was on the wire and bubble before (the sender had not produced it yet: warm-up,
// cool-down and imbalance). The parts sum to the step time exactly.

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "report/trace_record.hpp"
#include "strategy/scenario.hpp"

namespace tandem::sim {

struct Breakdown {
  double compute = 0;
  double exposed_tp_comm = 0;
  double exposed_dp_comm = 0;
  double exposed_pp_comm = 0;
  double exposed_cp_comm = 0;
  double bubble = 0;
  double optimizer = 0;
  double outer_sync = 0;  // strategy.outer: one sync's exposed time divided by its period
  double total() const {
    return compute + exposed_tp_comm + exposed_dp_comm + exposed_pp_comm + exposed_cp_comm + bubble + optimizer +
           outer_sync;
  }
};

// Outer synchronisation (strategy.outer): the program's ops with period > 1 run once every
// `period` inner steps. Times of the critical class.
struct OuterTiming {
  bool present = false;     // the program has outer ops
  int period = 1;           // inner steps between two syncs
  int overlap_steps = 0;    // inner steps an exchange overlaps (Streaming DiLoCo's delay)
  double inner_step_s = 0;  // a step without outer ops
  double exchange_s = 0;    // one sync's communication, start to end (0 without workers to meet)
  double update_s = 0;      // one outer update's compute
  double exposed_s = 0;     // what one sync adds to the inner step that waits for it
  double sync_step_s = 0;   // inner_step_s + exposed_s: the step that waits for a sync
};

// Traffic over the wide-area links between sites (cluster.sites), counted over every rank of
// the cluster from the unfolded collective plans (the algorithms the executor chose).
struct WanTraffic {
  bool present = false;                 // the cluster has two or more sites
  double inner_bytes_per_step = 0;      // summed over every WAN link direction, per inner step
  double inner_busiest_link_bytes = 0;  // on the busiest WAN link direction, per inner step
  double sync_bytes = 0;                // one outer sync, summed over every WAN link direction
  double sync_busiest_link_bytes = 0;   // one outer sync, on the busiest WAN link direction
  double bytes_per_step = 0;            // average: inner + sync / period
  // The WAN bandwidth at which every exchange fits in the compute it may overlap (busiest link
  // direction): the inner step's traffic within the inner step's compute (compute + optimizer +
  // bubble of the breakdown: the step without exposed communication), one sync's within
  // max(1, overlap_steps) of those. Below it the WAN stalls training (or, for a blocking sync,
  // one sync takes longer than an inner step).
  double peak_bandwidth_bytes_per_s = 0;
  double average_bandwidth_bytes_per_s = 0;  // busiest link direction, per average step
};

struct ClassTiming {
  int class_id = 0;
  int rank = 0;             // the simulated (representative) rank
  int ranks = 1;            // ranks the class stands for
  int pipeline_stage = 0;
  int node_group = 0;
  int site = 0;
  double step_end_s = 0;    // the simulated step (with its outer ops, if any)
  double compute_busy_s = 0;
};

struct ExecutorStatistics {
  std::size_t simulated_ranks = 0;
  std::size_t ops = 0;
  std::size_t compute_executions = 0;  // after batching
  std::size_t flows = 0;
  std::size_t collectives_simulated = 0;
  std::size_t collectives_cached = 0;   // replayed from an identical earlier run on idle links
  std::size_t replays_overlapped = 0;  // replays that other traffic joined on their links midway
  std::size_t hosts = 0;
  std::size_t links = 0;
  bool folding_exact = true;
  std::vector<std::string> folding_notes;  // one per distinct folded collective that was reduced
  double wall_seconds = 0;
};

struct ExecutionResult {
  double step_time_s = 0;  // with outer ops: the average step (inner step + exposed sync / period)
  Breakdown breakdown;
  OuterTiming outer;
  WanTraffic wan;
  int critical_class = 0;
  std::vector<ClassTiming> classes;
  std::vector<report::TraceRecord> trace;  // every op of every simulated rank
  double executed_flops = 0;  // every compute op's FLOPs, over every rank of the cluster
  ExecutorStatistics statistics;
};

struct ExecutorOptions {
  bool fold = true;
  std::size_t flow_budget = 2048;
  bool record_trace = true;
  bool verbose = false;
  std::function<void(double)> progress;  // fraction of ops done, called now and then
};

// Runs one training step of the scenario on SimGrid. Creates the SimGrid engine: call at most
// once per process (run_simulation_in_child does this in a child process).
ExecutionResult execute_step(const strategy::Scenario& scenario, const ExecutorOptions& options);

}  // namespace tandem::sim
