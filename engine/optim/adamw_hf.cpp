#include "engine/optim/adamw_hf.hpp"

#include <cmath>

#include "engine/optim/state_io.hpp"

namespace tandem::engine::optim {

void adamw_hf_update(float* param, const float* grad, float* m, float* v, std::size_t n, float lr,
                     float beta1, float beta2, float eps, float weight_decay, std::int64_t step) {
  const double t = static_cast<double>(step);
  const double bias_correction1 = 1.0 - std::pow(static_cast<double>(beta1), t);
  const double bias_correction2 = 1.0 - std::pow(static_cast<double>(beta2), t);
  const float step_size = static_cast<float>(lr * std::sqrt(bias_correction2) / bias_correction1);
  const float decay = lr * weight_decay;
  const float one_minus_beta1 = 1.0f - beta1, one_minus_beta2 = 1.0f - beta2;
  for (std::size_t i = 0; i < n; ++i) {
    const float g = grad[i];
    const float mi = beta1 * m[i] + one_minus_beta1 * g;
    const float vi = beta2 * v[i] + one_minus_beta2 * g * g;
    m[i] = mi;
    v[i] = vi;
    float p = param[i] - step_size * (mi / (std::sqrt(vi) + eps));
    p -= decay * p;
    param[i] = p;
  }
}

void adamw_hf_tensor_step(ParameterTensor& param, std::vector<float>& m, std::vector<float>& v, std::int64_t step,
                          double lr, double beta1, double beta2, double eps, double weight_decay) {
  const auto n = static_cast<std::size_t>(param.size());
  ensure_buffer(m, n, param.name, "exp_avg");
  ensure_buffer(v, n, param.name, "exp_avg_sq");
  adamw_hf_update(param.value, param.grad, m.data(), v.data(), n, static_cast<float>(lr), static_cast<float>(beta1),
                  static_cast<float>(beta2), static_cast<float>(eps),
                  param.decayed() ? static_cast<float>(weight_decay) : 0.0f, step);
}

namespace {

struct AdamWHfState : TensorStateBase {
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

class AdamWHf final : public PerTensorOptimizer<AdamWHfState> {
 public:
  explicit AdamWHf(const ResolvedOptimizer& config)
      : weight_decay_(config.weight_decay),
        beta1_(config.number("beta1")),
        beta2_(config.number("beta2")),
        eps_(config.number("eps")) {}

  std::string name() const override { return "adamw-hf"; }

  void step(std::span<ParameterTensor> params, const StepContext& ctx) override {
    for (ParameterTensor& param : params) {
      check_parameter(param);
      AdamWHfState& state = state_for(param);
      state.step += 1;
      adamw_hf_tensor_step(param, state.exp_avg, state.exp_avg_sq, state.step, ctx.lr, beta1_, beta2_, eps_,
                           weight_decay_);
    }
  }

 private:
  double weight_decay_, beta1_, beta2_, eps_;
};

}  // namespace

std::unique_ptr<Optimizer> make_adamw_hf(const ResolvedOptimizer& config) {
  return std::make_unique<AdamWHf>(config);
}

}  // namespace tandem::engine::optim
