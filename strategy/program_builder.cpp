// Program generation: one training step of a scenario as per-stage op lists (program.hpp).
//
// Every transformer layer is decomposed into its GEMMs, attention, norms and element-wise ops,
// forward and backward (weight and input gradients as separate ops); tensor-parallel collectives
// sit where Megatron-LM puts them (Shoeybi et al. 2019; Korthikanti et al. 2022 for sequence
// parallelism); pipeline sends and receives follow the schedule; data-parallel gradient buckets
// are reduced as soon as their last gradient is ready; ZeRO adds reduce-scatters and
// all-gathers; the optimizer step closes the step.
#include <algorithm>
#include <cassert>
#include <cmath>
#include <map>
#include <tuple>

#include "strategy/model_formulas.hpp"
#include "strategy/optimizer_catalog.hpp"
#include "strategy/pipeline_schedule.hpp"
#include "strategy/program.hpp"
#include "strategy/scenario.hpp"

namespace tandem::strategy {
namespace {

constexpr std::uint32_t kNone = UINT32_MAX;

class StageBuilder {
 public:
  StageBuilder(const Scenario& scenario, int stage)
      : model_(*scenario.model),
        strategy_(*scenario.strategy),
        training_(scenario.training),
        stage_(stage),
        e_(HardwareProfile::bytes_per_element(strategy_.precision)) {
    const auto& s = strategy_;
    tokens_ = static_cast<double>(s.micro_batch) * model_.seq_len / s.cp;
    sp_divisor_ = (s.sequence_parallel && s.tp > 1) ? s.tp : 1;
    layers_per_chunk_ = model_.layers / (s.pp * s.virtual_stages);
    chunks_total_ = s.pp * s.virtual_stages;
    kv_ = static_cast<double>(model_.kv_heads) * model_.head_dim();
    up_width_ = model_.activation == Activation::SwiGlu ? 2.0 * model_.ffn_hidden : model_.ffn_hidden;
    vocab_local_ = static_cast<double>(padded_vocab(model_, s.tp)) / s.tp;
    data_group_ = s.cp > 1 ? GroupKind::DataContext : GroupKind::Data;
    data_ranks_ = s.dp * s.cp;
    if (s.outer.enabled()) {
      // Workers (data-parallel replicas) train independently between outer synchronisations:
      // gradients are reduced only inside a worker (over its context-parallel ranks).
      data_group_ = GroupKind::Context;
      data_ranks_ = s.cp;
    }
    gradient_bytes_ = s.precision == Precision::Fp32 ? 4 : 2;
    optimizer_ = resolve_optimizer(s.optimizer, s.optimizer_args, training_.lr,
                                   training_.weight_decay, training_.seed);
    for (const ParameterTensorSpec& tensor : parameter_tensors(model_, s.tp)) tensors_.push_back(tensor);
  }

  std::vector<Op> build() {
    const auto& s = strategy_;
    step_begin_ = emit(marker(OpCode::StepBegin));
    // The engine clears the gradients the last step accumulated before this one accumulates its
    // own (a memset of the rank's gradients; they stay readable after the step).
    compute(OpCode::GradientZero, ComputeKind::Elementwise, Phase::Optimizer, 0, local_parameters() * gradient_bytes_);
    const auto steps = pipeline_schedule(s.schedule, s.pp, stage_, s.micro_batches(), s.virtual_stages);
    // The last backward of each chunk makes its gradients final.
    std::map<int, int> backwards_left;
    for (const PipelineStep& step : steps)
      if (!step.forward) ++backwards_left[step.chunk];
    for (const PipelineStep& step : steps) {
      if (step.forward) {
        forward_chunk(step.micro_batch, step.chunk);
      } else {
        const bool last = --backwards_left[step.chunk] == 0;
        backward_chunk(step.micro_batch, step.chunk, last);
      }
    }
    finish_step();
    return std::move(ops_);
  }

 private:
  // ---- op constructors ---------------------------------------------------------------------
  Op marker(OpCode code) const {
    Op op;
    op.code = code;
    op.type = OpType::Marker;
    return op;
  }

  std::uint32_t emit(Op op) {
    op.id = static_cast<std::uint32_t>(ops_.size());
    ops_.push_back(std::move(op));
    return ops_.back().id;
  }

  // A compute op on the compute stream; it depends on the previous compute op implicitly
  // (stream order) and on `extra` explicitly.
  std::uint32_t compute(OpCode code, ComputeKind kind, Phase phase, double flops, double bytes,
                        std::vector<std::uint32_t> extra = {}) {
    Op op;
    op.code = code;
    op.type = OpType::Compute;
    op.stream = Stream::Compute;
    op.phase = phase;
    op.compute_kind = kind;
    op.layer = layer_;
    op.micro_batch = micro_batch_;
    op.chunk = chunk_;
    op.recompute = recompute_;
    op.flops = flops;
    op.bytes = bytes;
    for (std::uint32_t dep : pending_) extra.push_back(dep);
    pending_.clear();
    op.deps = dedupe(std::move(extra));
    return emit(std::move(op));
  }

