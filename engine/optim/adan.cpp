#include "engine/optim/adan.hpp"

#include <algorithm>
#include <cmath>

#include "engine/optim/state_io.hpp"

namespace tandem::engine::optim {
namespace {

struct AdanState : TensorStateBase {
  std::vector<float> exp_avg, exp_avg_diff, exp_avg_sq, previous_grad;
  std::size_t bytes() const {
    return buffer_bytes(exp_avg) + buffer_bytes(exp_avg_diff) + buffer_bytes(exp_avg_sq) +
           buffer_bytes(previous_grad);
  }
  void save(StateWriter& out) const {
    out.floats(exp_avg);
    out.floats(exp_avg_diff);
    out.floats(exp_avg_sq);
    out.floats(previous_grad);
  }
  void load(StateReader& in) {
    exp_avg = in.floats();
    exp_avg_diff = in.floats();
    exp_avg_sq = in.floats();
    previous_grad = in.floats();
  }
};

class Adan final : public PerTensorOptimizer<AdanState> {
 public:
  explicit Adan(const ResolvedOptimizer& config)
      : weight_decay_(config.weight_decay),
        beta1_(config.number("beta1")),
        beta2_(config.number("beta2")),
        beta3_(config.number("beta3")),
        eps_(config.number("eps")),
        max_grad_norm_(config.number("max_grad_norm")),
        prox_(config.choice("decay_form") == "prox") {}

  std::string name() const override { return "adan"; }

  void step(std::span<ParameterTensor> params, const StepContext& ctx) override {
    // Reference: clip = min(max_grad_norm / (||g||_global + eps), 1), applied to g (and so to
    // the g_prev it stores).
    float clip = 1.0f;
    if (max_grad_norm_ > 0) {
      double squared = 0;
      for (const ParameterTensor& param : params) {
        check_parameter(param);
        for (std::int64_t i = 0; i < param.size(); ++i) {
          squared += static_cast<double>(param.grad[i]) * param.grad[i];
        }
      }
      clip = static_cast<float>(std::min(1.0, max_grad_norm_ / (std::sqrt(squared) + eps_)));
    }
    const float lr = static_cast<float>(ctx.lr);
    const float beta1 = static_cast<float>(beta1_), beta2 = static_cast<float>(beta2_),
                beta3 = static_cast<float>(beta3_), eps = static_cast<float>(eps_);
    for (ParameterTensor& param : params) {
      check_parameter(param);
      AdanState& state = state_for(param);
      const auto n = static_cast<std::size_t>(param.size());
      ensure_buffer(state.exp_avg, n, param.name, "exp_avg");
      ensure_buffer(state.exp_avg_diff, n, param.name, "exp_avg_diff");
      ensure_buffer(state.exp_avg_sq, n, param.name, "exp_avg_sq");
      ensure_buffer(state.previous_grad, n, param.name, "previous_grad");
      state.step += 1;
      const double t = static_cast<double>(state.step);
      const bool first = state.step == 1;
      const float step_size = static_cast<float>(ctx.lr / (1.0 - std::pow(beta1_, t)));
      const float step_size_diff = static_cast<float>(ctx.lr * beta2_ / (1.0 - std::pow(beta2_, t)));
      const float inverse_sqrt_correction3 = static_cast<float>(1.0 / std::sqrt(1.0 - std::pow(beta3_, t)));
      const float wd = param.decayed() ? static_cast<float>(weight_decay_) : 0.0f;
      const float prox_divisor = 1.0f + lr * wd;
      const float decoupled_factor = 1.0f - lr * wd;
      float* m = state.exp_avg.data();
      float* d = state.exp_avg_diff.data();
      float* nu = state.exp_avg_sq.data();
      float* previous = state.previous_grad.data();
      for (std::size_t i = 0; i < n; ++i) {
        const float g = param.grad[i] * clip;
        const float diff = first ? 0.0f : g - previous[i];
        m[i] = beta1 * m[i] + (1.0f - beta1) * g;
        d[i] = beta2 * d[i] + (1.0f - beta2) * diff;
        const float h = g + beta2 * diff;
        nu[i] = beta3 * nu[i] + (1.0f - beta3) * h * h;
        const float den = std::sqrt(nu[i]) * inverse_sqrt_correction3 + eps;
        const float update = step_size * m[i] / den + step_size_diff * d[i] / den;
        if (prox_) {
          param.value[i] = (param.value[i] - update) / prox_divisor;
        } else {
          param.value[i] = param.value[i] * decoupled_factor - update;
        }
        previous[i] = g;
      }
    }
  }

 private:
  double weight_decay_, beta1_, beta2_, beta3_, eps_, max_grad_norm_;
  bool prox_;
};

}  // namespace

std::unique_ptr<Optimizer> make_adan(const ResolvedOptimizer& config) {
  return std::make_unique<Adan>(config);
}

}  // namespace tandem::engine::optim
