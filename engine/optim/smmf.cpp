#include "engine/optim/smmf.hpp"

#include <cmath>

#include "engine/optim/state_io.hpp"

namespace tandem::engine::optim {
namespace {

struct SmmfState : TensorStateBase {
  std::vector<float> momentum_rows, momentum_cols, variance_rows, variance_cols;
  std::vector<std::uint8_t> momentum_sign;  // bit i: element i of the momentum is > 0
  std::vector<float> exp_avg, exp_avg_sq;   // unfactorised 1-D tensors (vector_reshape false)
  std::size_t bytes() const {
    return buffer_bytes(momentum_rows) + buffer_bytes(momentum_cols) +
           buffer_bytes(variance_rows) + buffer_bytes(variance_cols) + momentum_sign.size() +
           buffer_bytes(exp_avg) + buffer_bytes(exp_avg_sq);
  }
  void save(StateWriter& out) const {
    out.floats(momentum_rows);
    out.floats(momentum_cols);
    out.floats(variance_rows);
    out.floats(variance_cols);
    out.bytes(momentum_sign);
    out.floats(exp_avg);
    out.floats(exp_avg_sq);
  }
  void load(StateReader& in) {
    momentum_rows = in.floats();
    momentum_cols = in.floats();
    variance_rows = in.floats();
    variance_cols = in.floats();
    momentum_sign = in.bytes();
    exp_avg = in.floats();
    exp_avg_sq = in.floats();
  }
};

// Reference _nnmf: the shorter side's sum vector is normalised to sum 1 (when its sum is not 0).
void normalise_shorter(std::vector<double>& rows, std::vector<double>& cols) {
  std::vector<double>& shorter = rows.size() < cols.size() ? rows : cols;
  double total = 0;
  for (const double x : shorter) total += x;
  if (total != 0) {
    for (double& x : shorter) x /= total;
  }
}

class Smmf final : public PerTensorOptimizer<SmmfState> {
 public:
  explicit Smmf(const ResolvedOptimizer& config)
      : weight_decay_(config.weight_decay),
        beta_(config.number("beta")),
        eps_(config.number("eps")),
        decay_rate_(config.number("decay_rate")),
        growth_rate_(config.number("growth_rate")),
        vector_reshape_(config.boolean("vector_reshape")) {}

  std::string name() const override { return "smmf"; }

  void step(std::span<ParameterTensor> params, const StepContext& ctx) override {
    for (ParameterTensor& param : params) {
      check_parameter(param);
      SmmfState& state = state_for(param);
      state.step += 1;
      const double t = static_cast<double>(state.step);
      const float beta_m = static_cast<float>(beta_ * std::pow(growth_rate_, t - 1.0));
      const float beta_v = static_cast<float>(1.0 - std::pow(t, decay_rate_));
      const float lr = static_cast<float>(ctx.lr);
      const float eps = static_cast<float>(eps_);
      const float decay = 1.0f - lr * (param.decayed() ? static_cast<float>(weight_decay_) : 0.0f);
      const auto n = static_cast<std::size_t>(param.size());

      if (param.role == ParameterRole::Vector && !vector_reshape_) {
        ensure_buffer(state.exp_avg, n, param.name, "exp_avg");
        ensure_buffer(state.exp_avg_sq, n, param.name, "exp_avg_sq");
        for (std::size_t i = 0; i < n; ++i) {
          const float g = param.grad[i];
          const float m = beta_m * state.exp_avg[i] + (1.0f - beta_m) * g;
          const float v = beta_v * state.exp_avg_sq[i] + (1.0f - beta_v) * g * g;
          state.exp_avg[i] = m;
          state.exp_avg_sq[i] = v;
          param.value[i] = param.value[i] * decay - lr * (m / (std::sqrt(v) + eps));
        }
        continue;
      }

      const auto [a64, b64] = strategy::most_square_factorization(param.size());
      const auto a = static_cast<std::size_t>(a64), b = static_cast<std::size_t>(b64);
      ensure_buffer(state.momentum_rows, a, param.name, "momentum row factors");
      ensure_buffer(state.momentum_cols, b, param.name, "momentum column factors");
      ensure_buffer(state.variance_rows, a, param.name, "variance row factors");
      ensure_buffer(state.variance_cols, b, param.name, "variance column factors");
      if (state.momentum_sign.empty()) state.momentum_sign.assign((n + 7) / 8, 0);
      if (state.momentum_sign.size() != (n + 7) / 8) {
        throw std::runtime_error("optimizer state for '" + param.name +
                                 "': momentum sign bits do not match the parameter's size");
      }

      std::vector<double> new_momentum_rows(a, 0.0), new_momentum_cols(b, 0.0);
      std::vector<double> new_variance_rows(a, 0.0), new_variance_cols(b, 0.0);
      std::uint8_t* sign = state.momentum_sign.data();
      for (std::size_t i = 0; i < a; ++i) {
        const float momentum_row = state.momentum_rows[i];
        const float variance_row = state.variance_rows[i];
        double momentum_row_sum = 0, variance_row_sum = 0;
        for (std::size_t j = 0; j < b; ++j) {
          const std::size_t index = i * b + j;
          const std::uint8_t mask = static_cast<std::uint8_t>(1u << (index & 7));
          const bool positive = (sign[index >> 3] & mask) != 0;
          const float magnitude = momentum_row * state.momentum_cols[j];
          const float old_m = positive ? magnitude : -magnitude;
          const float old_v = variance_row * state.variance_cols[j];
          const float g = param.grad[index];
          const float m = beta_m * old_m + (1.0f - beta_m) * g;
          const float v = beta_v * old_v + (1.0f - beta_v) * g * g;
          if (m > 0.0f) {
            sign[index >> 3] |= mask;
          } else {
            sign[index >> 3] &= static_cast<std::uint8_t>(~mask);
          }
          const double abs_m = std::fabs(m);
          momentum_row_sum += abs_m;
          new_momentum_cols[j] += abs_m;
          variance_row_sum += v;
          new_variance_cols[j] += v;
          param.value[index] = param.value[index] * decay - lr * (m / (std::sqrt(v) + eps));
        }
        new_momentum_rows[i] = momentum_row_sum;
        new_variance_rows[i] = variance_row_sum;
      }
      normalise_shorter(new_momentum_rows, new_momentum_cols);
      normalise_shorter(new_variance_rows, new_variance_cols);
      for (std::size_t i = 0; i < a; ++i) {
        state.momentum_rows[i] = static_cast<float>(new_momentum_rows[i]);
        state.variance_rows[i] = static_cast<float>(new_variance_rows[i]);
      }
      for (std::size_t j = 0; j < b; ++j) {
        state.momentum_cols[j] = static_cast<float>(new_momentum_cols[j]);
        state.variance_cols[j] = static_cast<float>(new_variance_cols[j]);
      }
    }
  }

 private:
  double weight_decay_, beta_, eps_, decay_rate_, growth_rate_;
  bool vector_reshape_;
};

}  // namespace

std::unique_ptr<Optimizer> make_smmf(const ResolvedOptimizer& config) {
  return std::make_unique<Smmf>(config);
}

}  // namespace tandem::engine::optim