  // (m x k) . (k x n)
  std::uint32_t matmul(OpCode code, Phase phase, double m, double n, double k) {
    const std::uint32_t id =
        compute(code, ComputeKind::Matmul, phase, 2 * m * n * k, e_ * (m * k + k * n + m * n));
    ops_[id].m = static_cast<std::int64_t>(m);
    ops_[id].n = static_cast<std::int64_t>(n);
    ops_[id].k = static_cast<std::int64_t>(k);
    return id;
  }

  std::uint32_t collective(OpCode code, Stream stream, CollectiveKind kind, GroupKind group,
                           double bytes, std::vector<std::uint32_t> deps,
                           CollectiveAlgorithm algorithm = CollectiveAlgorithm::Auto) {
    Op op;
    op.code = code;
    op.type = OpType::Collective;
    op.stream = stream;
    op.phase = phase_;
    op.layer = layer_;
    op.micro_batch = micro_batch_;
    op.chunk = chunk_;
    op.recompute = recompute_;
    op.collective = kind;
    op.group = group;
    op.algorithm = algorithm;
    op.bytes = bytes;
    op.deps = dedupe(std::move(deps));
    return emit(std::move(op));
  }

  std::uint32_t send_recv(OpCode code, PeerKind peer, double bytes, std::vector<std::uint32_t> deps) {
    Op op;
    op.code = code;
    op.type = OpType::SendRecv;
    op.stream = (peer == PeerKind::NextContext || peer == PeerKind::PreviousContext) ? Stream::CpComm
                                                                                    : Stream::PpComm;
    op.phase = phase_;
    op.layer = layer_;
    op.micro_batch = micro_batch_;
    op.chunk = chunk_;
    op.collective = CollectiveKind::SendRecv;
    op.peer = peer;
    op.bytes = bytes;
    op.deps = dedupe(std::move(deps));
    return emit(std::move(op));
  }

  static std::vector<std::uint32_t> dedupe(std::vector<std::uint32_t> ids) {
    ids.erase(std::remove(ids.begin(), ids.end(), kNone), ids.end());
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    return ids;
  }

  // A synchronous tensor-parallel collective: runs after the last compute op and the next compute
  // op waits for it.
  void tp_sync(OpCode code, CollectiveKind kind, double bytes) {
    const std::uint32_t id = collective(code, Stream::TpComm, kind, GroupKind::Tensor, bytes, {last_compute()});
    pending_.push_back(id);
  }
  // Started after the last compute op; `wait_before` ops will depend on it.
  std::uint32_t tp_async(OpCode code, CollectiveKind kind, double bytes) {
    return collective(code, Stream::TpComm, kind, GroupKind::Tensor, bytes, {last_compute()});
  }

  // A column-parallel linear's backward: the tensor-parallel reduction of its input gradient and
  // its weight-gradient GEMM. Overlapped (Megatron-LM since September 2021: the reduction starts
  // right after the input-gradient GEMM and the weight-gradient GEMM runs beside it), or, with
  // strategy.overlap_tp_input_grad false, after it and waited for (Megatron-LM before: the
  // reduction ran in the autograd graph once the linear's whole backward was done).
  template <typename WeightGrad>
  void weight_grad_beside_input_grad_reduction(OpCode reduction, CollectiveKind kind, WeightGrad&& weight_grad) {
    if (!tensor_parallel()) {
      weight_grad();
      return;
    }
    if (!strategy_.overlap_tp_input_grad) {
      weight_grad();
      tp_sync(reduction, kind, activation_bytes());
      return;
    }
    const std::uint32_t reduction_id = tp_async(reduction, kind, activation_bytes());
    weight_grad();
    pending_.push_back(reduction_id);
  }

  std::uint32_t last_compute() const {
    for (auto it = ops_.rbegin(); it != ops_.rend(); ++it)
      if (it->type == OpType::Compute) return it->id;
    return step_begin_;
  }

  bool tensor_parallel() const { return strategy_.tp > 1; }
  bool sequence_parallel() const { return sp_divisor_ > 1; }
  // Bytes of the full (b, s/cp, h) activation: the size S of the TP collectives.
  double activation_bytes() const { return e_ * tokens_ * model_.hidden; }
  // Tokens on which norms and residuals run on this rank (sharded by SP).
  double norm_tokens() const { return tokens_ / sp_divisor_; }

  double norm_flops(double tokens) const { return 8.0 * tokens * model_.hidden; }
  double norm_bytes(double tokens) const { return e_ * 2 * tokens * model_.hidden; }

  // ---- the transformer layer ------------------------------------------------------------------
  void attention_core_forward() {
    const auto& s = strategy_;
    const double heads_local = static_cast<double>(model_.heads) / s.tp;
    const double d = model_.head_dim();
    const double queries = static_cast<double>(model_.seq_len) / s.cp;
    const double total_flops = 4.0 * s.micro_batch * heads_local * queries * model_.seq_len * d;
    const double io_bytes = e_ * tokens_ * (model_.hidden + 2 * kv_ + model_.hidden) / s.tp;
    if (s.cp == 1) {
      attention_op(OpCode::AttentionCoreForward, total_flops, io_bytes, queries, model_.seq_len);
      return;
    }
    // Ring attention: the key/value block travels around the cp group while the local block's
    // attention is computed; block j waits for the j-th exchange.
    const double kv_block_bytes = e_ * tokens_ * 2 * kv_ / s.tp;
    std::uint32_t exchange = kNone;
    for (int block = 0; block < s.cp; ++block) {
      std::uint32_t next_exchange = kNone;
      if (block + 1 < s.cp)
        next_exchange = send_recv(OpCode::CpKeyValueForward, PeerKind::NextContext, kv_block_bytes,
                                  {exchange == kNone ? last_compute() : exchange});
      if (exchange != kNone) pending_.push_back(exchange);
      attention_op(OpCode::AttentionCoreForward, total_flops / s.cp, io_bytes / s.cp, queries,
                   static_cast<double>(model_.seq_len) / s.cp);
      exchange = next_exchange;
    }
  }

