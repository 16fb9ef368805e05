#include "engine/optim/galore.hpp"

#include <cmath>

#include <Eigen/Dense>
#include <Eigen/SVD>

#include "engine/optim/adamw_hf.hpp"
#include "engine/optim/state_io.hpp"

namespace tandem::engine::optim {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

std::vector<float> galore_projection(const float* g, std::int64_t m, std::int64_t n,
                                     std::int64_t rank) {
  const Eigen::MatrixXf matrix = Eigen::Map<const RowMatrix>(g, m, n);
  const bool right = m >= n;
  Eigen::BDCSVD<Eigen::MatrixXf> svd(matrix, right ? Eigen::ComputeThinV : Eigen::ComputeThinU);
  const Eigen::MatrixXf& vectors = right ? svd.matrixV() : svd.matrixU();  // columns, descending
  std::vector<float> projection(static_cast<std::size_t>(rank * (right ? n : m)));
  for (std::int64_t k = 0; k < rank; ++k) {
    Eigen::Index largest = 0;
    vectors.col(k).cwiseAbs().maxCoeff(&largest);
    const float sign = vectors(largest, k) < 0 ? -1.0f : 1.0f;
    if (right) {
      for (std::int64_t j = 0; j < n; ++j) projection[k * n + j] = sign * vectors(j, k);
    } else {
      for (std::int64_t i = 0; i < m; ++i) projection[i * rank + k] = sign * vectors(i, k);
    }
  }
  return projection;
}

namespace {

struct GaloreState : TensorStateBase {
  std::vector<float> projection;  // empty for parameters GaLore does not project
  std::vector<float> exp_avg, exp_avg_sq;
  std::size_t bytes() const {
    return buffer_bytes(projection) + buffer_bytes(exp_avg) + buffer_bytes(exp_avg_sq);
  }
  void save(StateWriter& out) const {
    out.floats(projection);
    out.floats(exp_avg);
    out.floats(exp_avg_sq);
  }
  void load(StateReader& in) {
    projection = in.floats();
    exp_avg = in.floats();
    exp_avg_sq = in.floats();
  }
};

class Galore final : public PerTensorOptimizer<GaloreState> {
 public:
  explicit Galore(const ResolvedOptimizer& config)
      : config_(config),
        weight_decay_(config.weight_decay),
        beta1_(config.number("beta1")),
        beta2_(config.number("beta2")),
        eps_(config.number("eps")),
        update_proj_gap_(config.integer("update_proj_gap")),
        scale_(config.number("scale")) {}

  std::string name() const override { return "galore"; }

  void step(std::span<ParameterTensor> params, const StepContext& ctx) override {
    for (ParameterTensor& param : params) {
      check_parameter(param);
      GaloreState& state = state_for(param);
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
  void projected_step(ParameterTensor& param, GaloreState& state, const StepContext& ctx) {
    const std::int64_t m = param.rows, n = param.cols;
    const strategy::OptimizerTensorShape shape{m, n, param.full_rows(), param.full_cols(),
                                               param.role == ParameterRole::HiddenMatrix, true, false};
    const std::int64_t rank = strategy::low_rank_projection_rank(config_, shape);
    const bool right = m >= n;
    const std::int64_t shorter = right ? n : m, longer = right ? m : n;
    const auto subspace_size = static_cast<std::size_t>(rank * longer);
    ensure_buffer(state.exp_avg, subspace_size, param.name, "exp_avg");
    ensure_buffer(state.exp_avg_sq, subspace_size, param.name, "exp_avg_sq");

    if (state.projection.empty() || state.step % update_proj_gap_ == 0) {
      std::vector<float> projection = galore_projection(param.grad, m, n, rank);
      ensure_buffer(state.projection, static_cast<std::size_t>(rank * shorter), param.name,
                    "projection");
      state.projection = std::move(projection);
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
    float* mr = state.exp_avg.data();
    float* vr = state.exp_avg_sq.data();
    float* rd = r.data();
    for (std::size_t i = 0; i < subspace_size; ++i) {
      mr[i] = beta1 * mr[i] + (1.0f - beta1) * rd[i];
      vr[i] = beta2 * vr[i] + (1.0f - beta2) * rd[i] * rd[i];
      rd[i] = mr[i] / (std::sqrt(vr[i]) + eps);  // r now holds N
    }
    RowMatrix back;
    if (right) {
      back.noalias() = r * Eigen::Map<const RowMatrix>(state.projection.data(), rank, n);
    } else {
      back.noalias() = Eigen::Map<const RowMatrix>(state.projection.data(), m, rank) * r;
    }

    const float step_size = static_cast<float>(
        ctx.lr * std::sqrt(1.0 - std::pow(beta2_, t)) / (1.0 - std::pow(beta1_, t)));
    const float scale = static_cast<float>(scale_);
    const float decay = static_cast<float>(ctx.lr) *
                        (param.decayed() ? static_cast<float>(weight_decay_) : 0.0f);
    const float* bd = back.data();
    for (std::int64_t i = 0; i < m * n; ++i) {
      float p = param.value[i] - step_size * (scale * bd[i]);
      p -= decay * p;
      param.value[i] = p;
    }
  }

  ResolvedOptimizer config_;
  double weight_decay_, beta1_, beta2_, eps_;
  std::int64_t update_proj_gap_;
  double scale_;
};

}  // namespace

std::unique_ptr<Optimizer> make_galore(const ResolvedOptimizer& config) {
  return std::make_unique<Galore>(config);
}

}  // namespace tandem::engine::optim
