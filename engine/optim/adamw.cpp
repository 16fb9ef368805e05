#include "engine/optim/adamw.hpp"

#include <cmath>

#include "engine/optim/state_io.hpp"

#if defined(TANDEM_OPTIM_USE_KERNELS_ADAMW)
#include "kernels/cpu/adamw.hpp"
#endif

namespace tandem::engine::optim {

void adamw_update(float* param, const float* grad, float* m, float* v, std::size_t n, float lr,
                  float beta1, float beta2, float eps, float weight_decay, int step,
                  float grad_scale) {
#if defined(TANDEM_OPTIM_USE_KERNELS_ADAMW)
  kernels::cpu::adamw_update(param, grad, m, v, n, lr, beta1, beta2, eps, weight_decay, step,
                             grad_scale);
#else
  const double bias_correction1 = 1.0 - std::pow(static_cast<double>(beta1), step);
  const double bias_correction2 = 1.0 - std::pow(static_cast<double>(beta2), step);
  const float step_size = static_cast<float>(lr / bias_correction1);
  const float inverse_sqrt_correction2 = static_cast<float>(1.0 / std::sqrt(bias_correction2));
  const float decay = 1.0f - lr * weight_decay;
  const float one_minus_beta1 = 1.0f - beta1, one_minus_beta2 = 1.0f - beta2;
  for (std::size_t i = 0; i < n; ++i) {
    const float g = grad[i] * grad_scale;
    const float p = param[i] * decay;
    const float mi = beta1 * m[i] + one_minus_beta1 * g;
    const float vi = beta2 * v[i] + one_minus_beta2 * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = p - step_size * mi / (std::sqrt(vi) * inverse_sqrt_correction2 + eps);
  }
#endif
}

namespace {

struct AdamWState : TensorStateBase {
  std::vector<float> exp_avg, exp_avg_sq;
  std::size_t bytes() const { return buffer_bytes(exp_avg) + buffer_bytes(exp_avg_sq); }
  void save(StateWriter& out) const {
    out.floats(exp_avg);
    out.floats(exp_avg_sq);
  }
  void load(StateReader& in) {
    exp_avg = in.floats();
    exp_avg_sq = in.floats();
  }
};

class AdamW final : public PerTensorOptimizer<AdamWState> {
 public:
  explicit AdamW(const ResolvedOptimizer& config)
      : weight_decay_(config.weight_decay),
        beta1_(config.number("beta1")),
        beta2_(config.number("beta2")),
        eps_(config.number("eps")) {}

  std::string name() const override { return "adamw"; }
  bool applies_grad_scale() const override { return true; }

  void step(std::span<ParameterTensor> params, const StepContext& ctx) override {
    for (ParameterTensor& param : params) {
      check_parameter(param);
      AdamWState& state = state_for(param);
      const auto n = static_cast<std::size_t>(param.size());
      ensure_buffer(state.exp_avg, n, param.name, "exp_avg");
      ensure_buffer(state.exp_avg_sq, n, param.name, "exp_avg_sq");
      state.step += 1;
      adamw_update(param.value, param.grad, state.exp_avg.data(), state.exp_avg_sq.data(), n,
                   static_cast<float>(ctx.lr), static_cast<float>(beta1_),
                   static_cast<float>(beta2_), static_cast<float>(eps_),
                   param.decayed() ? static_cast<float>(weight_decay_) : 0.0f,
                   static_cast<int>(state.step), static_cast<float>(ctx.grad_scale));
    }
  }

 private:
  double weight_decay_, beta1_, beta2_, eps_;
};

}  // namespace

std::unique_ptr<Optimizer> make_adamw(const ResolvedOptimizer& config) {
  return std::make_unique<AdamW>(config);
}

}  // namespace tandem::engine::optim