  void attention_core_backward() {
    const auto& s = strategy_;
    const double heads_local = static_cast<double>(model_.heads) / s.tp;
    const double d = model_.head_dim();
    const double queries = static_cast<double>(model_.seq_len) / s.cp;
    const double total_flops = 8.0 * s.micro_batch * heads_local * queries * model_.seq_len * d;
    const double io_bytes = 2 * e_ * tokens_ * (model_.hidden + 2 * kv_ + model_.hidden) / s.tp;
    if (s.cp == 1) {
      attention_op(OpCode::AttentionCoreBackward, total_flops, io_bytes, queries, model_.seq_len);
      return;
    }
    // Key/value blocks and their gradients travel around the ring.
    const double kv_block_bytes = 2 * e_ * tokens_ * 2 * kv_ / s.tp;
    std::uint32_t exchange = kNone;
    for (int block = 0; block < s.cp; ++block) {
      std::uint32_t next_exchange = kNone;
      if (block + 1 < s.cp)
        next_exchange = send_recv(OpCode::CpKeyValueBackward, PeerKind::NextContext, kv_block_bytes,
                                  {exchange == kNone ? last_compute() : exchange});
      if (exchange != kNone) pending_.push_back(exchange);
      attention_op(OpCode::AttentionCoreBackward, total_flops / s.cp, io_bytes / s.cp, queries,
                   static_cast<double>(model_.seq_len) / s.cp);
      exchange = next_exchange;
    }
  }

  void attention_op(OpCode code, double flops, double bytes, double queries, double keys) {
    const std::uint32_t id = compute(code, ComputeKind::Attention, phase_, flops, bytes);
    ops_[id].m = static_cast<std::int64_t>(queries);
    ops_[id].n = static_cast<std::int64_t>(keys);
    ops_[id].k = model_.head_dim();
    ops_[id].batch = static_cast<std::int64_t>(strategy_.micro_batch) * model_.heads / strategy_.tp;
  }

  void layer_forward() {
    const auto& s = strategy_;
    const double h = model_.hidden;
    compute(OpCode::AttentionNormForward, ComputeKind::Norm, phase_, norm_flops(norm_tokens()),
            norm_bytes(norm_tokens()));
    if (sequence_parallel()) tp_sync(OpCode::TpAttentionInputForward, CollectiveKind::AllGather, activation_bytes());
    matmul(OpCode::QkvForward, phase_, tokens_, (h + 2 * kv_) / s.tp, h);
    if (model_.position == Position::Rope) {
      const double elements = tokens_ * (h + kv_) / s.tp;
      compute(OpCode::RotaryForward, ComputeKind::Elementwise, phase_, 6 * elements, 2 * e_ * elements);
    }
    if (!(recompute_ && s.recompute == Recompute::Selective)) attention_core_forward();
    matmul(OpCode::AttentionOutputForward, phase_, tokens_, h, h / s.tp);
    if (tensor_parallel())
      tp_sync(OpCode::TpAttentionOutputForward,
              sequence_parallel() ? CollectiveKind::ReduceScatter : CollectiveKind::AllReduce,
              activation_bytes());
    compute(OpCode::AttentionResidualForward, ComputeKind::Elementwise, phase_, norm_tokens() * h,
            3 * e_ * norm_tokens() * h);
    compute(OpCode::MlpNormForward, ComputeKind::Norm, phase_, norm_flops(norm_tokens()), norm_bytes(norm_tokens()));
    if (sequence_parallel()) tp_sync(OpCode::TpMlpInputForward, CollectiveKind::AllGather, activation_bytes());
    matmul(OpCode::MlpUpForward, phase_, tokens_, up_width_ / s.tp, h);
    const double act_elements = tokens_ * model_.ffn_hidden / s.tp;
    const double act_in = model_.activation == Activation::SwiGlu ? 2 : 1;
    compute(OpCode::MlpActivationForward, ComputeKind::Elementwise, phase_, 10 * act_elements,
            e_ * act_elements * (act_in + 1));
    matmul(OpCode::MlpDownForward, phase_, tokens_, h, model_.ffn_hidden / static_cast<double>(s.tp));
    if (tensor_parallel())
      tp_sync(OpCode::TpMlpOutputForward,
              sequence_parallel() ? CollectiveKind::ReduceScatter : CollectiveKind::AllReduce,
              activation_bytes());
    compute(OpCode::MlpResidualForward, ComputeKind::Elementwise, phase_, norm_tokens() * h,
            3 * e_ * norm_tokens() * h);
  }

