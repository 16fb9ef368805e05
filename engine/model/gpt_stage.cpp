#include "engine/model/gpt_stage.hpp"

#include <cassert>
#include <stdexcept>
#include <string>

namespace tandem::engine {

using strategy::Op;
using strategy::OpCode;

template <typename Scalar>
GptStage<Scalar>::GptStage(Backend<Scalar>& backend, const strategy::ModelSpec& model, const StageGeometry& geometry,
                           double grad_bucket_bytes, int zero_stage)
    : backend_(&backend),
      g_(geometry),
      params_(backend, make_parameter_layout(model, geometry, grad_bucket_bytes, zero_stage)) {
  auto value = [&](const std::string& name) { return params_.value(name); };
  auto grad = [&](const std::string& name) { return params_.grad(name); };
  for (int i = 0; i < g_.stage_layers; ++i) {
    const std::string p = "layers." + std::to_string(g_.first_layer + i) + ".";
    for (int which = 0; which < 2; ++which) {
      auto get = [&](const std::string& name) { return which == 0 ? value(name) : grad(name); };
      LayerWeights w;
      w.attn_norm_w = get(p + "attn_norm.weight");
      w.attn_norm_b = get(p + "attn_norm.bias");
      w.qkv_w = get(p + "attn.qkv.weight");
      w.qkv_b = get(p + "attn.qkv.bias");
      w.out_w = get(p + "attn.out.weight");
      w.out_b = get(p + "attn.out.bias");
      w.mlp_norm_w = get(p + "mlp_norm.weight");
      w.mlp_norm_b = get(p + "mlp_norm.bias");
      w.up_w = get(p + "mlp.up.weight");
      w.up_b = get(p + "mlp.up.bias");
      w.down_w = get(p + "mlp.down.weight");
      w.down_b = get(p + "mlp.down.bias");
      (which == 0 ? weights_ : grads_).push_back(w);
    }
  }
  token_table_ = value("embedding.token.weight");
  token_table_grad_ = grad("embedding.token.weight");
  position_table_ = value("embedding.position.weight");
  position_table_grad_ = grad("embedding.position.weight");
  final_norm_w_ = value("final_norm.weight");
  final_norm_b_ = value("final_norm.bias");
  final_norm_w_grad_ = grad("final_norm.weight");
  final_norm_b_grad_ = grad("final_norm.bias");
  if (g_.last_stage) {
    head_ = g_.tied ? token_table_ : value("head.weight");
    head_grad_ = g_.tied ? token_table_grad_ : grad("head.weight");
    assert(head_ != nullptr);
  }
  allocate_activations();
}

template <typename Scalar>
Scalar* GptStage<Scalar>::carve(std::size_t n) {
  const std::size_t rounded = (n + 15) / 16 * 16;  // 64-byte aligned pieces
  if (sizing_) {
    arena_needed_ += rounded;
    return nullptr;
  }
  Scalar* p = arena_.data() + arena_used_;
  arena_used_ += rounded;
  return p;
}

template <typename Scalar>
void GptStage<Scalar>::allocate_activations() {
  const std::size_t M = static_cast<std::size_t>(g_.M), Mn = static_cast<std::size_t>(g_.Mn);
  const std::size_t C = static_cast<std::size_t>(g_.C);
  const bool sp = g_.sequence_parallel;
  const int internal_slots = g_.recompute_full ? 1 : g_.slots;
  for (int pass = 0; pass < 2; ++pass) {
    sizing_ = pass == 0;
    if (!sizing_) {
      arena_ = DeviceBuffer<Scalar>(*backend_, arena_needed_);
      arena_used_ = 0;
    }
    layer_activations_.assign(static_cast<std::size_t>(g_.stage_layers), {});
    for (auto& per_layer : layer_activations_) {
      per_layer.resize(static_cast<std::size_t>(internal_slots));
      for (LayerActivations& a : per_layer) {
        a.ln1 = carve(Mn * C);
        a.ln1_mean = carve(Mn);
        a.ln1_rstd = carve(Mn);
        a.ln1_full = sp ? carve(M * C) : nullptr;
        a.qkv = carve(M * g_.qkv_width);
        a.att = carve(M * g_.attention_width);
        a.att_lse = carve(static_cast<std::size_t>(g_.B) * g_.Hq * g_.T);
        a.x_mid = carve(Mn * C);
        a.ln2 = carve(Mn * C);
        a.ln2_mean = carve(Mn);
        a.ln2_rstd = carve(Mn);
        a.ln2_full = sp ? carve(M * C) : nullptr;
        a.fch = carve(M * g_.up_width);
        a.fch_act = carve(M * g_.F);
      }
    }
    head_activations_.assign(g_.last_stage ? static_cast<std::size_t>(g_.slots) : 0, {});
    for (HeadActivations& h : head_activations_) {
      h.lnf = carve(Mn * C);
      h.lnf_mean = carve(Mn);
      h.lnf_rstd = carve(Mn);
      h.lnf_full = sp ? carve(M * C) : nullptr;
      h.logits = carve(M * g_.V);
      h.losses = carve(M);
      h.lse = carve(M);
      h.stats = g_.tp > 1 ? carve(3 * M) : nullptr;
      h.gathered = g_.tp > 1 ? carve(3 * M * g_.tp) : nullptr;
    }
    residuals_.assign(static_cast<std::size_t>(g_.slots) * (g_.stage_layers + 1), nullptr);
    for (Scalar*& r : residuals_) r = carve(Mn * C);
    residual_grads_.assign(static_cast<std::size_t>(g_.slots), nullptr);
    for (Scalar*& r : residual_grads_) r = carve(Mn * C);
    embedding_out_ = (g_.first_stage && sp) ? carve(M * C) : nullptr;
    proj_full_ = carve(M * C);
    proj_shard_ = sp ? carve(Mn * C) : nullptr;
    residual_grad_full_ = sp ? carve(M * C) : nullptr;
    dln_ = carve(M * C);
    dln_shard_ = sp ? carve(Mn * C) : nullptr;
    datt_ = carve(M * g_.attention_width);
    dqkv_ = carve(M * g_.qkv_width);
    dfch_act_ = carve(M * g_.F);
    dfch_ = carve(M * g_.up_width);
  }
  for (std::int32_t* p : token_buffers_) backend_->release_tokens(p);
  token_buffers_.clear();
  inputs_.assign(static_cast<std::size_t>(g_.slots), nullptr);
  targets_.assign(static_cast<std::size_t>(g_.slots), nullptr);
  host_targets_.assign(static_cast<std::size_t>(g_.slots), {});
  for (int s = 0; s < g_.slots; ++s) {
    if (g_.first_stage) token_buffers_.push_back(inputs_[s] = backend_->allocate_tokens(M));
    if (g_.last_stage) token_buffers_.push_back(targets_[s] = backend_->allocate_tokens(M));
  }
}

template <typename Scalar>
void GptStage<Scalar>::set_inputs(int micro_batch, std::span<const std::int32_t> inputs) {
  if (!g_.first_stage) return;
  if (inputs.size() != static_cast<std::size_t>(g_.M)) throw std::invalid_argument("set_inputs: wrong token count");
  backend_->upload_tokens(inputs_[slot_of(micro_batch)], inputs.data(), inputs.size());
}

template <typename Scalar>
void GptStage<Scalar>::set_targets(int micro_batch, std::span<const std::int32_t> targets) {
  if (!g_.last_stage) return;
  if (targets.size() != static_cast<std::size_t>(g_.M)) throw std::invalid_argument("set_targets: wrong token count");
  const int s = slot_of(micro_batch);
  backend_->upload_tokens(targets_[s], targets.data(), targets.size());
  host_targets_[s].assign(targets.begin(), targets.end());
}

template <typename Scalar>
int GptStage<Scalar>::local_layer(const Op& op) const {
  const int l = op.layer - g_.first_layer;
  assert(l >= 0 && l < g_.stage_layers);
  return l;
}

template <typename Scalar>
typename GptStage<Scalar>::LayerActivations& GptStage<Scalar>::internals(int layer, int micro_batch) {
  const int index = g_.recompute_full ? 0 : slot_of(micro_batch);
  return layer_activations_[static_cast<std::size_t>(layer)][static_cast<std::size_t>(index)];
}

template <typename Scalar>
Scalar* GptStage<Scalar>::residual(int slot, int index) const {
  return residuals_[static_cast<std::size_t>(slot) * (g_.stage_layers + 1) + static_cast<std::size_t>(index)];
}

template <typename Scalar>
const Scalar* GptStage<Scalar>::logits(int micro_batch) const {
  return head_activations_.at(static_cast<std::size_t>(slot_of(micro_batch))).logits;
}

template <typename Scalar>
void GptStage<Scalar>::norm_forward(Scalar* out, Scalar* mean, Scalar* rstd, const Scalar* inp, const Scalar* w,
                                    const Scalar* b, int rows) {
  if (g_.rmsnorm) {
    backend_->rmsnorm_forward(out, rstd, inp, w, rows, g_.C);
  } else {
    backend_->layernorm_forward(out, mean, rstd, inp, w, b, rows, g_.C);
  }
}

template <typename Scalar>
void GptStage<Scalar>::norm_backward(Scalar* dinp, Scalar* dw, Scalar* db, const Scalar* dout, const Scalar* inp,
                                     const Scalar* w, const Scalar* mean, const Scalar* rstd, int rows,
                                     bool accumulate) {
  if (g_.rmsnorm) {
    backend_->rmsnorm_backward(dinp, dw, dout, inp, w, rstd, rows, g_.C, accumulate);
  } else {
    backend_->layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, rows, g_.C, accumulate);
  }
}

