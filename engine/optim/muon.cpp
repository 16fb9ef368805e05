#include "engine/optim/muon.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "engine/optim/adamw.hpp"
#include "engine/optim/muonbp.hpp"
#include "engine/optim/newton_schulz.hpp"
#include "engine/optim/state_io.hpp"

namespace tandem::engine::optim {

double muon_update_scale(const std::string& scaling, std::int64_t rows, std::int64_t cols) {
  if (scaling == "rms") {
    return 0.2 * std::sqrt(static_cast<double>(std::max(rows, cols)));
  }
  return std::sqrt(std::max(1.0, static_cast<double>(rows) / static_cast<double>(cols)));
}

namespace {

struct MuonState : TensorStateBase {
  std::vector<float> momentum;              // hidden matrices
  std::vector<float> exp_avg, exp_avg_sq;   // AdamW for everything else
  std::size_t bytes() const {
    return buffer_bytes(momentum) + buffer_bytes(exp_avg) + buffer_bytes(exp_avg_sq);
  }
  void save(StateWriter& out) const {
    out.floats(momentum);
    out.floats(exp_avg);
    out.floats(exp_avg_sq);
  }
  void load(StateReader& in) {
    momentum = in.floats();
    exp_avg = in.floats();
    exp_avg_sq = in.floats();
  }
};

class MuonFamily final : public PerTensorOptimizer<MuonState> {
 public:
  MuonFamily(const ResolvedOptimizer& config, bool block_periodic)
      : name_(block_periodic ? "muonbp" : "muon"),
        lr_(config.lr),
        weight_decay_(config.weight_decay),
        momentum_(config.number("momentum")),
        nesterov_(config.boolean("nesterov")),
        ns_steps_(static_cast<int>(config.integer("ns_steps"))),
        scaling_(config.choice("scaling")),
        aux_lr_(config.number("aux_lr")),
        aux_beta1_(config.number("aux_beta1")),
        aux_beta2_(config.number("aux_beta2")),
        aux_eps_(config.number("aux_eps")),
        aux_weight_decay_(config.number("aux_weight_decay")),
        period_(block_periodic ? config.integer("period") : 1),
        blocks_(block_periodic ? config.integer("blocks") : 1),
        block_lr_ratio_(block_periodic ? config.number("block_lr_ratio") : 1.0) {}

  std::string name() const override { return name_; }

  void step(std::span<ParameterTensor> params, const StepContext& ctx) override {
    for (ParameterTensor& param : params) {
      check_parameter(param);
      MuonState& state = state_for(param);
      if (param.role == ParameterRole::HiddenMatrix && param.is_matrix()) {
        orthogonalized_step(param, state, ctx);
      } else {
        adamw_step(param, state, ctx);
      }
    }
  }

 private:
  void adamw_step(ParameterTensor& param, MuonState& state, const StepContext& ctx) {
    const auto n = static_cast<std::size_t>(param.size());
    ensure_buffer(state.exp_avg, n, param.name, "exp_avg");
    ensure_buffer(state.exp_avg_sq, n, param.name, "exp_avg_sq");
    state.step += 1;
    // aux_lr follows the schedule applied to lr.
    const double schedule = lr_ > 0 ? ctx.lr / lr_ : 1.0;
    adamw_update(param.value, param.grad, state.exp_avg.data(), state.exp_avg_sq.data(), n,
                 static_cast<float>(aux_lr_ * schedule), static_cast<float>(aux_beta1_),
                 static_cast<float>(aux_beta2_), static_cast<float>(aux_eps_),
                 param.decayed() ? static_cast<float>(aux_weight_decay_) : 0.0f,
                 static_cast<int>(state.step));
  }

  void orthogonalized_step(ParameterTensor& param, MuonState& state, const StepContext& ctx) {
    const auto n = static_cast<std::size_t>(param.size());
    ensure_buffer(state.momentum, n, param.name, "momentum");
    state.step += 1;
    const bool sharded = param.shard_count > 1;
    check_tensor_group(param, ctx.tensor_group);

    const float beta = static_cast<float>(momentum_);
    float* momentum = state.momentum.data();
    update_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      const float g = param.grad[i];
      momentum[i] = beta * momentum[i] + (1.0f - beta) * g;
      update_[i] = nesterov_ ? (1.0f - beta) * g + beta * momentum[i] : momentum[i];
    }

