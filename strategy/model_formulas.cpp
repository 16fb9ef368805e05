#include "strategy/model_formulas.hpp"

namespace tandem::strategy {

double narayanan_parameter_count(double l, double h, double V, double s) {
  return 12 * l * h * h * (1 + 13 / (12 * h) + (V + s) / (12 * l * h));
}

double narayanan_flops_full_recompute(double B, double s, double l, double h, double V) {
  return 96 * B * s * l * h * h * (1 + s / (6 * h) + V / (16 * l * h));
}

double megatron_model_flops(double B, double s, double l, double h, double V) {
  return 72 * B * l * s * h * h * (1 + s / (6 * h) + V / (12 * h * l));
}

bool model_has_biases(const ModelSpec& model) { return model.norm == Norm::LayerNorm; }

std::int64_t padded_vocab(const ModelSpec& model, int tp) {
  return (static_cast<std::int64_t>(model.vocab) + tp - 1) / tp * tp;
}

std::vector<ParameterTensorSpec> parameter_tensors(const ModelSpec& m, int tp) {
  std::vector<ParameterTensorSpec> tensors;
  const std::int64_t h = m.hidden;
  const std::int64_t kv = static_cast<std::int64_t>(m.kv_heads) * m.head_dim();
  const std::int64_t up_rows = m.activation == Activation::SwiGlu ? 2LL * m.ffn_hidden : m.ffn_hidden;
  const bool biases = model_has_biases(m);
  const bool norm_bias = m.norm == Norm::LayerNorm;
  auto add = [&](std::string name, int layer, std::int64_t rows, std::int64_t cols, TensorRole role,
                 bool attention_or_mlp, int shard) {
    tensors.push_back({std::move(name), layer, rows, cols, role, attention_or_mlp, shard});
  };
  const std::int64_t vocab = padded_vocab(m, tp);
  add("embedding.token.weight", -1, vocab, h, TensorRole::Embedding, false, 0);
  if (m.position == Position::Learned)
    add("embedding.position.weight", -1, m.seq_len, h, TensorRole::Position, false, -1);
  for (int layer = 0; layer < m.layers; ++layer) {
    const std::string p = "layers." + std::to_string(layer) + ".";
    add(p + "attn_norm.weight", layer, h, 1, TensorRole::Vector, false, -1);
    if (norm_bias) add(p + "attn_norm.bias", layer, h, 1, TensorRole::Vector, false, -1);
    add(p + "attn.qkv.weight", layer, h + 2 * kv, h, TensorRole::HiddenMatrix, true, 0);
    if (biases) add(p + "attn.qkv.bias", layer, h + 2 * kv, 1, TensorRole::Vector, false, 0);
    add(p + "attn.out.weight", layer, h, h, TensorRole::HiddenMatrix, true, 1);
    if (biases) add(p + "attn.out.bias", layer, h, 1, TensorRole::Vector, false, -1);
    add(p + "mlp_norm.weight", layer, h, 1, TensorRole::Vector, false, -1);
    if (norm_bias) add(p + "mlp_norm.bias", layer, h, 1, TensorRole::Vector, false, -1);
    add(p + "mlp.up.weight", layer, up_rows, h, TensorRole::HiddenMatrix, true, 0);
    if (biases) add(p + "mlp.up.bias", layer, up_rows, 1, TensorRole::Vector, false, 0);
    add(p + "mlp.down.weight", layer, h, m.ffn_hidden, TensorRole::HiddenMatrix, true, 1);
    if (biases) add(p + "mlp.down.bias", layer, h, 1, TensorRole::Vector, false, -1);
  }
  add("final_norm.weight", -1, h, 1, TensorRole::Vector, false, -1);
  if (norm_bias) add("final_norm.bias", -1, h, 1, TensorRole::Vector, false, -1);
  if (!m.tied_embeddings) add("head.weight", -1, vocab, h, TensorRole::OutputHead, false, 0);
  return tensors;
}

std::int64_t local_elements(const ParameterTensorSpec& tensor, int tp) {
  if (tensor.tp_shard_dim == 0) return tensor.rows / tp * tensor.cols;
  if (tensor.tp_shard_dim == 1) return tensor.rows * (tensor.cols / tp);
  return tensor.elements();
}

std::int64_t parameter_count(const ModelSpec& model) {
  std::int64_t total = 0;
  ModelSpec unpadded = model;
  for (const ParameterTensorSpec& tensor : parameter_tensors(unpadded, 1)) total += tensor.elements();
  return total;
}

std::int64_t parameters_per_layer(const ModelSpec& model) {
  std::int64_t total = 0;
  for (const ParameterTensorSpec& tensor : parameter_tensors(model, 1))
    if (tensor.layer == 0) total += tensor.elements();
  return total;
}

double layer_forward_flops(const ModelSpec& m, double batch) {
  const double s = m.seq_len;
  const double h = m.hidden;
  const double kv = static_cast<double>(m.kv_heads) * m.head_dim();
  const double f = m.ffn_hidden;
  const double tokens = batch * s;
  const double qkv = 2 * tokens * h * (h + 2 * kv);
  const double attention = 2 * 2 * batch * s * s * h;  // scores Q·Kᵀ and probabilities·V
  const double out = 2 * tokens * h * h;
  const double mlp = (m.activation == Activation::SwiGlu ? 3 : 2) * 2 * tokens * h * f;
  return qkv + attention + out + mlp;
}

double head_forward_flops(const ModelSpec& m, double batch) {
  return 2.0 * batch * m.seq_len * m.hidden * m.vocab;
}

double model_flops_per_step(const ModelSpec& m, double global_batch) {
  return 3 * (m.layers * layer_forward_flops(m, global_batch) + head_forward_flops(m, global_batch));
}

double korthikanti_activation_bytes(double s, double b, double h, double a, double t,
                                    bool sequence_parallel, Recompute recompute) {
  if (recompute == Recompute::Full) return 2 * s * b * h;
  if (recompute == Recompute::Selective)
    return sequence_parallel ? 34 * s * b * h / t : s * b * h * (10 + 24 / t);
  if (sequence_parallel) return s * b * h * (34 + 5 * a * s / h) / t;
  if (t == 1) return s * b * h * (34 + 5 * a * s / h);
  return s * b * h * (10 + 24 / t + 5 * a * s / (h * t));
}

double activation_bytes_per_layer(const ModelSpec& m, double b, const ActivationOptions& o) {
  const double e = o.bytes_per_element;
  const double t = o.tp;
  const double s_local = static_cast<double>(m.seq_len) / o.cp;  // this rank's query tokens
  const double h = m.hidden;
  const double kv = static_cast<double>(m.kv_heads) * m.head_dim();
  const double f = m.ffn_hidden;
  const double a = m.heads;
  const double sbh = s_local * b * h;
  const bool dropout = m.dropout > 0;
  // Replicated over tp unless sequence parallelism shards them.
  const double replicated_divisor = o.sequence_parallel ? t : 1;

  if (o.recompute == Recompute::Full) return e * sbh / replicated_divisor;  // the layer input

  // Inputs of the two norms, of QKV and of fc1; the two hidden-size dropout masks (1 byte).
  double replicated = 4 * e * sbh + (dropout ? 2 * sbh : 0);
  // Q and K, V, the output projection's input, fc1's output, the activation's output.
  const double up_width = m.activation == Activation::SwiGlu ? 2 * f : f;
  double sharded = e * s_local * b * (h + kv) + e * s_local * b * kv + e * sbh +
                   e * s_local * b * up_width + e * s_local * b * f;
  // Softmax output (+ dropout mask and dropout output): the s^2 terms selective recompute drops.
  double scores = 0;
  if (o.recompute == Recompute::None) {
    const double elements = a * s_local * m.seq_len * b;
    scores = dropout ? (2 * e + 1) * elements : e * elements;
  }
  return replicated / replicated_divisor + (sharded + scores) / t;
}

}  // namespace tandem::strategy
