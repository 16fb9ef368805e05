#include "engine/optim/apollo.hpp"

#include <algorithm>
#include <cmath>

#include <Eigen/Dense>

#include "engine/optim/adamw_hf.hpp"
#include "engine/optim/random.hpp"
#include "engine/optim/state_io.hpp"

namespace tandem::engine::optim {
namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct ApolloState : TensorStateBase {
  std::uint64_t tensor_seed = 0;
  std::uint64_t projections_made = 0;  // index of the next projection to generate
  double previous_norm = -1;           // norm-growth limiter; < 0 before the first step
  std::vector<float> projection;       // empty for parameters APOLLO does not project
  std::vector<float> exp_avg, exp_avg_sq;
  std::size_t bytes() const {
    return buffer_bytes(projection) + buffer_bytes(exp_avg) + buffer_bytes(exp_avg_sq);
  }
  void save(StateWriter& out) const {
    out.u64(tensor_seed);
    out.u64(projections_made);
    out.f64(previous_norm);
    out.floats(projection);
    out.floats(exp_avg);
    out.floats(exp_avg_sq);
  }
  void load(StateReader& in) {
    tensor_seed = in.u64();
    projections_made = in.u64();
    previous_norm = in.f64();
    projection = in.floats();
    exp_avg = in.floats();
    exp_avg_sq = in.floats();
  }
};

class Apollo final : public PerTensorOptimizer<ApolloState> {
 public:
  explicit Apollo(const ResolvedOptimizer& config)
      : config_(config),
        weight_decay_(config.weight_decay),
        beta1_(config.number("beta1")),
        beta2_(config.number("beta2")),
        eps_(config.number("eps")),
        update_proj_gap_(config.integer("update_proj_gap")),
        scale_(config.number("scale")),
        tensor_wise_(config.choice("scale_type") == "tensor"),
        limiter_(config.boolean("norm_growth_limiter")),
        limit_(config.number("norm_growth_limit")),
        scale_front_(config.boolean("scale_front")) {}

  std::string name() const override { return config_.name; }

  void step(std::span<ParameterTensor> params, const StepContext& ctx) override {
    for (ParameterTensor& param : params) {
      check_parameter(param);
      ApolloState& state = state_for(param);
      if (param.attention_or_mlp && param.is_matrix()) {
        projected_step(param, state, ctx);
      } else {
        state.step += 1;
        adamw_hf_tensor_step(param, state.exp_avg, state.exp_avg_sq, state.step, ctx.lr, beta1_, beta2_, eps_,
                             weight_decay_);
      }
    }
  }