    const bool full_step = (state.step - 1) % period_ == 0;
    orthogonal_.resize(n);
    double lr = ctx.lr;
    if (full_step) {
      if (sharded) {
        gather_full_matrix(param, update_.data(), full_, *ctx.tensor_group);
        const std::int64_t rows = param.full_rows(), cols = param.full_cols();
        newton_schulz(full_.data(), rows, cols, ns_steps_, full_.data());
        extract_local_slice(param, full_.data(), orthogonal_.data());
        scale(orthogonal_.data(), n, muon_update_scale(scaling_, rows, cols));
      } else {
        newton_schulz(update_.data(), param.rows, param.cols, ns_steps_, orthogonal_.data());
        scale(orthogonal_.data(), n, muon_update_scale(scaling_, param.rows, param.cols));
      }
    } else {
      std::int64_t block_count = 1;
      if (sharded) {
        // The tensor-parallel shard is the block: no communication.
        block_count = param.shard_count;
        newton_schulz(update_.data(), param.rows, param.cols, ns_steps_, orthogonal_.data());
        scale(orthogonal_.data(), n, muon_update_scale(scaling_, param.rows, param.cols));
      } else {
        // The blocks tensor parallelism of degree blocks_ would make (muonbp.hpp).
        const std::vector<std::vector<std::int64_t>> blocks = split_blocks(param, blocks_);
        block_count = static_cast<std::int64_t>(blocks.size());
        const bool by_rows = param.split_dim == 0;
        for (const std::vector<std::int64_t>& block : blocks) {
          const auto width = static_cast<std::int64_t>(block.size());
          const std::int64_t block_rows = by_rows ? width : param.rows;
          const std::int64_t block_cols = by_rows ? param.cols : width;
          block_in_.resize(static_cast<std::size_t>(block_rows * block_cols));
          block_out_.resize(block_in_.size());
          for (std::int64_t i = 0; i < block_rows; ++i) {
            for (std::int64_t j = 0; j < block_cols; ++j) {
              const std::int64_t row = by_rows ? block[static_cast<std::size_t>(i)] : i;
              const std::int64_t col = by_rows ? j : block[static_cast<std::size_t>(j)];
              block_in_[static_cast<std::size_t>(i * block_cols + j)] =
                  update_[static_cast<std::size_t>(row * param.cols + col)];
            }
          }
          newton_schulz(block_in_.data(), block_rows, block_cols, ns_steps_, block_out_.data());
          const auto factor = static_cast<float>(muon_update_scale(scaling_, block_rows, block_cols));
          for (std::int64_t i = 0; i < block_rows; ++i) {
            for (std::int64_t j = 0; j < block_cols; ++j) {
              const std::int64_t row = by_rows ? block[static_cast<std::size_t>(i)] : i;
              const std::int64_t col = by_rows ? j : block[static_cast<std::size_t>(j)];
              orthogonal_[static_cast<std::size_t>(row * param.cols + col)] =
                  block_out_[static_cast<std::size_t>(i * block_cols + j)] * factor;
            }
          }
        }
      }
      lr *= block_lr_ratio_ > 0 ? block_lr_ratio_ : 1.0 / std::sqrt(static_cast<double>(block_count));
    }

    const float step = static_cast<float>(lr);
    const float decay = 1.0f - step * (param.decayed() ? static_cast<float>(weight_decay_) : 0.0f);
    for (std::size_t i = 0; i < n; ++i) {
      param.value[i] = param.value[i] * decay - step * orthogonal_[i];
    }
  }

  static void scale(float* data, std::size_t n, double factor) {
    const float f = static_cast<float>(factor);
    for (std::size_t i = 0; i < n; ++i) data[i] *= f;
  }

  std::string name_;
  double lr_, weight_decay_, momentum_;
  bool nesterov_;
  int ns_steps_;
  std::string scaling_;
  double aux_lr_, aux_beta1_, aux_beta2_, aux_eps_, aux_weight_decay_;
  std::int64_t period_, blocks_;
  double block_lr_ratio_;
  // Workspace reused across tensors and steps (not optimizer state).
  std::vector<float> update_, orthogonal_, full_, block_in_, block_out_;
};

}  // namespace

std::unique_ptr<Optimizer> make_muon_family(const ResolvedOptimizer& config, bool block_periodic) {
  return std::make_unique<MuonFamily>(config, block_periodic);
}

std::unique_ptr<Optimizer> make_muon(const ResolvedOptimizer& config) {
  return make_muon_family(config, /*block_periodic=*/false);
}

}  // namespace tandem::engine::optim