  void layer_backward() {
    const auto& s = strategy_;
    const double h = model_.hidden;
    if (s.recompute == Recompute::Full) {
      recompute_ = true;
      layer_forward();
      recompute_ = false;
    }
    const CollectiveKind input_grad_kind =
        sequence_parallel() ? CollectiveKind::ReduceScatter : CollectiveKind::AllReduce;
    // The residual backward is an identity (both branches read the residual gradient; the norm
    // backward adds its branch into it), so it carries no work and both executors cost it 0.
    compute(OpCode::MlpResidualBackward, ComputeKind::Elementwise, phase_, 0, 0);
    if (sequence_parallel()) tp_sync(OpCode::TpMlpOutputBackward, CollectiveKind::AllGather, activation_bytes());
    const double f_local = model_.ffn_hidden / static_cast<double>(s.tp);
    matmul(OpCode::MlpDownBackwardInput, Phase::BackwardInput, tokens_, f_local, h);
    matmul(OpCode::MlpDownBackwardWeight, Phase::BackwardWeight, h, f_local, tokens_);
    const double act_elements = tokens_ * model_.ffn_hidden / s.tp;
    const double act_in = model_.activation == Activation::SwiGlu ? 2 : 1;
    compute(OpCode::MlpActivationBackward, ComputeKind::Elementwise, Phase::BackwardInput,
            12 * act_elements, e_ * act_elements * (2 * act_in + 1));
    matmul(OpCode::MlpUpBackwardInput, Phase::BackwardInput, tokens_, h, up_width_ / s.tp);
    weight_grad_beside_input_grad_reduction(OpCode::TpMlpInputBackward, input_grad_kind, [&] {
      matmul(OpCode::MlpUpBackwardWeight, Phase::BackwardWeight, up_width_ / s.tp, h, tokens_);
    });
    compute(OpCode::MlpNormBackward, ComputeKind::Norm, Phase::BackwardInput, 2 * norm_flops(norm_tokens()),
            2 * norm_bytes(norm_tokens()));
    compute(OpCode::AttentionResidualBackward, ComputeKind::Elementwise, Phase::BackwardInput, 0, 0);
    if (sequence_parallel())
      tp_sync(OpCode::TpAttentionOutputBackward, CollectiveKind::AllGather, activation_bytes());
    matmul(OpCode::AttentionOutputBackwardInput, Phase::BackwardInput, tokens_, h / s.tp, h);
    matmul(OpCode::AttentionOutputBackwardWeight, Phase::BackwardWeight, h, h / s.tp, tokens_);
    if (s.recompute == Recompute::Selective) {
      recompute_ = true;
      attention_core_forward();
      recompute_ = false;
    }
    attention_core_backward();
    if (model_.position == Position::Rope) {
      const double elements = tokens_ * (h + kv_) / s.tp;
      compute(OpCode::RotaryBackward, ComputeKind::Elementwise, Phase::BackwardInput, 6 * elements,
              2 * e_ * elements);
    }
    matmul(OpCode::QkvBackwardInput, Phase::BackwardInput, tokens_, h, (h + 2 * kv_) / s.tp);
    weight_grad_beside_input_grad_reduction(OpCode::TpAttentionInputBackward, input_grad_kind, [&] {
      matmul(OpCode::QkvBackwardWeight, Phase::BackwardWeight, (h + 2 * kv_) / s.tp, h, tokens_);
    });
    compute(OpCode::AttentionNormBackward, ComputeKind::Norm, Phase::BackwardInput,
            2 * norm_flops(norm_tokens()), 2 * norm_bytes(norm_tokens()));
  }

  // ---- embedding and head -----------------------------------------------------------------------
  void embedding_forward() {
    const double h = model_.hidden;
    compute(OpCode::EmbeddingForward, ComputeKind::Embedding, phase_, tokens_ * h, 2 * e_ * tokens_ * h);
    if (tensor_parallel())
      tp_sync(OpCode::TpEmbeddingForward,
              sequence_parallel() ? CollectiveKind::ReduceScatter : CollectiveKind::AllReduce,
              activation_bytes());
  }

  void embedding_backward() {
    const double h = model_.hidden;
    if (sequence_parallel()) tp_sync(OpCode::TpEmbeddingBackward, CollectiveKind::AllGather, activation_bytes());
    compute(OpCode::EmbeddingBackward, ComputeKind::Embedding, Phase::BackwardWeight, tokens_ * h,
            3 * e_ * tokens_ * h);
  }

  void head_forward() {
    const double h = model_.hidden;
    compute(OpCode::FinalNormForward, ComputeKind::Norm, phase_, norm_flops(norm_tokens()), norm_bytes(norm_tokens()));
    if (sequence_parallel()) tp_sync(OpCode::TpLmHeadInputForward, CollectiveKind::AllGather, activation_bytes());
    matmul(OpCode::LmHeadForward, phase_, tokens_, vocab_local_, h);
    // Vocab-parallel cross-entropy reduces the row max, the sum of exponentials and the target
    // logit over the tp group (three fp32 values per token).
    if (tensor_parallel()) tp_sync(OpCode::TpCrossEntropyForward, CollectiveKind::AllReduce, 3 * 4 * tokens_);
    compute(OpCode::CrossEntropyForward, ComputeKind::Loss, phase_, 5 * tokens_ * vocab_local_,
            4 * 2 * tokens_ * vocab_local_);
  }

