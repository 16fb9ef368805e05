#pragma once
// MuonBP (arXiv 2510.16981, paper only; OPTIMIZERS.md "MuonBP"): Muon whose momentum stays
// sharded like the weight.
//   full steps, t = 1, P+1, 2P+1, ... (period P): all-gather the Nesterov momentum over
//     ctx.tensor_group, NS5 on the full matrix scaled for the full shape, step eta_full = ctx.lr,
//     each rank applies its slice (P = 1 is exactly Muon);
//   block steps, all other t: NS5 on each block on its own, scaled for the block's shape, step
//     eta_block = ctx.lr * block_lr_ratio (0: 1/sqrt(k) for k blocks). The blocks are the
//     tensor-parallel shards (one per rank, no communication); a matrix that is not sharded
//     (tensor parallelism 1) is split locally into `blocks` blocks exactly as tensor parallelism
//     of degree `blocks` would shard it (ParameterTensor::split_dim / split_sections: row blocks
//     of a column-parallel weight, each taking its slice of Q, K and V or of gate and up; column
//     blocks of a row-parallel weight). One process with blocks = k therefore steps like TP = k.
// The choices the paper leaves open, and why the defaults are what they are, are documented with
// the arguments in strategy/optimizer_catalog.cpp.

#include <cstdint>
#include <vector>

#include "engine/optim/optimizer.hpp"

namespace tandem::engine::optim {

std::unique_ptr<Optimizer> make_muonbp(const ResolvedOptimizer& config);

// [begin, end) rows of `count` near-equal row blocks of a matrix with `rows` rows.
struct RowBlock {
  std::int64_t begin = 0, end = 0;
};
std::vector<RowBlock> row_blocks(std::int64_t rows, std::int64_t count);

// The rows (param.split_dim 0) or columns (1) that each of `count` blocks of an unsharded matrix
// holds, in the order tensor-parallel rank b of `count` would hold them: the b-th near-equal
// slice of every section of param.split_sections, section after section. `count` is clamped to
// [1, shortest section]. Throws std::invalid_argument when the split does not describe the
// matrix (split_dim not 0 or 1, sections not positive or not summing to the split extent).
std::vector<std::vector<std::int64_t>> split_blocks(const ParameterTensor& param, std::int64_t count);

// Throws std::invalid_argument when a sharded parameter's description does not match the group.
void check_tensor_group(const ParameterTensor& param, const comm::Communicator* group);
// All-gathers this rank's shard `local` (param.rows x param.cols) into the full row-major matrix
// (param.full_rows() x param.full_cols()) over `group`.
void gather_full_matrix(const ParameterTensor& param, const float* local, std::vector<float>& full,
                        comm::Communicator& group);
// Copies this rank's slice of a full row-major matrix into `local`.
void extract_local_slice(const ParameterTensor& param, const float* full, float* local);

}  // namespace tandem::engine::optim