template <typename Scalar>
const Scalar* GptStage<Scalar>::output_gradient(int slot) const {
  return g_.sequence_parallel ? residual_grad_full_ : residual_grads_[static_cast<std::size_t>(slot)];
}

template <typename Scalar>
void GptStage<Scalar>::row_parallel_weight_backward(Scalar* dw, Scalar* db, const Scalar* input, int K, int slot) {
  const Scalar* G = output_gradient(slot);
  backend_->matmul_backward_weight(dw, nullptr, G, input, g_.M, K, g_.C);
  if (db == nullptr) return;
  // The bias is replicated over tp. Without sequence parallelism every rank sees the whole
  // gradient (identical sums); with it each rank sums its own tokens and the program's
  // TpNormGradientReduce adds the shards.
  if (g_.sequence_parallel) {
    backend_->bias_backward(db, residual_grads_[static_cast<std::size_t>(slot)], g_.Mn, g_.C);
  } else {
    backend_->bias_backward(db, G, g_.M, g_.C);
  }
}

template <typename Scalar>
void GptStage<Scalar>::run(const Op& op) {
  Backend<Scalar>& be = *backend_;
  const int mb = op.micro_batch;
  const int s = mb >= 0 ? slot_of(mb) : 0;
  const int M = g_.M, Mn = g_.Mn, C = g_.C;
  const bool sp = g_.sequence_parallel;
  const bool tp = g_.tp > 1;
  switch (op.code) {
    case OpCode::StepBegin:
    case OpCode::StepEnd:
      return;
    case OpCode::GradientZero:
      params_.zero_grads();
      return;

    // ---- embedding ------------------------------------------------------------------------
    case OpCode::EmbeddingForward: {
      // out (M,C): vocab-parallel partial sums (positions added on tensor-parallel rank 0 only).
      Scalar* out = sp ? embedding_out_ : residual(s, 0);
      const Scalar* positions = (g_.learned_positions && g_.tp_rank == 0) ? position_table_ : nullptr;
      be.embedding_forward(out, inputs_[s], token_table_, positions, g_.B, g_.T, C, g_.vocab_start, g_.V);
      return;
    }
    case OpCode::EmbeddingBackward: {
      const Scalar* G = output_gradient(s);
      be.embedding_backward(token_table_grad_, g_.learned_positions ? position_table_grad_ : nullptr, G,
                            inputs_[s], g_.B, g_.T, C, g_.vocab_start, g_.V);
      return;
    }

    // ---- attention block --------------------------------------------------------------------
    case OpCode::AttentionNormForward: {
      const int l = local_layer(op);
      LayerActivations& a = internals(l, mb);
      const LayerWeights& w = weights_[l];
      norm_forward(a.ln1, a.ln1_mean, a.ln1_rstd, residual(s, l), w.attn_norm_w, w.attn_norm_b, Mn);
      return;
    }
    case OpCode::QkvForward: {
      const int l = local_layer(op);
      LayerActivations& a = internals(l, mb);
      const LayerWeights& w = weights_[l];
      be.matmul_forward(a.qkv, sp ? a.ln1_full : a.ln1, w.qkv_w, w.qkv_b, M, C, g_.qkv_width);
      return;
    }
    case OpCode::RotaryForward: {
      LayerActivations& a = internals(local_layer(op), mb);
      be.rope_forward(a.qkv, g_.B, g_.T, g_.Hq, g_.Hkv, g_.D, g_.rope_theta);
      return;
    }
    case OpCode::AttentionCoreForward: {
      LayerActivations& a = internals(local_layer(op), mb);
      be.attention_forward(a.att, a.att_lse, a.qkv, g_.B, g_.T, g_.Hq, g_.Hkv, g_.D);
      return;
    }
    case OpCode::AttentionOutputForward: {
      const int l = local_layer(op);
      LayerActivations& a = internals(l, mb);
      const LayerWeights& w = weights_[l];
      // Row-parallel: the bias is added once (rank 0) before the reduction.
      be.matmul_forward(proj_full_, a.att, w.out_w, g_.tp_rank == 0 ? w.out_b : nullptr, M, g_.attention_width, C);
      return;
    }
    case OpCode::AttentionResidualForward: {
      const int l = local_layer(op);
      LayerActivations& a = internals(l, mb);
      be.residual_forward(a.x_mid, residual(s, l), sp ? proj_shard_ : proj_full_, static_cast<std::size_t>(Mn) * C);
      return;
    }

    // ---- MLP block ------------------------------------------------------------------------------
    case OpCode::MlpNormForward: {
      const int l = local_layer(op);
      LayerActivations& a = internals(l, mb);
      const LayerWeights& w = weights_[l];
      norm_forward(a.ln2, a.ln2_mean, a.ln2_rstd, a.x_mid, w.mlp_norm_w, w.mlp_norm_b, Mn);
      return;
    }
    case OpCode::MlpUpForward: {
      const int l = local_layer(op);
      LayerActivations& a = internals(l, mb);
      const LayerWeights& w = weights_[l];
      be.matmul_forward(a.fch, sp ? a.ln2_full : a.ln2, w.up_w, w.up_b, M, C, g_.up_width);
      return;
    }
    case OpCode::MlpActivationForward: {
      LayerActivations& a = internals(local_layer(op), mb);
      if (g_.swiglu) {
        be.swiglu_forward(a.fch_act, a.fch, M, g_.F);
      } else {
        be.gelu_forward(a.fch_act, a.fch, static_cast<std::size_t>(M) * g_.F);
      }
      return;
    }
    case OpCode::MlpDownForward: {
      const int l = local_layer(op);
      LayerActivations& a = internals(l, mb);
      const LayerWeights& w = weights_[l];
      be.matmul_forward(proj_full_, a.fch_act, w.down_w, g_.tp_rank == 0 ? w.down_b : nullptr, M, g_.F, C);
      return;
    }
    case OpCode::MlpResidualForward: {
      if (op.recompute) return;  // the layer's output is not needed by its backward
      const int l = local_layer(op);
      LayerActivations& a = internals(l, mb);
      be.residual_forward(residual(s, l + 1), a.x_mid, sp ? proj_shard_ : proj_full_,
                          static_cast<std::size_t>(Mn) * C);
      return;
    }

    // ---- head -------------------------------------------------------------------------------------
    case OpCode::FinalNormForward: {
      HeadActivations& h = head_activations_[s];
      norm_forward(h.lnf, h.lnf_mean, h.lnf_rstd, residual(s, g_.stage_layers), final_norm_w_, final_norm_b_, Mn);
      return;
    }
    case OpCode::LmHeadForward: {
      HeadActivations& h = head_activations_[s];
      be.matmul_forward(h.logits, sp ? h.lnf_full : h.lnf, head_, nullptr, M, C, g_.V);
      // Vocab-parallel: this shard's softmax statistics, fused here so that the one tensor-
      // parallel collective (TpCrossEntropyForward) only moves 3 values per token.
      if (tp) be.vocab_parallel_statistics(h.stats, h.logits, targets_[s], M, g_.V, g_.vocab_start, g_.vocab);
      return;
    }
    case OpCode::CrossEntropyForward: {
      HeadActivations& h = head_activations_[s];
      if (tp) {
        be.vocab_parallel_combine(h.losses, h.lse, h.gathered, targets_[s], M, g_.tp);
      } else {
        be.cross_entropy_forward(h.losses, h.lse, h.logits, targets_[s], M, g_.V, g_.vocab);
      }
      loss_sum_ += be.sum(h.losses, static_cast<std::size_t>(M));
      for (std::int32_t t : host_targets_[s]) loss_tokens_ += t >= 0 ? 1 : 0;
      return;
    }
    case OpCode::CrossEntropyBackward: {
      HeadActivations& h = head_activations_[s];
      const Scalar dloss = static_cast<Scalar>(dloss_);
      // In place: the logits become their gradient.
      if (tp) {
        be.vocab_parallel_backward(h.logits, h.logits, h.lse, targets_[s], dloss, M, g_.V, g_.vocab_start, g_.vocab);
      } else {
        be.cross_entropy_backward(h.logits, h.logits, h.lse, targets_[s], dloss, M, g_.V, g_.vocab);
      }
      return;
    }
    case OpCode::LmHeadBackwardInput: {
      HeadActivations& h = head_activations_[s];
      be.matmul_backward_input(dln_, h.logits, head_, M, C, g_.V, false);
      return;
    }
    case OpCode::LmHeadBackwardWeight: {
      HeadActivations& h = head_activations_[s];
      be.matmul_backward_weight(head_grad_, nullptr, h.logits, sp ? h.lnf_full : h.lnf, M, C, g_.V);
      return;
    }
    case OpCode::FinalNormBackward: {
      HeadActivations& h = head_activations_[s];
      norm_backward(residual_grads_[s], final_norm_w_grad_, final_norm_b_grad_, sp ? dln_shard_ : dln_,
                    residual(s, g_.stage_layers), final_norm_w_, h.lnf_mean, h.lnf_rstd, Mn, false);
      return;
    }

    // ---- layer backward -----------------------------------------------------------------------
    case OpCode::MlpResidualBackward:
    case OpCode::AttentionResidualBackward:
      return;  // identity: both branches read the residual gradient
    case OpCode::MlpDownBackwardInput: {
      const int l = local_layer(op);
      be.matmul_backward_input(dfch_act_, output_gradient(s), weights_[l].down_w, M, g_.F, C, false);
      return;
    }
    case OpCode::MlpDownBackwardWeight: {
      const int l = local_layer(op);
      row_parallel_weight_backward(grads_[l].down_w, grads_[l].down_b, internals(l, mb).fch_act, g_.F, s);
      return;
    }
    case OpCode::MlpActivationBackward: {
      LayerActivations& a = internals(local_layer(op), mb);
      if (g_.swiglu) {
        be.swiglu_backward(dfch_, a.fch, dfch_act_, M, g_.F);
      } else {
        be.gelu_backward(dfch_, a.fch, dfch_act_, static_cast<std::size_t>(M) * g_.F);
      }
      return;
    }
    case OpCode::MlpUpBackwardInput: {
      const int l = local_layer(op);
      be.matmul_backward_input(dln_, dfch_, weights_[l].up_w, M, C, g_.up_width, false);
      return;
    }
    case OpCode::MlpUpBackwardWeight: {
      const int l = local_layer(op);
      LayerActivations& a = internals(l, mb);
      be.matmul_backward_weight(grads_[l].up_w, grads_[l].up_b, dfch_, sp ? a.ln2_full : a.ln2, M, C, g_.up_width);
      return;
    }
    case OpCode::MlpNormBackward: {
      const int l = local_layer(op);
      LayerActivations& a = internals(l, mb);
      norm_backward(residual_grads_[s], grads_[l].mlp_norm_w, grads_[l].mlp_norm_b, sp ? dln_shard_ : dln_, a.x_mid,
                    weights_[l].mlp_norm_w, a.ln2_mean, a.ln2_rstd, Mn, true);
      return;
    }
    case OpCode::AttentionOutputBackwardInput: {
      const int l = local_layer(op);
      be.matmul_backward_input(datt_, output_gradient(s), weights_[l].out_w, M, g_.attention_width, C, false);
      return;
    }
    case OpCode::AttentionOutputBackwardWeight: {
      const int l = local_layer(op);
      row_parallel_weight_backward(grads_[l].out_w, grads_[l].out_b, internals(l, mb).att, g_.attention_width, s);
      return;
    }
    case OpCode::AttentionCoreBackward: {
      LayerActivations& a = internals(local_layer(op), mb);
      be.attention_backward(dqkv_, datt_, a.qkv, a.att, a.att_lse, g_.B, g_.T, g_.Hq, g_.Hkv, g_.D);
      return;
    }
    case OpCode::RotaryBackward:
      be.rope_backward(dqkv_, g_.B, g_.T, g_.Hq, g_.Hkv, g_.D, g_.rope_theta);
      return;
    case OpCode::QkvBackwardInput: {
      const int l = local_layer(op);
      be.matmul_backward_input(dln_, dqkv_, weights_[l].qkv_w, M, C, g_.qkv_width, false);
      return;
    }
    case OpCode::QkvBackwardWeight: {
      const int l = local_layer(op);
      LayerActivations& a = internals(l, mb);
      be.matmul_backward_weight(grads_[l].qkv_w, grads_[l].qkv_b, dqkv_, sp ? a.ln1_full : a.ln1, M, C,
                                g_.qkv_width);
      return;
    }
    case OpCode::AttentionNormBackward: {
      const int l = local_layer(op);
      LayerActivations& a = internals(l, mb);
      norm_backward(residual_grads_[s], grads_[l].attn_norm_w, grads_[l].attn_norm_b, sp ? dln_shard_ : dln_,
                    residual(s, l), weights_[l].attn_norm_w, a.ln1_mean, a.ln1_rstd, Mn, true);
      return;
    }
    default:
      throw std::logic_error("GptStage::run: op " + std::to_string(op.id) + " (" +
                             std::string(strategy::to_string(op.code)) + ") is not a compute op of the model");
  }
}