  void head_backward() {
    const double h = model_.hidden;
    compute(OpCode::CrossEntropyBackward, ComputeKind::Loss, Phase::BackwardInput, 4 * tokens_ * vocab_local_,
            4 * 2 * tokens_ * vocab_local_);
    matmul(OpCode::LmHeadBackwardInput, Phase::BackwardInput, tokens_, h, vocab_local_);
    weight_grad_beside_input_grad_reduction(
        OpCode::TpLmHeadInputBackward,
        sequence_parallel() ? CollectiveKind::ReduceScatter : CollectiveKind::AllReduce,
        [&] { matmul(OpCode::LmHeadBackwardWeight, Phase::BackwardWeight, vocab_local_, h, tokens_); });
    compute(OpCode::FinalNormBackward, ComputeKind::Norm, Phase::BackwardInput, 2 * norm_flops(norm_tokens()),
            2 * norm_bytes(norm_tokens()));
  }

  // ---- chunks and pipeline communication -------------------------------------------------------
  int first_layer(int chunk) const { return global_chunk(stage_, chunk, strategy_.pp) * layers_per_chunk_; }
  bool first_chunk_of_model(int chunk) const { return global_chunk(stage_, chunk, strategy_.pp) == 0; }
  bool last_chunk_of_model(int chunk) const {
    return global_chunk(stage_, chunk, strategy_.pp) == chunks_total_ - 1;
  }
  // Bytes one rank sends to its pipeline peer. With tensor parallelism every rank of the tp group
  // holds the same (b, s, h) activation; Megatron-LM sends only a 1/tp slice of it per rank —
  // sequence parallelism keeps activations sharded anyway, and without it the "scatter/gather"
  // optimisation (Narayanan et al. 2021, §4.1) splits the message over the tp ranks (their NICs)
  // and the receivers all-gather it over NVLink.
  double pipeline_message_bytes() const { return activation_bytes() / strategy_.tp; }

  void zero3_gathers(int chunk) {
    // ZeRO-3: gather each layer's parameter shards ahead of use (prefetched on the dp stream).
    if (strategy_.zero < 3 || data_ranks_ == 1) return;
    layer_gathers_.clear();
    for (int i = 0; i < layers_per_chunk_; ++i) {
      layer_ = first_layer(chunk) + i;
      const double bytes = e_ * layer_parameters_local(layer_);
      layer_gathers_.push_back(collective(OpCode::DpParameterGather, Stream::DpComm, CollectiveKind::AllGather,
                                          data_group_, bytes, {step_begin_}, strategy_.collective_algorithm));
    }
  }

  void forward_chunk(int micro_batch, int chunk) {
    micro_batch_ = micro_batch;
    chunk_ = chunk;
    phase_ = Phase::Forward;
    layer_ = -1;
    if (!first_chunk_of_model(chunk))
      pending_.push_back(send_recv(OpCode::PpRecvActivation, PeerKind::PreviousStage,
                                   pipeline_message_bytes(), {step_begin_}));
    zero3_gathers(chunk);
    if (first_chunk_of_model(chunk)) embedding_forward();
    for (int i = 0; i < layers_per_chunk_; ++i) {
      layer_ = first_layer(chunk) + i;
      if (!layer_gathers_.empty()) pending_.push_back(layer_gathers_[static_cast<std::size_t>(i)]);
      layer_forward();
    }
    layer_ = -1;
    if (last_chunk_of_model(chunk)) {
      head_forward();
    } else {
      sends_.push_back(send_recv(OpCode::PpSendActivation, PeerKind::NextStage, pipeline_message_bytes(),
                                 {last_compute()}));
    }
    layer_gathers_.clear();
  }

  void backward_chunk(int micro_batch, int chunk, bool last_backward_of_chunk) {
    micro_batch_ = micro_batch;
    chunk_ = chunk;
    phase_ = Phase::BackwardInput;
    layer_ = -1;
    if (!last_chunk_of_model(chunk))
      pending_.push_back(send_recv(OpCode::PpRecvGradient, PeerKind::NextStage, pipeline_message_bytes(),
                                   {step_begin_}));
    zero3_gathers(chunk);
    if (last_chunk_of_model(chunk)) {
      head_backward();
      if (last_backward_of_chunk) add_to_bucket(-1, true, false);
    }
    for (int i = layers_per_chunk_ - 1; i >= 0; --i) {
      layer_ = first_layer(chunk) + i;
      if (!layer_gathers_.empty()) pending_.push_back(layer_gathers_[static_cast<std::size_t>(i)]);
      layer_backward();
      if (last_backward_of_chunk) add_to_bucket(layer_, false, false);
    }
    layer_ = -1;
    phase_ = Phase::BackwardInput;
    if (first_chunk_of_model(chunk)) {
      embedding_backward();
      if (last_backward_of_chunk) add_to_bucket(-1, false, true);
    } else {
      sends_.push_back(send_recv(OpCode::PpSendGradient, PeerKind::PreviousStage, pipeline_message_bytes(),
                                 {last_compute()}));
    }
    if (last_backward_of_chunk) flush_bucket();
    layer_gathers_.clear();
  }

  // ---- data parallelism -------------------------------------------------------------------------
  double layer_parameters_local(int layer) const {
    double total = 0;
    for (const ParameterTensorSpec& tensor : tensors_)
      if (tensor.layer == layer) total += static_cast<double>(local_elements(tensor, strategy_.tp));
    return total;
  }

