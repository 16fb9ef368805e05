#include "engine/optim/muonbp.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "engine/optim/muon.hpp"

namespace tandem::engine::optim {

std::unique_ptr<Optimizer> make_muonbp(const ResolvedOptimizer& config) {
  return make_muon_family(config, /*block_periodic=*/true);
}

std::vector<RowBlock> row_blocks(std::int64_t rows, std::int64_t count) {
  count = std::clamp<std::int64_t>(count, 1, std::max<std::int64_t>(rows, 1));
  std::vector<RowBlock> blocks(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) {
    blocks[static_cast<std::size_t>(i)] = {rows * i / count, rows * (i + 1) / count};
  }
  return blocks;
}

std::vector<std::vector<std::int64_t>> split_blocks(const ParameterTensor& param, std::int64_t count) {
  if (param.split_dim != 0 && param.split_dim != 1) {
    throw std::invalid_argument("parameter '" + param.name + "' has split_dim " +
                                std::to_string(param.split_dim) + " (expected 0 = rows or 1 = cols)");
  }
  const std::int64_t extent = param.split_dim == 0 ? param.rows : param.cols;
  std::vector<std::int64_t> sections = param.split_sections;
  if (sections.empty()) sections.push_back(extent);
  std::int64_t total = 0, shortest = extent;
  for (const std::int64_t section : sections) {
    if (section <= 0) {
      throw std::invalid_argument("parameter '" + param.name + "' has a split section of " +
                                  std::to_string(section));
    }
    total += section;
    shortest = std::min(shortest, section);
  }
  if (total != extent) {
    throw std::invalid_argument("parameter '" + param.name + "': split sections sum to " +
                                std::to_string(total) + " but the matrix has " + std::to_string(extent) +
                                (param.split_dim == 0 ? " rows" : " columns"));
  }
  count = std::clamp<std::int64_t>(count, 1, std::max<std::int64_t>(shortest, 1));
  std::vector<std::vector<std::int64_t>> blocks(static_cast<std::size_t>(count));
  for (std::int64_t b = 0; b < count; ++b) {
    std::int64_t offset = 0;
    for (const std::int64_t section : sections) {
      for (std::int64_t i = offset + section * b / count; i < offset + section * (b + 1) / count; ++i) {
        blocks[static_cast<std::size_t>(b)].push_back(i);
      }
      offset += section;
    }
  }
  return blocks;
}

void check_tensor_group(const ParameterTensor& param, const comm::Communicator* group) {
  if (param.shard_count <= 1) return;
  const std::string what = "parameter '" + param.name + "' is sharded over " +
                           std::to_string(param.shard_count) + " tensor-parallel ranks";
  if (param.shard_dim != 0 && param.shard_dim != 1) {
    throw std::invalid_argument(what + " but shard_dim is " + std::to_string(param.shard_dim) +
                                " (expected 0 = rows or 1 = cols)");
  }
  if (group == nullptr) {
    throw std::invalid_argument(what + " but StepContext::tensor_group is null");
  }
  if (group->size() != param.shard_count || group->rank() != param.shard_index) {
    throw std::invalid_argument(what + " (this rank holds shard " +
                                std::to_string(param.shard_index) + ") but the tensor group has " +
                                std::to_string(group->size()) + " ranks and this is rank " +
                                std::to_string(group->rank()));
  }
}

void gather_full_matrix(const ParameterTensor& param, const float* local, std::vector<float>& full,
                        comm::Communicator& group) {
  const auto n = static_cast<std::size_t>(param.size());
  const auto shards = static_cast<std::size_t>(param.shard_count);
  full.resize(n * shards);
  if (param.shard_dim == 0) {
    // Row shards stacked in rank order are the full row-major matrix.
    group.all_gather(local, full.data(), n, comm::DataType::Float32);
    return;
  }
  std::vector<float> gathered(n * shards);
  group.all_gather(local, gathered.data(), n, comm::DataType::Float32);
  const std::int64_t full_cols = param.full_cols();
  for (std::size_t shard = 0; shard < shards; ++shard) {
    for (std::int64_t row = 0; row < param.rows; ++row) {
      std::memcpy(full.data() + row * full_cols + static_cast<std::int64_t>(shard) * param.cols,
                  gathered.data() + shard * n + static_cast<std::size_t>(row * param.cols),
                  static_cast<std::size_t>(param.cols) * sizeof(float));
    }
  }
}

void extract_local_slice(const ParameterTensor& param, const float* full, float* local) {
  const auto n = static_cast<std::size_t>(param.size());
  if (param.shard_dim == 0) {
    std::memcpy(local, full + n * static_cast<std::size_t>(param.shard_index), n * sizeof(float));
    return;
  }
  const std::int64_t full_cols = param.full_cols();
  for (std::int64_t row = 0; row < param.rows; ++row) {
    std::memcpy(local + row * param.cols, full + row * full_cols + param.shard_index * param.cols,
                static_cast<std::size_t>(param.cols) * sizeof(float));
  }
}

}  // namespace tandem::engine::optim
