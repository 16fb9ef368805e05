#include "engine/optim/lion.hpp"

#include "engine/optim/state_io.hpp"

namespace tandem::engine::optim {
namespace {

struct LionState : TensorStateBase {
  std::vector<float> exp_avg;
  std::size_t bytes() const { return buffer_bytes(exp_avg); }
  void save(StateWriter& out) const { out.floats(exp_avg); }
  void load(StateReader& in) { exp_avg = in.floats(); }
};

class Lion final : public PerTensorOptimizer<LionState> {
 public:
  explicit Lion(const ResolvedOptimizer& config)
      : weight_decay_(config.weight_decay),
        beta1_(config.number("beta1")),
        beta2_(config.number("beta2")) {}

  std::string name() const override { return "lion"; }

  void step(std::span<ParameterTensor> params, const StepContext& ctx) override {
    const float lr = static_cast<float>(ctx.lr);
    const float beta1 = static_cast<float>(beta1_), beta2 = static_cast<float>(beta2_);
    for (ParameterTensor& param : params) {
      check_parameter(param);
      LionState& state = state_for(param);
      const auto n = static_cast<std::size_t>(param.size());
      ensure_buffer(state.exp_avg, n, param.name, "exp_avg");
      state.step += 1;
      const float decay = 1.0f - lr * (param.decayed() ? static_cast<float>(weight_decay_) : 0.0f);
      float* m = state.exp_avg.data();
      for (std::size_t i = 0; i < n; ++i) {
        const float g = param.grad[i];
        const float c = beta1 * m[i] + (1.0f - beta1) * g;
        const float sign = c > 0.0f ? 1.0f : (c < 0.0f ? -1.0f : 0.0f);
        param.value[i] = param.value[i] * decay - lr * sign;
        m[i] = beta2 * m[i] + (1.0f - beta2) * g;
      }
    }
  }

 private:
  double weight_decay_, beta1_, beta2_;
};

}  // namespace

std::unique_ptr<Optimizer> make_lion(const ResolvedOptimizer& config) {
  return std::make_unique<Lion>(config);
}

}  // namespace tandem::engine::optim