  double head_parameters_local() const {
    double total = 0;
    for (const ParameterTensorSpec& tensor : tensors_)
      if (tensor.layer < 0 && tensor.role != TensorRole::Embedding && tensor.role != TensorRole::Position)
        total += static_cast<double>(local_elements(tensor, strategy_.tp));
    if (model_.tied_embeddings && strategy_.pp == 1) return total;  // the embedding counts once
    return total;
  }

  double embedding_parameters_local() const {
    double total = 0;
    for (const ParameterTensorSpec& tensor : tensors_)
      if (tensor.role == TensorRole::Embedding || tensor.role == TensorRole::Position)
        total += static_cast<double>(local_elements(tensor, strategy_.tp));
    return total;
  }

  // The token embedding alone: what the last stage's copy of a tied embedding holds (it has no
  // position table) and what EmbeddingGradientReduce sums.
  double token_embedding_parameters_local() const {
    double total = 0;
    for (const ParameterTensorSpec& tensor : tensors_)
      if (tensor.role == TensorRole::Embedding) total += static_cast<double>(local_elements(tensor, strategy_.tp));
    return total;
  }

  void add_to_bucket(int layer, bool head, bool embedding) {
    double parameters = 0;
    if (head) {
      parameters = head_parameters_local();
      // Tied embeddings with pp > 1: the last stage holds a copy of the embedding too.
      if (model_.tied_embeddings && strategy_.pp > 1) parameters += token_embedding_parameters_local();
    } else if (embedding) {
      parameters = embedding_parameters_local();
    } else {
      parameters = layer_parameters_local(layer);
    }
    stage_parameters_ += parameters;
    bucket_parameters_ += parameters;
    if (bucket_parameters_ * gradient_bytes_ >= strategy_.grad_bucket_bytes) flush_bucket();
  }

  void flush_bucket() {
    if (bucket_parameters_ <= 0) return;
    buckets_.push_back({bucket_parameters_, last_compute()});
    if (data_ranks_ > 1 && strategy_.overlap_grad_reduce) reduce_bucket(buckets_.back());
    bucket_parameters_ = 0;
  }

  struct Bucket {
    double parameters = 0;
    std::uint32_t ready = 0;  // the op after which its gradients are final
    std::uint32_t reduce = kNone;
  };

  void reduce_bucket(Bucket& bucket) {
    const CollectiveKind kind = strategy_.zero == 0 ? CollectiveKind::AllReduce : CollectiveKind::ReduceScatter;
    const Phase saved = phase_;
    phase_ = Phase::BackwardWeight;
    const int saved_layer = layer_;
    layer_ = -1;
    const int saved_micro_batch = micro_batch_;
    micro_batch_ = -1;
    bucket.reduce = collective(OpCode::DpGradientReduce, Stream::DpComm, kind, data_group_,
                               bucket.parameters * gradient_bytes_, {bucket.ready},
                               strategy_.collective_algorithm);
    ops_[bucket.reduce].bucket = static_cast<std::int32_t>(&bucket - buckets_.data());
    phase_ = saved;
    layer_ = saved_layer;
    micro_batch_ = saved_micro_batch;
  }

  void finish_step() {
    const auto& s = strategy_;
    layer_ = -1;
    micro_batch_ = -1;
    chunk_ = 0;
    phase_ = Phase::Optimizer;
    flush_bucket();
    std::vector<std::uint32_t> before_optimizer{last_compute()};
    if (data_ranks_ > 1) {
      for (Bucket& bucket : buckets_) {
        if (bucket.reduce == kNone) {
          bucket.ready = last_compute();
          reduce_bucket(bucket);
        }
        before_optimizer.push_back(bucket.reduce);
      }
    }
    if (tensor_parallel() && sequence_parallel()) {
      // Norm weights are replicated across tp but see different tokens: sum their gradients.
      double norm_parameters = 0;
      for (const ParameterTensorSpec& tensor : tensors_)
        if (tensor.role == TensorRole::Vector && tensor.tp_shard_dim < 0 && holds(tensor))
          norm_parameters += static_cast<double>(tensor.elements());
      before_optimizer.push_back(collective(OpCode::TpNormGradientReduce, Stream::TpComm, CollectiveKind::AllReduce,
                                            GroupKind::Tensor, norm_parameters * gradient_bytes_,
                                            {last_compute()}));
    }
    if (model_.tied_embeddings && s.pp > 1 && (stage_ == 0 || stage_ == s.pp - 1)) {
      before_optimizer.push_back(collective(OpCode::EmbeddingGradientReduce, Stream::PpComm,
                                            CollectiveKind::AllReduce, GroupKind::EmbeddingTie,
                                            token_embedding_parameters_local() * gradient_bytes_, before_optimizer));
    }
    const int clip_ranks = s.outer.enabled() ? s.tp * s.pp * s.cp : s.dp * s.tp * s.pp * s.cp;
    if (training_.grad_clip > 0) {
      // The sum of squares of the final gradients this rank holds (its shard under ZeRO): one read.
      const double elements = local_parameters() / (s.zero >= 1 ? data_ranks_ : 1);
      const std::uint32_t norm = compute(OpCode::GradientNorm, ComputeKind::Elementwise, Phase::Optimizer,
                                         2 * elements, elements * gradient_bytes_, before_optimizer);
      before_optimizer.push_back(norm);
      if (clip_ranks > 1) {
        const GroupKind group = s.zero >= 1 ? GroupKind::World : GroupKind::ModelParallel;
        before_optimizer.push_back(
            collective(OpCode::GradientNormReduce, Stream::DpComm, CollectiveKind::AllReduce, group, 8, {norm}));
      }
    }
    optimizer_step(before_optimizer);
    std::vector<std::uint32_t> end_deps{last_compute()};
    if (s.zero >= 1 && s.zero <= 2 && data_ranks_ > 1) {
      // The updated parameter shards are gathered back to every data-parallel rank.
      for (std::size_t i = 0; i < buckets_.size(); ++i) {
        const std::uint32_t gather =
            collective(OpCode::DpParameterGather, Stream::DpComm, CollectiveKind::AllGather, data_group_,
                       buckets_[i].parameters * e_, {last_compute()}, s.collective_algorithm);
        ops_[gather].bucket = static_cast<std::int32_t>(i);
        end_deps.push_back(gather);
      }
    }
    if (s.outer.enabled()) end_deps.push_back(outer_synchronisation());
    for (std::uint32_t send : sends_) end_deps.push_back(send);
    Op end = marker(OpCode::StepEnd);
    end.deps = dedupe(std::move(end_deps));
    emit(std::move(end));
  }

