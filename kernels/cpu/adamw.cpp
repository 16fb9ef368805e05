#include "kernels/cpu/adamw.hpp"

#include <cassert>
#include <cmath>
#include <cstdint>

#include "kernels/cpu/detail/eigen_views.hpp"

namespace tandem::kernels::cpu {

void adamw_update(float* param, const float* grad, float* m, float* v, std::size_t n, float lr,
                  float beta1, float beta2, float eps, float weight_decay, int step,
                  float grad_scale) {
  assert(step >= 1);
  const double bias_correction1 = 1.0 - std::pow(static_cast<double>(beta1), step);
  const double bias_correction2 = 1.0 - std::pow(static_cast<double>(beta2), step);
  const float step_size = static_cast<float>(static_cast<double>(lr) / bias_correction1);
  const float inv_bias_correction2_sqrt = static_cast<float>(1.0 / std::sqrt(bias_correction2));
  const float decay = static_cast<float>(1.0 - static_cast<double>(lr) * weight_decay);
  const float one_minus_beta1 = 1.0f - beta1;
  const float one_minus_beta2 = 1.0f - beta2;
  const auto count = static_cast<std::int64_t>(n);
#pragma omp parallel for simd num_threads(detail::loop_threads(count * 8)) schedule(static)
  for (std::int64_t i = 0; i < count; ++i) {
    const float g = grad[i] * grad_scale;
    const float m_new = beta1 * m[i] + one_minus_beta1 * g;
    const float v_new = beta2 * v[i] + one_minus_beta2 * g * g;
    m[i] = m_new;
    v[i] = v_new;
    const float denom = std::sqrt(v_new) * inv_bias_correction2_sqrt + eps;
    param[i] = param[i] * decay - step_size * m_new / denom;
  }
}

}  // namespace tandem::kernels::cpu
