#pragma once
// Formulas for GPT-style models: parameters, FLOPs, activation memory. Each is traceable to a
// paper (shared/reference/PUBLISHED.md):
//   Narayanan et al. 2021 (Megatron-LM at scale), §5.1: parameters and FLOPs per iteration;
//   Korthikanti et al. 2022 (reducing activation recomputation): activation bytes per layer.
// The general functions below work for GQA, SwiGLU, RMSNorm and RoPE and reduce exactly to the
// papers' closed forms for the GPT architecture they describe (tested).

#include <cstdint>
#include <string>
#include <vector>

#include "strategy/scenario.hpp"

namespace tandem::strategy {

// ---- closed forms from the papers (used by tests and reports) --------------------------------
// P = 12·l·h²·(1 + 13/(12h) + (V+s)/(12·l·h))
double narayanan_parameter_count(double layers, double hidden, double vocab, double seq_len);
// F = 96·B·s·l·h²·(1 + s/(6h) + V/(16·l·h)): Megatron's count with full recomputation.
double narayanan_flops_full_recompute(double batch, double seq_len, double layers, double hidden,
                                      double vocab);
// 72·B·l·s·h²·(1 + s/(6h) + V/(12·h·l)): model FLOPs (no recompute), used for MFU.
double megatron_model_flops(double batch, double seq_len, double layers, double hidden, double vocab);

// ---- the model's tensors ----------------------------------------------------------------------
enum class TensorRole : std::uint8_t { Embedding, Position, OutputHead, HiddenMatrix, Vector };

struct ParameterTensorSpec {
  std::string name;   // "layers.3.attn.qkv.weight"
  int layer = -1;     // -1: embedding/head/final norm
  std::int64_t rows = 0;  // fan_out (PyTorch Linear [out, in]); vectors: length
  std::int64_t cols = 1;  // fan_in; vectors: 1
  TensorRole role = TensorRole::Vector;
  bool attention_or_mlp = false;
  // How tensor parallelism splits it: 0 = rows (column-parallel / vocab-parallel), 1 = cols
  // (row-parallel), -1 = replicated.
  int tp_shard_dim = -1;
  std::int64_t elements() const { return rows * cols; }
};

// Linear layers carry biases in LayerNorm (GPT-2/Megatron) models and none in RMSNorm
// (LLaMA-style) models, as those families do.
bool model_has_biases(const ModelSpec& model);
// Vocabulary padded to a multiple of tp (vocab-parallel embedding and head need equal shards).
std::int64_t padded_vocab(const ModelSpec& model, int tp);
// Every parameter tensor of the full (unsharded) model in forward order. The output head is
// absent when embeddings are tied.
std::vector<ParameterTensorSpec> parameter_tensors(const ModelSpec& model, int tp = 1);
std::int64_t parameter_count(const ModelSpec& model);
std::int64_t parameters_per_layer(const ModelSpec& model);
// Elements of `tensor` held by one tensor-parallel rank.
std::int64_t local_elements(const ParameterTensorSpec& tensor, int tp);

// ---- FLOPs --------------------------------------------------------------------------------------
// Forward FLOPs of one layer for `tokens` tokens of sequence length s (matmuls and attention
// scores/values counted in full, as the papers do).
double layer_forward_flops(const ModelSpec& model, double batch);
double head_forward_flops(const ModelSpec& model, double batch);
// Model FLOPs of one step (forward + backward = 3x forward, no recompute): the MFU numerator.
double model_flops_per_step(const ModelSpec& model, double global_batch);

// ---- activation memory (Korthikanti et al. 2022) -------------------------------------------------
// Closed forms in bytes per layer for 16-bit activations; a heads, t tensor-parallel size.
double korthikanti_activation_bytes(double s, double b, double h, double a, double t,
                                    bool sequence_parallel, Recompute recompute);

struct ActivationOptions {
  int tp = 1;
  int cp = 1;
  bool sequence_parallel = false;
  Recompute recompute = Recompute::None;
  double bytes_per_element = 2;  // dropout masks (model.dropout > 0) take 1 byte per element
};
// Bytes of activations one transformer layer keeps for backward, per micro-batch of b
// sequences, for any model of the schema. Equals the closed form for the GPT architecture.
double activation_bytes_per_layer(const ModelSpec& model, double micro_batch,
                                  const ActivationOptions& options);

}  // namespace tandem::strategy