template <typename Scalar>
CommBuffers<Scalar> GptStage<Scalar>::comm_buffers(const Op& op) {
  const int mb = op.micro_batch;
  const int s = mb >= 0 ? slot_of(mb) : 0;
  const std::size_t MC = static_cast<std::size_t>(g_.M) * g_.C;
  const std::size_t MnC = static_cast<std::size_t>(g_.Mn) * g_.C;
  const bool sp = g_.sequence_parallel;
  auto all_reduce = [](Scalar* buffer, std::size_t count) { return CommBuffers<Scalar>{buffer, buffer, count}; };
  auto layer = [&]() -> LayerActivations& { return internals(local_layer(op), mb); };
  switch (op.code) {
    case OpCode::TpEmbeddingForward:
      return sp ? CommBuffers<Scalar>{embedding_out_, residual(s, 0), MnC} : all_reduce(residual(s, 0), MC);
    case OpCode::TpAttentionInputForward:
      return {layer().ln1, layer().ln1_full, MnC};
    case OpCode::TpMlpInputForward:
      return {layer().ln2, layer().ln2_full, MnC};
    case OpCode::TpAttentionOutputForward:
    case OpCode::TpMlpOutputForward:
      return sp ? CommBuffers<Scalar>{proj_full_, proj_shard_, MnC} : all_reduce(proj_full_, MC);
    case OpCode::TpLmHeadInputForward:
      return {head_activations_[s].lnf, head_activations_[s].lnf_full, MnC};
    case OpCode::TpCrossEntropyForward:
      return {head_activations_[s].stats, head_activations_[s].gathered, 3 * static_cast<std::size_t>(g_.M)};
    case OpCode::TpLmHeadInputBackward:
    case OpCode::TpMlpInputBackward:
    case OpCode::TpAttentionInputBackward:
      return sp ? CommBuffers<Scalar>{dln_, dln_shard_, MnC} : all_reduce(dln_, MC);
    case OpCode::TpAttentionOutputBackward:
    case OpCode::TpMlpOutputBackward:
    case OpCode::TpEmbeddingBackward:
      return {residual_grads_[s], residual_grad_full_, MnC};
    case OpCode::PpSendActivation:
      return {residual(s, g_.stage_layers), nullptr, MnC};
    case OpCode::PpRecvActivation:
      return {nullptr, residual(s, 0), MnC};
    case OpCode::PpSendGradient:
      return {residual_grads_[s], nullptr, MnC};
    case OpCode::PpRecvGradient:
      return {nullptr, residual_grads_[s], MnC};
    default:
      throw std::logic_error("GptStage::comm_buffers: op " + std::to_string(op.id) + " (" +
                             std::string(strategy::to_string(op.code)) + ") has no model buffers");
  }
}

template class GptStage<float>;
template class GptStage<double>;

}  // namespace tandem::engine
