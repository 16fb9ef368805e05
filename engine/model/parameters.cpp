#include "engine/model/parameters.hpp"

#include <climits>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <vector>

namespace tandem::engine {
namespace {

using strategy::ParameterTensorSpec;
using strategy::TensorRole;

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_qkv(const ParameterTensorSpec& spec) {
  return ends_with(spec.name, "attn.qkv.weight") || ends_with(spec.name, "attn.qkv.bias");
}
bool is_fused_up(const ParameterTensorSpec& spec, const StageGeometry& g) {
  return g.swiglu && (ends_with(spec.name, "mlp.up.weight") || ends_with(spec.name, "mlp.up.bias"));
}

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

std::uint64_t name_hash(const std::string& name) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char c : name) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

// Standard normal draws that are a pure function of (key, index): Box-Muller on two counter-based
// uniforms per pair of indices, the even index taking the cosine and the odd one the sine.
void pair_normal(std::uint64_t key, std::uint64_t pair, double& even, double& odd) {
  const std::uint64_t a = splitmix64(key ^ splitmix64(2 * pair));
  const std::uint64_t b = splitmix64(key ^ splitmix64(2 * pair + 1));
  const double u1 = (static_cast<double>(a >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
  const double u2 = static_cast<double>(b >> 11) * 0x1.0p-53;          // [0, 1)
  const double radius = std::sqrt(-2.0 * std::log(u1));
  const double angle = 2.0 * std::numbers::pi * u2;
  even = radius * std::cos(angle);
  odd = radius * std::sin(angle);
}

double counter_normal(std::uint64_t key, std::uint64_t index) {
  double even = 0, odd = 0;
  pair_normal(key, index / 2, even, odd);
  return index % 2 == 0 ? even : odd;
}

// What every element of a tensor starts as (computed once per tensor).
struct InitRule {
  bool normal = false;
  double constant = 0;             // when not normal
  double std_dev = 0.02;
  std::uint64_t key = 0;
  std::int64_t zero_from_row = 0;  // rows at and above are 0 (padded vocabulary); INT64_MAX: none
};

InitRule init_rule(const ParameterTensorSpec& spec, const StageGeometry& g, std::uint64_t seed) {
  InitRule rule;
  rule.zero_from_row = INT64_MAX;
  if (spec.role == TensorRole::Vector) {
    rule.constant = ends_with(spec.name, "norm.weight") ? 1.0 : 0.0;
    return rule;
  }
  rule.normal = true;
  if (spec.role == TensorRole::Embedding || spec.role == TensorRole::OutputHead) rule.zero_from_row = g.vocab;
  if (ends_with(spec.name, "attn.out.weight") || ends_with(spec.name, "mlp.down.weight"))
    rule.std_dev = 0.02 / std::sqrt(2.0 * g.layers);
  rule.key = splitmix64(seed ^ name_hash(spec.name));
  return rule;
}

double rule_value(const InitRule& rule, const ParameterTensorSpec& spec, std::int64_t row, std::int64_t col) {
  if (!rule.normal) return rule.constant;
  if (row >= rule.zero_from_row) return 0.0;
  return rule.std_dev * counter_normal(rule.key, static_cast<std::uint64_t>(row) * static_cast<std::uint64_t>(spec.cols) +
                                                     static_cast<std::uint64_t>(col));
}

bool holds(const ParameterTensorSpec& t, const StageGeometry& g) {
  if (t.layer >= 0) return t.layer >= g.first_layer && t.layer < g.first_layer + g.stage_layers;
  if (t.role == TensorRole::Embedding) return g.first_stage || (g.tied && g.last_stage);
  if (t.role == TensorRole::Position) return g.first_stage;
  return g.last_stage;
}

}  // namespace

std::int64_t full_row_of(const ParameterTensorSpec& spec, const StageGeometry& g, std::int64_t local_rows,
                         std::int64_t r) {
  if (spec.tp_shard_dim != 0 || g.tp == 1) return r;
  if (is_qkv(spec)) {
    const std::int64_t q = static_cast<std::int64_t>(g.Hq) * g.D;
    const std::int64_t kv = static_cast<std::int64_t>(g.Hkv) * g.D;
    const std::int64_t q_full = static_cast<std::int64_t>(g.heads) * g.D;
    const std::int64_t kv_full = static_cast<std::int64_t>(g.kv_heads) * g.D;
    if (r < q) return g.tp_rank * q + r;
    if (r < q + kv) return q_full + g.tp_rank * kv + (r - q);
    return q_full + kv_full + g.tp_rank * kv + (r - q - kv);
  }
  if (is_fused_up(spec, g)) {
    if (r < g.F) return static_cast<std::int64_t>(g.tp_rank) * g.F + r;
    return static_cast<std::int64_t>(g.ffn) + static_cast<std::int64_t>(g.tp_rank) * g.F + (r - g.F);
  }
  return g.tp_rank * local_rows + r;
}

std::vector<std::int64_t> tensor_parallel_sections(const ParameterTensorSpec& spec, const StageGeometry& g) {
  if (spec.tp_shard_dim != 0) return {};
  if (is_qkv(spec)) {
    const std::int64_t q = static_cast<std::int64_t>(g.heads) * g.D;
    const std::int64_t kv = static_cast<std::int64_t>(g.kv_heads) * g.D;
    return {q, kv, kv};
  }
  if (is_fused_up(spec, g)) return {static_cast<std::int64_t>(g.ffn), static_cast<std::int64_t>(g.ffn)};
  return {};
}

std::int64_t full_col_of(const ParameterTensorSpec& spec, const StageGeometry& g, std::int64_t local_cols,
                         std::int64_t c) {
  if (spec.tp_shard_dim != 1 || g.tp == 1) return c;
  return g.tp_rank * local_cols + c;
}

double initial_value(const ParameterTensorSpec& spec, const StageGeometry& g, std::uint64_t seed,
                     std::int64_t row, std::int64_t col) {
  return rule_value(init_rule(spec, g, seed), spec, row, col);
}

const LocalTensor* ParameterLayout::find(const std::string& name) const {
  for (const LocalTensor& tensor : tensors)
    if (tensor.spec.name == name) return &tensor;
  return nullptr;
}

ParameterLayout make_parameter_layout(const strategy::ModelSpec& model, const StageGeometry& g,
                                      double grad_bucket_bytes, int zero_stage) {
  const std::vector<ParameterTensorSpec> all = strategy::parameter_tensors(model, g.tp);
  // The program builder's bucket groups, in backward order.
  std::vector<std::vector<const ParameterTensorSpec*>> groups;
  if (g.last_stage) {
    std::vector<const ParameterTensorSpec*> head;
    for (const ParameterTensorSpec& t : all)
      if (t.layer < 0 && t.role != TensorRole::Embedding && t.role != TensorRole::Position) head.push_back(&t);
    if (g.tied && g.pp > 1)
      for (const ParameterTensorSpec& t : all)
        if (t.role == TensorRole::Embedding) head.push_back(&t);
    groups.push_back(head);
  }
  for (int layer = g.first_layer + g.stage_layers - 1; layer >= g.first_layer; --layer) {
    std::vector<const ParameterTensorSpec*> group;
    for (const ParameterTensorSpec& t : all)
      if (t.layer == layer) group.push_back(&t);
    groups.push_back(group);
  }
  if (g.first_stage) {
    std::vector<const ParameterTensorSpec*> embedding;
    for (const ParameterTensorSpec& t : all)
      if (t.role == TensorRole::Embedding || t.role == TensorRole::Position) embedding.push_back(&t);
    groups.push_back(embedding);
  }

  constexpr double kGradientBytes = 4;  // the engine trains in fp32
  const std::size_t multiple = zero_stage > 0 ? static_cast<std::size_t>(16 * g.dp) : 16;
  ParameterLayout layout;
  GradientBucket open{0, 0, 0};
  std::size_t cursor = 0;
  auto close_bucket = [&] {
    if (open.parameters == 0) return;
    open.size = (cursor - open.offset + multiple - 1) / multiple * multiple;
    cursor = open.offset + open.size;
    layout.buckets.push_back(open);
    open = GradientBucket{cursor, 0, 0};
  };
  for (const auto& group : groups) {
    for (const ParameterTensorSpec* spec : group) {
      if (!holds(*spec, g)) continue;
      LocalTensor tensor;
      tensor.spec = *spec;
      tensor.rows = spec->tp_shard_dim == 0 ? spec->rows / g.tp : spec->rows;
      tensor.cols = spec->tp_shard_dim == 1 ? spec->cols / g.tp : spec->cols;
      tensor.offset = cursor;
      tensor.bucket = static_cast<int>(layout.buckets.size());
      tensor.counts_in_norm = !(spec->tp_shard_dim < 0 && g.tp_rank != 0) &&
                              !(spec->role == TensorRole::Embedding && !g.first_stage);
      cursor += static_cast<std::size_t>(tensor.size());
      open.parameters += tensor.size();
      layout.tensors.push_back(std::move(tensor));
    }
    if (static_cast<double>(open.parameters) * kGradientBytes >= grad_bucket_bytes) close_bucket();
  }
  close_bucket();
  layout.total = cursor;
  return layout;
}

template <typename Scalar>
ParameterStore<Scalar>::ParameterStore(Backend<Scalar>& backend, ParameterLayout layout)
    : backend_(&backend),
      layout_(std::move(layout)),
      values_(backend, layout_.total),
      grads_(backend, layout_.total) {}

template <typename Scalar>
Scalar* ParameterStore<Scalar>::value(const std::string& name) const {
  const LocalTensor* tensor = layout_.find(name);
  return tensor == nullptr ? nullptr : values_.data() + tensor->offset;
}

template <typename Scalar>
Scalar* ParameterStore<Scalar>::grad(const std::string& name) const {
  const LocalTensor* tensor = layout_.find(name);
  return tensor == nullptr ? nullptr : grads_.data() + tensor->offset;
}

template <typename Scalar>
void ParameterStore<Scalar>::initialize(const StageGeometry& g, std::uint64_t seed) {
  for (const LocalTensor& tensor : layout_.tensors) {
    std::vector<Scalar> host(static_cast<std::size_t>(tensor.size()));
    const std::int64_t rows = tensor.rows, cols = tensor.cols;
    const InitRule rule = init_rule(tensor.spec, g, seed);
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < rows; ++r) {
      Scalar* out = host.data() + r * cols;
      const std::int64_t full_row = full_row_of(tensor.spec, g, rows, r);
      if (!rule.normal || full_row >= rule.zero_from_row) {
        for (std::int64_t c = 0; c < cols; ++c) out[c] = static_cast<Scalar>(rule_value(rule, tensor.spec, full_row, c));
        continue;
      }
      // The local columns are one contiguous block of full columns: draw them a pair at a time.
      const std::uint64_t first = static_cast<std::uint64_t>(full_row) * static_cast<std::uint64_t>(tensor.spec.cols) +
                                  static_cast<std::uint64_t>(full_col_of(tensor.spec, g, cols, 0));
      std::int64_t c = 0;
      double even = 0, odd = 0;
      if (first % 2 == 1) {
        pair_normal(rule.key, first / 2, even, odd);
        out[c++] = static_cast<Scalar>(rule.std_dev * odd);
      }
      for (; c + 1 < cols; c += 2) {
        pair_normal(rule.key, (first + static_cast<std::uint64_t>(c)) / 2, even, odd);
        out[c] = static_cast<Scalar>(rule.std_dev * even);
        out[c + 1] = static_cast<Scalar>(rule.std_dev * odd);
      }
      if (c < cols) {
        pair_normal(rule.key, (first + static_cast<std::uint64_t>(c)) / 2, even, odd);
        out[c] = static_cast<Scalar>(rule.std_dev * even);
      }
    }
    backend_->upload(values_.data() + tensor.offset, host.data(), host.size());
  }
}

template <typename Scalar>
void ParameterStore<Scalar>::zero_grads() {
  backend_->zero(grads_.data(), layout_.total);
}

template class ParameterStore<float>;
template class ParameterStore<double>;

}  // namespace tandem::engine
