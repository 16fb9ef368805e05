#pragma once
// The parameters one rank holds, llm.c style: every tensor a view into ONE value allocation and
// ONE gradient allocation.
//
// The tensor list is strategy::parameter_tensors(model, tp) (the single source of names, shapes,
// roles and tensor-parallel sharding), filtered to what this pipeline stage holds. Tensors are laid
// out in data-parallel bucket order: the same grouping and bucket boundaries the program builder
// uses for its DpGradientReduce ops (head group, layers last to first, embedding group, each
// bucket closed once it reaches strategy.grad_bucket), so every bucket is one contiguous range
// that a collective reduces in place. With ZeRO every bucket is padded to a multiple of dp so it
// splits into equal shards.
//
// Tensor-parallel shards (what local row r / column c of a shard is in the full tensor):
//   shard dim 0 (column-parallel / vocab-parallel): local rows are this rank's block of rows,
//     except the fused tensors, whose local rows keep the fused layout of the kernels:
//       attn.qkv  full rows [Q (heads·D) | K (kv·D) | V (kv·D)]  -> local [Q_r | K_r | V_r]
//       mlp.up    (SwiGLU) full rows [gate (F) | up (F)]         -> local [gate_r | up_r]
//   shard dim 1 (row-parallel): local columns are this rank's block of columns.
//
// Initialisation (GPT-2 / llm.c): 2-D weights and embeddings normal(0, 0.02), the residual
// projections (attn.out, mlp.down) normal(0, 0.02/sqrt(2·layers)), biases 0, norm gains 1. Each
// element of the FULL tensor is a pure function of (seed, tensor name, element index) — a
// counter-based normal draw — and every rank takes its shard of it, so every tensor-parallel and
// pipeline layout starts from exactly the same model. Padded vocabulary rows are 0.

#include <cstdint>
#include <string>
#include <vector>

#include "engine/backend/backend.hpp"
#include "engine/model/geometry.hpp"
#include "strategy/model_formulas.hpp"

namespace tandem::engine {

struct LocalTensor {
  strategy::ParameterTensorSpec spec;  // the full tensor
  std::int64_t rows = 0, cols = 1;     // this rank's shard
  std::size_t offset = 0;              // into the value / gradient allocations
  int bucket = 0;
  // Counted in the global gradient norm on this rank: replicated tensors only on tensor-parallel
  // rank 0, the tied embedding's copy on the last stage never.
  bool counts_in_norm = true;
  std::int64_t size() const { return rows * cols; }
};

struct GradientBucket {
  std::size_t offset = 0;       // into the allocations
  std::size_t size = 0;         // elements, padded (multiple of dp with ZeRO)
  std::int64_t parameters = 0;  // real elements (the program's bucket size / gradient bytes)
};

// Full-tensor row of local row `local_row` of a shard-dim-0 tensor, and full column of local
// column `local_col` of a shard-dim-1 tensor (identity for replicated tensors).
std::int64_t full_row_of(const strategy::ParameterTensorSpec& spec, const StageGeometry& geometry,
                         std::int64_t local_rows, std::int64_t local_row);
std::int64_t full_col_of(const strategy::ParameterTensorSpec& spec, const StageGeometry& geometry,
                         std::int64_t local_cols, std::int64_t local_col);

// The sizes, along spec.tp_shard_dim of the FULL tensor, of the parts whose slices a
// tensor-parallel rank takes separately: {Q, K, V} rows of attn.qkv, {gate, up} rows of SwiGLU's
// fused mlp.up (weights and biases); empty for every other tensor (one part).
std::vector<std::int64_t> tensor_parallel_sections(const strategy::ParameterTensorSpec& spec,
                                                   const StageGeometry& geometry);

// The initial value of element (row, col) of the full tensor (0 for padded vocabulary rows).
double initial_value(const strategy::ParameterTensorSpec& spec, const StageGeometry& geometry,
                     std::uint64_t seed, std::int64_t row, std::int64_t col);

// The tensors of this stage (names, local shapes, offsets, buckets); no memory.
struct ParameterLayout {
  std::vector<LocalTensor> tensors;
  std::vector<GradientBucket> buckets;
  std::size_t total = 0;  // elements of the allocations

  const LocalTensor* find(const std::string& name) const;
};

// zero_stage > 0 pads buckets to a multiple of dp (geometry.dp).
ParameterLayout make_parameter_layout(const strategy::ModelSpec& model, const StageGeometry& geometry,
                                      double grad_bucket_bytes, int zero_stage);

template <typename Scalar>
class ParameterStore {
 public:
  ParameterStore(Backend<Scalar>& backend, ParameterLayout layout);

  const ParameterLayout& layout() const { return layout_; }
  Scalar* values() const { return values_.data(); }
  Scalar* grads() const { return grads_.data(); }
  Scalar* value(const std::string& name) const;   // nullptr when this rank does not hold it
  Scalar* grad(const std::string& name) const;

  // Fills every value from the seeded initialisation above.
  void initialize(const StageGeometry& geometry, std::uint64_t seed);
  void zero_grads();

 private:
  Backend<Scalar>* backend_;
  ParameterLayout layout_;
  DeviceBuffer<Scalar> values_;
  DeviceBuffer<Scalar> grads_;
};

}  // namespace tandem::engine
