// Names of the program's enums, as they appear in traces, JSON and the SQLite store.
#include "strategy/program.hpp"

namespace tandem::strategy {

std::string_view to_string(OpType value) {
  switch (value) {
    case OpType::Compute: return "compute";
    case OpType::Collective: return "collective";
    case OpType::SendRecv: return "send-recv";
    case OpType::Marker: return "marker";
  }
  return "?";
}

std::string_view to_string(Stream value) {
  switch (value) {
    case Stream::Compute: return "compute";
    case Stream::TpComm: return "tp-comm";
    case Stream::CpComm: return "cp-comm";
    case Stream::DpComm: return "dp-comm";
    case Stream::PpComm: return "pp-comm";
  }
  return "?";
}

std::string_view to_string(Phase value) {
  switch (value) {
    case Phase::Forward: return "forward";
    case Phase::BackwardInput: return "backward-input";
    case Phase::BackwardWeight: return "backward-weight";
    case Phase::Optimizer: return "optimizer";
    case Phase::None: return "none";
  }
  return "?";
}

std::string_view to_string(ComputeKind value) {
  switch (value) {
    case ComputeKind::None: return "none";
    case ComputeKind::Matmul: return "matmul";
    case ComputeKind::Attention: return "attention";
    case ComputeKind::Norm: return "norm";
    case ComputeKind::Elementwise: return "elementwise";
    case ComputeKind::Embedding: return "embedding";
    case ComputeKind::Loss: return "loss";
    case ComputeKind::Optimizer: return "optimizer";
  }
  return "?";
}

std::string_view to_string(CollectiveKind value) {
  switch (value) {
    case CollectiveKind::AllReduce: return "all-reduce";
    case CollectiveKind::ReduceScatter: return "reduce-scatter";
    case CollectiveKind::AllGather: return "all-gather";
    case CollectiveKind::AllToAll: return "all-to-all";
    case CollectiveKind::Broadcast: return "broadcast";
    case CollectiveKind::SendRecv: return "send-recv";
  }
  return "?";
}

std::string_view to_string(CollectiveAlgorithm value) {
  switch (value) {
    case CollectiveAlgorithm::Auto: return "auto";
    case CollectiveAlgorithm::Ring: return "ring";
    case CollectiveAlgorithm::Tree: return "tree";
    case CollectiveAlgorithm::Hierarchical: return "hierarchical";
  }
  return "?";
}

std::string_view to_string(GroupKind value) {
  switch (value) {
    case GroupKind::None: return "none";
    case GroupKind::Tensor: return "tensor";
    case GroupKind::Context: return "context";
    case GroupKind::Data: return "data";
    case GroupKind::DataContext: return "data-context";
    case GroupKind::Pipeline: return "pipeline";
    case GroupKind::ModelParallel: return "model-parallel";
    case GroupKind::World: return "world";
    case GroupKind::EmbeddingTie: return "embedding-tie";
    case GroupKind::OuterGroup: return "outer-group";
  }
  return "?";
}

std::string_view to_string(PeerKind value) {
  switch (value) {
    case PeerKind::None: return "none";
    case PeerKind::NextStage: return "next-stage";
    case PeerKind::PreviousStage: return "previous-stage";
    case PeerKind::NextContext: return "next-context";
    case PeerKind::PreviousContext: return "previous-context";
  }
  return "?";
}

std::string_view to_string(OpCode value) {
  switch (value) {
    case OpCode::StepBegin: return "step-begin";
    case OpCode::StepEnd: return "step-end";
    case OpCode::EmbeddingForward: return "embedding-fwd";
    case OpCode::EmbeddingBackward: return "embedding-bwd";
    case OpCode::AttentionNormForward: return "attn-norm-fwd";
    case OpCode::QkvForward: return "qkv-fwd";
    case OpCode::RotaryForward: return "rope-fwd";
    case OpCode::AttentionCoreForward: return "attn-core-fwd";
    case OpCode::AttentionOutputForward: return "attn-out-fwd";
    case OpCode::AttentionResidualForward: return "attn-residual-fwd";
    case OpCode::MlpNormForward: return "mlp-norm-fwd";
    case OpCode::MlpUpForward: return "mlp-up-fwd";
    case OpCode::MlpActivationForward: return "mlp-act-fwd";
    case OpCode::MlpDownForward: return "mlp-down-fwd";
    case OpCode::MlpResidualForward: return "mlp-residual-fwd";
    case OpCode::FinalNormForward: return "final-norm-fwd";
    case OpCode::LmHeadForward: return "lm-head-fwd";
    case OpCode::CrossEntropyForward: return "cross-entropy-fwd";
    case OpCode::CrossEntropyBackward: return "cross-entropy-bwd";
    case OpCode::LmHeadBackwardInput: return "lm-head-bwd-input";
    case OpCode::LmHeadBackwardWeight: return "lm-head-bwd-weight";
    case OpCode::FinalNormBackward: return "final-norm-bwd";
    case OpCode::MlpResidualBackward: return "mlp-residual-bwd";
    case OpCode::MlpDownBackwardInput: return "mlp-down-bwd-input";
    case OpCode::MlpDownBackwardWeight: return "mlp-down-bwd-weight";
    case OpCode::MlpActivationBackward: return "mlp-act-bwd";
    case OpCode::MlpUpBackwardInput: return "mlp-up-bwd-input";
    case OpCode::MlpUpBackwardWeight: return "mlp-up-bwd-weight";
    case OpCode::MlpNormBackward: return "mlp-norm-bwd";
    case OpCode::AttentionResidualBackward: return "attn-residual-bwd";
    case OpCode::AttentionOutputBackwardInput: return "attn-out-bwd-input";
    case OpCode::AttentionOutputBackwardWeight: return "attn-out-bwd-weight";
    case OpCode::AttentionCoreBackward: return "attn-core-bwd";
    case OpCode::RotaryBackward: return "rope-bwd";
    case OpCode::QkvBackwardInput: return "qkv-bwd-input";
    case OpCode::QkvBackwardWeight: return "qkv-bwd-weight";
    case OpCode::AttentionNormBackward: return "attn-norm-bwd";
    case OpCode::TpAttentionInputForward: return "tp-attn-input-fwd";
    case OpCode::TpAttentionOutputForward: return "tp-attn-output-fwd";
    case OpCode::TpMlpInputForward: return "tp-mlp-input-fwd";
    case OpCode::TpMlpOutputForward: return "tp-mlp-output-fwd";
    case OpCode::TpAttentionInputBackward: return "tp-attn-input-bwd";
    case OpCode::TpAttentionOutputBackward: return "tp-attn-output-bwd";
    case OpCode::TpMlpInputBackward: return "tp-mlp-input-bwd";
    case OpCode::TpMlpOutputBackward: return "tp-mlp-output-bwd";
    case OpCode::TpEmbeddingForward: return "tp-embedding-fwd";
    case OpCode::TpEmbeddingBackward: return "tp-embedding-bwd";
    case OpCode::TpLmHeadInputForward: return "tp-lm-head-input-fwd";
    case OpCode::TpLmHeadInputBackward: return "tp-lm-head-input-bwd";
    case OpCode::TpCrossEntropyForward: return "tp-cross-entropy-fwd";
    case OpCode::TpNormGradientReduce: return "tp-norm-grad-reduce";
    case OpCode::CpKeyValueForward: return "cp-kv-fwd";
    case OpCode::CpKeyValueBackward: return "cp-kv-bwd";
    case OpCode::PpSendActivation: return "pp-send-act";
    case OpCode::PpRecvActivation: return "pp-recv-act";
    case OpCode::PpSendGradient: return "pp-send-grad";
    case OpCode::PpRecvGradient: return "pp-recv-grad";
    case OpCode::DpGradientReduce: return "dp-grad-reduce";
    case OpCode::DpParameterGather: return "dp-param-gather";
    case OpCode::EmbeddingGradientReduce: return "embedding-grad-reduce";
    case OpCode::GradientNormReduce: return "grad-norm-reduce";
    case OpCode::OptimizerStep: return "optimizer-step";
    case OpCode::GradientZero: return "grad-zero";
    case OpCode::GradientNorm: return "grad-norm";
    case OpCode::OptimizerGather: return "optimizer-gather";
    case OpCode::OuterSync: return "outer-sync";
    case OpCode::OuterFragmentSync: return "outer-fragment-sync";
    case OpCode::OuterGroupAverage: return "outer-group-average";
    case OpCode::OuterStep: return "outer-step";
  }
  return "?";
}

}  // namespace tandem::strategy