 private:
  void projected_step(ParameterTensor& param, ApolloState& state, const StepContext& ctx) {
    const std::int64_t m = param.rows, n = param.cols;
    const strategy::OptimizerTensorShape shape{m, n, param.full_rows(), param.full_cols(),
                                               param.role == ParameterRole::HiddenMatrix, true, false};
    const std::int64_t rank = strategy::low_rank_projection_rank(config_, shape);
    const bool right = m >= n;  // P is r x n (R = G P^T, m x r); else m x r (R = P^T G, r x n)
    const std::int64_t shorter = right ? n : m, longer = right ? m : n;
    const auto projection_size = static_cast<std::size_t>(rank * shorter);
    const auto subspace_size = static_cast<std::size_t>(rank * longer);
    ensure_buffer(state.exp_avg, subspace_size, param.name, "exp_avg");
    ensure_buffer(state.exp_avg_sq, subspace_size, param.name, "exp_avg_sq");

    // Refresh at steps 1, T+1, 2T+1, ... (the reference tests iter % T == 0 before counting).
    if (state.projection.empty() || state.step % update_proj_gap_ == 0) {
      if (state.projection.empty() && state.projections_made == 0) {
        state.tensor_seed = projection_tensor_seed(config_.seed, param.name);
      }
      ensure_buffer(state.projection, projection_size, param.name, "projection");
      fill_gaussian_projection(state.tensor_seed, state.projections_made, rank,
                               state.projection.data(), projection_size);
      state.projections_made += 1;
    }

    const Eigen::Map<const RowMatrix> g(param.grad, m, n);
    RowMatrix r;
    if (right) {
      r.noalias() = g * Eigen::Map<const RowMatrix>(state.projection.data(), rank, n).transpose();
    } else {
      r.noalias() = Eigen::Map<const RowMatrix>(state.projection.data(), m, rank).transpose() * g;
    }

    state.step += 1;
    const double t = static_cast<double>(state.step);
    const float beta1 = static_cast<float>(beta1_), beta2 = static_cast<float>(beta2_);
    const float eps = static_cast<float>(eps_);
    RowMatrix normalized(r.rows(), r.cols());
    float* mr = state.exp_avg.data();
    float* vr = state.exp_avg_sq.data();
    const float* rd = r.data();
    float* nd = normalized.data();
    for (std::size_t i = 0; i < subspace_size; ++i) {
      mr[i] = beta1 * mr[i] + (1.0f - beta1) * rd[i];
      vr[i] = beta2 * vr[i] + (1.0f - beta2) * rd[i] * rd[i];
      nd[i] = mr[i] / (std::sqrt(vr[i]) + eps);
    }

    // Scaling factors: one per row of G (R's rows, m >= n), one per column (m < n), or one.
    scaled_.resize(static_cast<std::size_t>(m * n));
    if (tensor_wise_) {
      const double factor = std::sqrt(normalized.cast<double>().squaredNorm()) /
                            (std::sqrt(r.cast<double>().squaredNorm()) + 1e-8);
      const float f = static_cast<float>(factor);
      for (std::int64_t i = 0; i < m * n; ++i) scaled_[i] = param.grad[i] * f;
    } else if (r.rows() < r.cols()) {  // reference: norm over dim 0, per column
      const Eigen::VectorXd numerator = normalized.cast<double>().colwise().norm().transpose();
      const Eigen::VectorXd denominator = r.cast<double>().colwise().norm().transpose();
      for (std::int64_t i = 0; i < m; ++i) {
        for (std::int64_t j = 0; j < n; ++j) {
          scaled_[i * n + j] = param.grad[i * n + j] *
                               static_cast<float>(numerator[j] / (denominator[j] + 1e-8));
        }
      }
    } else {  // per row
      const Eigen::VectorXd numerator = normalized.cast<double>().rowwise().norm();
      const Eigen::VectorXd denominator = r.cast<double>().rowwise().norm();
      for (std::int64_t i = 0; i < m; ++i) {
        const float f = static_cast<float>(numerator[i] / (denominator[i] + 1e-8));
        for (std::int64_t j = 0; j < n; ++j) scaled_[i * n + j] = param.grad[i * n + j] * f;
      }
    }

    const float sqrt_scale = static_cast<float>(std::sqrt(scale_));
    if (scale_front_) {
      for (float& x : scaled_) x *= sqrt_scale;
    }
    if (limiter_) {
      double squared = 0;
      for (const float x : scaled_) squared += static_cast<double>(x) * x;
      const double norm = std::sqrt(squared);
      if (state.previous_norm >= 0) {
        const double limiter = std::max(norm / (state.previous_norm + 1e-8), limit_) / limit_;
        const float inverse = static_cast<float>(1.0 / limiter);
        for (float& x : scaled_) x *= inverse;
        state.previous_norm = norm / limiter;
      } else {
        state.previous_norm = norm;
      }
    }
    if (!scale_front_) {
      for (float& x : scaled_) x *= sqrt_scale;
    }

    const float step_size = static_cast<float>(
        ctx.lr * std::sqrt(1.0 - std::pow(beta2_, t)) / (1.0 - std::pow(beta1_, t)));
    const float decay = static_cast<float>(ctx.lr) *
                        (param.decayed() ? static_cast<float>(weight_decay_) : 0.0f);
    for (std::int64_t i = 0; i < m * n; ++i) {
      float p = param.value[i] - step_size * scaled_[i];
      p -= decay * p;
      param.value[i] = p;
    }
  }

  ResolvedOptimizer config_;
  double weight_decay_, beta1_, beta2_, eps_;
  std::int64_t update_proj_gap_;
  double scale_;
  bool tensor_wise_, limiter_;
  double limit_;
  bool scale_front_;
  std::vector<float> scaled_;  // workspace
};

}  // namespace

std::unique_ptr<Optimizer> make_apollo(const ResolvedOptimizer& config) {
  return std::make_unique<Apollo>(config);
}

}  // namespace tandem::engine::optim
