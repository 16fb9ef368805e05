#pragma once
// The program: the contract between the strategy layer, the twin and the engine (DESIGN.md).
//
// For every rank class (ranks that behave identically) an ordered list of operations on named
// streams, each with dependencies. The twin costs each op from the hardware profile and the
// network; the engine executes each op and stamps its real start and end. An op's id is its
// index in its rank class's program, so a real run and its simulation align op by op.
//
// Peers and groups are relative (the next pipeline stage, this rank's tensor-parallel group):
// one program serves every rank of a class, and the executor resolves them with the
// ParallelLayout.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "strategy/parallel_layout.hpp"

namespace tandem::strategy {

struct Scenario;

enum class OpType : std::uint8_t { Compute, Collective, SendRecv, Marker };

// Streams execute their ops in order; ops on different streams overlap as dependencies allow.
enum class Stream : std::uint8_t { Compute, TpComm, CpComm, DpComm, PpComm };
inline constexpr int kStreamCount = 5;

enum class Phase : std::uint8_t { Forward, BackwardInput, BackwardWeight, Optimizer, None };

enum class ComputeKind : std::uint8_t {
  None, Matmul, Attention, Norm, Elementwise, Embedding, Loss, Optimizer
};

enum class CollectiveKind : std::uint8_t {
  AllReduce, ReduceScatter, AllGather, AllToAll, Broadcast, SendRecv
};

// Whom each rank sends to in a send-recv benchmark: Half, rank i and rank i + n/2 exchange both
// ways; Next, rank i sends to i + 1 and receives from i - 1 (a ring shift, nccl-tests' sendrecv).
enum class SendRecvPeer : std::uint8_t { Half, Next };

enum class CollectiveAlgorithm : std::uint8_t { Auto, Ring, Tree, Hierarchical };


// A point-to-point peer, relative to the executing rank.
enum class PeerKind : std::uint8_t { None, NextStage, PreviousStage, NextContext, PreviousContext };

// What an op does, precise enough for the engine to dispatch it to a kernel or a communicator
// call. Forward ops of a transformer layer run in this order; backward ops in reverse.
enum class OpCode : std::uint16_t {
  // markers
  StepBegin,
  StepEnd,
  // input embedding (token, plus learned positions)
  EmbeddingForward,
  EmbeddingBackward,
  // transformer layer: attention block
  AttentionNormForward,
  QkvForward,
  RotaryForward,
  AttentionCoreForward,
  AttentionOutputForward,
  AttentionResidualForward,
  // transformer layer: MLP block
  MlpNormForward,
  MlpUpForward,          // fc1 (GELU) or fused gate+up (SwiGLU)
  MlpActivationForward,  // GELU or SwiGLU
  MlpDownForward,        // fc2
  MlpResidualForward,
  // output head
  FinalNormForward,
  LmHeadForward,
  CrossEntropyForward,
  // backward, in the order they run
  CrossEntropyBackward,
  LmHeadBackwardInput,
  LmHeadBackwardWeight,
  FinalNormBackward,
  MlpResidualBackward,
  MlpDownBackwardInput,
  MlpDownBackwardWeight,
  MlpActivationBackward,
  MlpUpBackwardInput,
  MlpUpBackwardWeight,
  MlpNormBackward,
  AttentionResidualBackward,
  AttentionOutputBackwardInput,
  AttentionOutputBackwardWeight,
  AttentionCoreBackward,
  RotaryBackward,
  QkvBackwardInput,
  QkvBackwardWeight,
  AttentionNormBackward,
  // tensor parallelism (Megatron f/g operators; with sequence parallelism all-gather and
  // reduce-scatter replace the identity and the all-reduce)
  TpAttentionInputForward,    // SP: all-gather of the normed input before QKV
  TpAttentionOutputForward,   // all-reduce (or SP reduce-scatter) after the output projection
  TpMlpInputForward,          // SP: all-gather before fc1
  TpMlpOutputForward,         // all-reduce (or SP reduce-scatter) after fc2
  TpAttentionInputBackward,   // all-reduce (or SP reduce-scatter) of the input gradient
  TpAttentionOutputBackward,  // SP: all-gather of the output gradient
  TpMlpInputBackward,
  TpMlpOutputBackward,
  TpEmbeddingForward,         // vocab-parallel embedding: all-reduce (or SP reduce-scatter)
  TpEmbeddingBackward,        // SP: all-gather of the embedding output gradient
  TpLmHeadInputForward,       // SP: all-gather of the final norm output before the LM head
  TpLmHeadInputBackward,      // all-reduce (or SP reduce-scatter) of the LM head input gradient
  TpCrossEntropyForward,      // vocab-parallel cross-entropy: all-reduce of max and sum-exp
  TpNormGradientReduce,       // SP: all-reduce of replicated norm weight gradients
  // context parallelism (ring attention): key/value blocks passed around the cp group
  CpKeyValueForward,
  CpKeyValueBackward,
  // pipeline parallelism
  PpSendActivation,
  PpRecvActivation,
  PpSendGradient,
  PpRecvGradient,
  // data parallelism and ZeRO
  DpGradientReduce,        // one bucket: all-reduce (ZeRO 0/1) or reduce-scatter (ZeRO 2/3)
  DpParameterGather,       // ZeRO: all-gather updated (1/2) or needed (3) parameter shards
  EmbeddingGradientReduce, // tied embeddings across the first and last stage
  GradientNorm,            // this rank's sum of squares of its gradients, for clipping
  GradientNormReduce,      // global gradient norm for clipping
  OptimizerStep,
  OptimizerGather,         // MuonBP: periodic all-gather of momentum shards (averaged per step)
  GradientZero,            // zero the gradients before the step accumulates into them (its first op)
  // outer synchronisation (strategy.outer; strategy/outer.hpp). These ops run once every
  // `period` inner steps: the program shows the step in which they run.
  OuterSync,               // DiLoCo: all-reduce (mean) of fp32 pseudo-gradients over the workers
  OuterFragmentSync,       // Streaming DiLoCo: one fragment's (quantized) pseudo-gradient all-reduce
  OuterGroupAverage,       // NoLoCo: all-reduce (mean) of the fast weights within the outer group
  OuterStep,               // the outer update (Nesterov / heavy-ball, fragment mixing): compute
};

// The outer synchronisation ops: not part of the inner step (the engine runs them between
// steps, in engine/outer).
constexpr bool is_outer_op(OpCode code) {
  return code == OpCode::OuterSync || code == OpCode::OuterFragmentSync || code == OpCode::OuterGroupAverage ||
         code == OpCode::OuterStep;
}

struct Op {
  std::uint32_t id = 0;  // index in the rank class's program
  OpCode code = OpCode::StepBegin;
  OpType type = OpType::Marker;
  Stream stream = Stream::Compute;
  Phase phase = Phase::None;
  std::int32_t layer = -1;        // global transformer layer index; -1 for none
  std::int32_t micro_batch = -1;  // -1 for none
  std::int32_t chunk = 0;         // virtual pipeline chunk (interleaved schedule)
  bool recompute = false;         // a forward op re-run during backward