  bool holds(const ParameterTensorSpec& tensor) const {
    const auto& s = strategy_;
    if (tensor.layer >= 0) return (tensor.layer / layers_per_chunk_) % s.pp == stage_;
    if (tensor.role == TensorRole::Embedding)
      return stage_ == 0 || (model_.tied_embeddings && stage_ == s.pp - 1);
    if (tensor.role == TensorRole::Position) return stage_ == 0;
    return stage_ == s.pp - 1;
  }

  // The parameters this rank holds (its stage, its tensor-parallel shard): what an outer method
  // synchronises.
  double local_parameters() const {
    double total = 0;
    for (const ParameterTensorSpec& tensor : tensors_)
      if (holds(tensor)) total += static_cast<double>(local_elements(tensor, strategy_.tp));
    return total;
  }

  // The outer synchronisation of strategy.outer, in the step in which it runs (every
  // sync_period() inner steps): the exchange over the workers and the outer update. Returns the
  // last op (StepEnd waits for it).
  std::uint32_t outer_synchronisation() {
    const auto& s = strategy_;
    const OuterSpec& o = s.outer;
    const double n = local_parameters();
    const int period = o.sync_period();
    std::uint32_t exchange = kNone;
    double elements = n;        // the outer update's elements
    double flops_per_element = 0;
    double accesses = 0;        // fp32 reads + writes per element
    switch (o.method) {
      case OuterMethod::None:
        return last_compute();
      case OuterMethod::Snoo:
        // Delta = slow - fast; b = mu b + Delta; slow -= lr (Delta + mu b); fast = slow.
        flops_per_element = 6;
        accesses = 7;
        break;
      case OuterMethod::DiLoCo:
        if (s.dp > 1)
          exchange = collective(OpCode::OuterSync, Stream::DpComm, CollectiveKind::AllReduce, GroupKind::Data,
                                4 * n, {last_compute()}, s.collective_algorithm);
        flops_per_element = 6;
        accesses = 8;  // the pseudo-gradient is written before the exchange and read after it
        break;
      case OuterMethod::StreamingDiLoCo: {
        // One fragment: the largest (fragments are equal to within one element).
        elements = std::ceil(n / o.fragments);
        if (s.dp > 1) {
          // With a delay the exchange started `delay` steps earlier and overlaps this step's compute;
          // without one it blocks after the inner optimizer step.
          const std::uint32_t start = o.delay > 0 ? step_begin_ : last_compute();
          exchange = collective(OpCode::OuterFragmentSync, Stream::DpComm, CollectiveKind::AllReduce,
                                GroupKind::Data, quantized_bytes(elements, o.quantize), {start},
                                s.collective_algorithm);
          ops_[exchange].bucket = 0;
          ops_[exchange].overlap_steps = o.delay;
        }
        // Pseudo-gradient, (de)quantization, Nesterov step, mixing with the local parameters.
        flops_per_element = o.quantize == OuterQuantization::None ? 9 : 13;
        accesses = 10;
        break;
      }
      case OuterMethod::NoLoCo:
        // OPTIMIZERS.md: delta = mu delta + lr mean(theta_j - phi_j) + lr (mean(phi_j) - phi), and
        // the two means sum to mean(theta_j) - phi: only the fast weights are averaged (fp32).
        exchange = collective(OpCode::OuterGroupAverage, Stream::DpComm, CollectiveKind::AllReduce,
                              GroupKind::OuterGroup, 4 * n, {last_compute()}, s.collective_algorithm);
        // delta = mu delta + lr (theta_mean - phi); phi += delta; theta = phi.
        flops_per_element = 5;
        accesses = 7;
        break;
    }
    if (exchange != kNone) ops_[exchange].period = period;
    std::vector<std::uint32_t> deps{last_compute()};
    if (exchange != kNone) deps.push_back(exchange);
    const std::uint32_t update = compute(OpCode::OuterStep, ComputeKind::Optimizer, Phase::Optimizer,
                                         flops_per_element * elements, 4 * accesses * elements, deps);
    ops_[update].period = period;
    if (o.method == OuterMethod::StreamingDiLoCo) ops_[update].bucket = 0;
    return update;
  }

