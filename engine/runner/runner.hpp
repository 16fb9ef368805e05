#pragma once
// The rank runner: executes this rank's stage program (strategy::build_program) op by op, in
// order, for real — the same ops the twin simulates.
//
// Dispatch by OpCode:
//   compute ops                     -> GptStage::run (a kernel on the backend)
//   Tp* collectives                 -> the tensor-parallel communicator, on GptStage::comm_buffers
//   PpSend*/PpRecv*                 -> tagged point-to-point on the pipeline communicator
//                                      (tag = 2·micro_batch + direction)
//   DpGradientReduce (bucket k)     -> all-reduce (ZeRO 0) or reduce-scatter into this rank's
//                                      shard (ZeRO 1/2) of gradient bucket k, in place
//   TpNormGradientReduce            -> all-reduce of the replicated gains/biases (sequence parallel)
//   EmbeddingGradientReduce         -> all-reduce of the tied embedding over first + last stage
//   GradientNormReduce              -> all-reduce of Σ g² over the op's group
//   OptimizerStep                   -> clip to training.grad_clip with the global norm, then
//                                      engine/optim on the parameters (ZeRO: on the shard)
//   DpParameterGather (bucket k)    -> all-gather of the updated shards of bucket k
// Every communication op is started asynchronously when its turn comes and waited only when a
// later op depends on it (op.deps), before its buffer is reused, or at StepEnd; requests are
// polled between ops so MPI progresses them (DP buckets overlap the rest of the backward pass for
// real). Each op's real start and end (steady clock, seconds since the run's common origin)
// become a report::TraceRecord under the op's id; an async op ends when its completion is seen.
//
// Loss scaling: every token's loss gradient is 1 / (tokens of the global batch), so accumulated
// gradients are those of the mean loss over the global batch, whatever dp·micro-batches is. With
// an outer method (strategy.outer) each worker's gradient is that of its own mean loss (1 / its
// tokens), and the outer synchronisation ops (strategy::is_outer_op) are skipped: the trainer runs
// them through engine/outer between steps.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "engine/backend/backend.hpp"
#include "engine/model/gpt_stage.hpp"
#include "engine/optim/optimizer.hpp"
#include "engine/runner/parallel_context.hpp"
#include "report/trace_record.hpp"
#include "strategy/program.hpp"
#include "strategy/scenario.hpp"

namespace tandem::engine {

// Fills the B·T input tokens and B·T targets of micro-batch `micro_batch` of this data-parallel
// replica for the current step.
using MicroBatchSource =
    std::function<void(int micro_batch, std::vector<std::int32_t>& inputs, std::vector<std::int32_t>& targets)>;

struct StepResult {
  double loss = 0;            // mean over the global batch (every rank gets it)
  double grad_norm = -1;      // global gradient norm before clipping (-1: not computed)
  double seconds = 0;         // wall time of the step on this rank
};

struct RunnerOptions {
  bool record_trace = true;
  bool gradients_only = false;  // stop before the optimizer (tests: gradients stay in place)
};

template <typename Scalar>
class Runner {
 public:
  // Collective over the world (splits communicators, agrees on the clock origin). `world` carries
  // the program's collectives on the backend's buffers (MPI or single-process for the CPU, NCCL
  // for GPUs); `host_world` (same ranks; nullptr = `world`) carries the host-side values: the
  // gradient norm, the loss, the clock origin.
  Runner(const strategy::Scenario& scenario, comm::Communicator& world, Backend<Scalar>& backend,
         RunnerOptions options = {}, comm::Communicator* host_world = nullptr);
  ~Runner();

  const strategy::Program& program() const { return program_; }
  const std::vector<strategy::Op>& ops() const { return *ops_; }
  GptStage<Scalar>& model() { return *model_; }
  ParallelContext& parallel() { return parallel_; }
  ParallelContext& host_parallel() { return host_parallel_ ? *host_parallel_ : parallel_; }
  int rank() const { return parallel_.rank; }
  int rank_class() const { return rank_class_; }
  optim::Optimizer* optimizer() { return optimizer_.get(); }

  // One training step: forward and backward of every micro-batch, gradient reduction, clipping
  // and the optimizer step at learning rate `lr`. Collective over the world.
  StepResult step(int step_number, double lr, const MicroBatchSource& source);

  // Mean loss of the global batch without backward (the program's forward ops only): evaluation.
  // Collective over the world.
  double evaluate(const MicroBatchSource& source);

  // Records of the last step (this rank).
  const std::vector<report::TraceRecord>& last_trace() const { return trace_; }
  // Seconds since the run's common clock origin.
  double now() const;

 private:
  struct Pending;
  void execute(const strategy::Op& op, bool forward_only);
  void start_communication(const strategy::Op& op);
  void wait_for(std::uint32_t op_id);
  void wait_slot_sends(int micro_batch);
  void poll();
  bool pipeline_scatter_gather(const strategy::Op& op, std::size_t count) const;
  void complete_gather(Pending& pending);
  void finish_all();
  void record(const strategy::Op& op, double start, double end);
  comm::Communicator& group(strategy::GroupKind kind);

  // The gradients the optimizer steps: the full buffer, or the ZeRO shard.
  struct GradientPiece {
    const LocalTensor* tensor;
    std::size_t value_offset;  // into the parameter values
    Scalar* grad;              // where the (reduced) gradient is
    std::size_t size;
    std::size_t piece_start;   // offset of the piece within the tensor
  };
  void build_gradient_pieces();
  double local_sum_of_squares();
  void tp_norm_gradient_reduce(const strategy::Op& op);
  void optimizer_step();

  strategy::Scenario scenario_;
  RunnerOptions options_;
  Backend<Scalar>* backend_;
  ParallelContext parallel_;
  std::unique_ptr<ParallelContext> host_parallel_;  // only when the host world differs
  strategy::Program program_;
  const std::vector<strategy::Op>* ops_ = nullptr;
  int rank_class_ = 0;
  std::unique_ptr<GptStage<Scalar>> model_;
  std::unique_ptr<optim::Optimizer> optimizer_;
  int zero_ = 0;
  int micro_batches_ = 1;
  double grad_clip_ = 0;

  std::vector<GradientPiece> pieces_;
  DeviceBuffer<Scalar> shard_grads_;      // ZeRO: this rank's shard of every bucket
  std::vector<std::size_t> shard_offset_;  // per bucket, into shard_grads_
  DeviceBuffer<Scalar> pack_;             // TpNormGradientReduce packing

  std::vector<std::unique_ptr<Pending>> pending_;
  std::vector<report::TraceRecord> trace_;
  std::vector<std::int32_t> inputs_, targets_;
  std::int64_t origin_ns_ = 0;
  double step_lr_ = 0;
  int step_number_ = 0;
  double grad_norm_ = -1;
  double norm_partial_ = 0;  // Σ g² of this rank (grad-norm), then of all ranks (GradientNormReduce)
  bool have_norm_ = false;    // this step ran grad-norm
  std::vector<float> host_values_, host_grads_;  // device backends: optimizer mirrors
};

}  // namespace tandem::engine