  // Compute ops. A matmul is (m x k) . (k x n), `batch` times; attention records
  // m = query rows, n = key columns, k = head dim, batch = batch * heads.
  ComputeKind compute_kind = ComputeKind::None;
  std::int64_t m = 0, n = 0, k = 0, batch = 1;
  double flops = 0;  // floating-point operations
  double bytes = 0;  // compute: bytes read+written in memory; communication: see below

  // Communication ops. `bytes` follows nccl-tests' convention for the collective's size S:
  // all-reduce and broadcast S = the buffer; all-gather S = the full gathered buffer;
  // reduce-scatter S = the full input; send/recv S = the message.
  CollectiveKind collective = CollectiveKind::AllReduce;
  GroupKind group = GroupKind::None;
  PeerKind peer = PeerKind::None;
  CollectiveAlgorithm algorithm = CollectiveAlgorithm::Auto;
  std::int32_t bucket = -1;  // DP gradient bucket / optimizer shard index / outer fragment

  // Outer synchronisation: the op runs once every `period` inner steps (1 = every step), and a
  // collective may overlap `overlap_steps` inner steps of compute before the step that applies
  // its result waits for it (Streaming DiLoCo's delay). The twin reports the step in which it
  // runs and the average per step (sim/README.md).
  std::int32_t period = 1;
  std::int32_t overlap_steps = 0;

  std::vector<std::uint32_t> deps;  // ids of earlier ops in the same program
};

std::string_view to_string(OpType value);
std::string_view to_string(Stream value);
std::string_view to_string(Phase value);
std::string_view to_string(ComputeKind value);
std::string_view to_string(CollectiveKind value);
std::string_view to_string(CollectiveAlgorithm value);
std::string_view to_string(GroupKind value);
std::string_view to_string(PeerKind value);
std::string_view to_string(OpCode value);

// Ranks that run the same program on the same kind of hardware are one class: the twin
// simulates one representative and weights it; --no-fold makes every rank its own class.
struct RankClass {
  int id = 0;
  int pipeline_stage = 0;
  int node_group = 0;       // index into the cluster's node groups (heterogeneous hardware)
  int site = 0;             // index into the cluster's sites (WAN position)
  std::vector<int> ranks;   // every global rank in the class, ascending
};

struct Program {
  ParallelLayout layout;
  // One op list per pipeline stage: every rank of a stage runs the same ops.
  std::vector<std::vector<Op>> stage_ops;
  std::vector<RankClass> classes;
  std::vector<int> class_of_rank;  // global rank -> class id

  const std::vector<Op>& ops_of_class(int class_id) const {
    return stage_ops.at(static_cast<std::size_t>(classes.at(static_cast<std::size_t>(class_id)).pipeline_stage));
  }
  const std::vector<Op>& ops_of_rank(int rank) const {
    return ops_of_class(class_of_rank.at(static_cast<std::size_t>(rank)));
  }
};

struct ProgramOptions {
  bool fold = true;  // false: every rank is its own class (validation at small scale)
};

// Builds the per-rank program of one training step. The scenario must be valid
// (validate_scenario) and carry a model and a strategy.
Program build_program(const Scenario& scenario, const ProgramOptions& options = {});

}  // namespace tandem::strategy