  void optimizer_step(const std::vector<std::uint32_t>& deps) {
    const auto& s = strategy_;
    const double shards = s.zero >= 1 ? data_ranks_ : 1;
    double flops = 0;
    double state_bytes = 0;
    double comm_bytes = 0;
    double parameters = 0;
    for (const ParameterTensorSpec& tensor : tensors_) {
      if (!holds(tensor)) continue;
      const OptimizerTensorShape shape = local_optimizer_shape(tensor, s.tp);
      flops += optimizer_step_flops(optimizer_, shape);
      state_bytes += optimizer_state_bytes(optimizer_, shape);
      comm_bytes += optimizer_step_comm_bytes(optimizer_, shape, s.tp);
      parameters += static_cast<double>(local_elements(tensor, s.tp));
    }
    if (comm_bytes > 0 && tensor_parallel()) {
      pending_.push_back(collective(OpCode::OptimizerGather, Stream::TpComm, CollectiveKind::AllGather,
                                    GroupKind::Tensor, comm_bytes, deps));
    }
    const double master = s.precision == Precision::Fp32 ? 0 : 4;
    // Read gradients and weights, read and write optimizer state and master weights, write weights.
    const double bytes = (parameters * (gradient_bytes_ + 2 * e_ + 2 * master) + 2 * state_bytes) / shards;
    std::vector<std::uint32_t> all = deps;
    compute(OpCode::OptimizerStep, ComputeKind::Optimizer, Phase::Optimizer, flops / shards, bytes, all);
  }

  const ModelSpec& model_;
  const StrategySpec& strategy_;
  const TrainingSpec& training_;
  const int stage_;
  const double e_;
  double tokens_ = 0;
  int sp_divisor_ = 1;
  int layers_per_chunk_ = 1;
  int chunks_total_ = 1;
  double kv_ = 0;
  double up_width_ = 0;
  double vocab_local_ = 0;
  GroupKind data_group_ = GroupKind::Data;
  int data_ranks_ = 1;
  double gradient_bytes_ = 2;
  ResolvedOptimizer optimizer_;
  std::vector<ParameterTensorSpec> tensors_;

  std::vector<Op> ops_;
  std::uint32_t step_begin_ = 0;
  std::vector<std::uint32_t> pending_;  // explicit deps for the next compute op
  std::vector<std::uint32_t> sends_;
  std::vector<std::uint32_t> layer_gathers_;
  std::vector<Bucket> buckets_;
  double bucket_parameters_ = 0;
  double stage_parameters_ = 0;
  int layer_ = -1;
  int micro_batch_ = -1;
  int chunk_ = 0;
  Phase phase_ = Phase::Forward;
  bool recompute_ = false;
};

}  // namespace

Program build_program(const Scenario& scenario, const ProgramOptions& options) {
  assert(scenario.model && scenario.strategy);
  const StrategySpec& s = *scenario.strategy;
  Program program;
  program.layout = ParallelLayout(s.tp, s.cp, s.dp, s.pp, scenario.cluster.gpus_per_node);
  if (s.outer.method == OuterMethod::NoLoCo)
    program.layout.set_outer_groups(noloco_groups(scenario.training.seed, 0, s.dp, s.outer.group_size));
  for (int stage = 0; stage < s.pp; ++stage) program.stage_ops.push_back(StageBuilder(scenario, stage).build());

  const int world = program.layout.world_size();
  program.class_of_rank.assign(static_cast<std::size_t>(world), -1);
  // Ranks fold by pipeline stage, node group and site; NoLoCo ranks also by the sites their
  // outer group spans (a group inside a site and one across the WAN are not symmetric).
  auto group_sites = [&](int rank) {
    std::vector<int> sites;
    if (s.outer.method != OuterMethod::NoLoCo || !scenario.cluster.has_wan()) return sites;
    for (int member : program.layout.group_of(rank, GroupKind::OuterGroup))
      sites.push_back(scenario.cluster.site_of_node(program.layout.node_of(member)));
    std::sort(sites.begin(), sites.end());
    sites.erase(std::unique(sites.begin(), sites.end()), sites.end());
    return sites;
  };
  std::map<std::tuple<int, int, int, std::vector<int>>, int> class_of_key;
  for (int rank = 0; rank < world; ++rank) {
    const int stage = program.layout.coordinates(rank).pp;
    const int node = program.layout.node_of(rank);
    const int group = scenario.cluster.group_index_of_node(node);
    const int site = scenario.cluster.site_of_node(node);
    int class_id = -1;
    if (options.fold) {
      auto [it, inserted] = class_of_key.emplace(std::make_tuple(stage, group, site, group_sites(rank)),
                                                 static_cast<int>(program.classes.size()));
      class_id = it->second;
      if (inserted) program.classes.push_back({class_id, stage, group, site, {}});
    } else {
      class_id = static_cast<int>(program.classes.size());
      program.classes.push_back({class_id, stage, group, site, {}});
    }
    program.classes[static_cast<std::size_t>(class_id)].ranks.push_back(rank);
    program.class_of_rank[static_cast<std::size_t>(rank)] = class_id;
  }
  return program;
}

}  // namespace tandem::strategy
