#include "engine/outer/outer_update.hpp"

#include <cassert>
#include <cstddef>

namespace tandem::engine::outer {
namespace {

inline void nesterov(float& global, float& momentum, double delta, double lr, double mu) {
  const double b = mu * static_cast<double>(momentum) + delta;
  momentum = static_cast<float>(b);
  global = static_cast<float>(static_cast<double>(global) - lr * (delta + mu * b));
}

}  // namespace

void nesterov_outer_step(std::span<float> global, std::span<float> momentum, std::span<const float> delta,
                         double lr, double mu) {
  assert(global.size() == momentum.size() && global.size() == delta.size());
  for (std::size_t i = 0; i < global.size(); ++i) nesterov(global[i], momentum[i], delta[i], lr, mu);
}

void nesterov_outer_step_local(std::span<float> global, std::span<float> momentum, std::span<const float> local,
                               double lr, double mu) {
  assert(global.size() == momentum.size() && global.size() == local.size());
  for (std::size_t i = 0; i < global.size(); ++i)
    nesterov(global[i], momentum[i], static_cast<double>(global[i]) - static_cast<double>(local[i]), lr, mu);
}

void noloco_outer_step(std::span<float> phi, std::span<float> velocity, std::span<const float> mean_theta,
                       double lr, double mu) {
  assert(phi.size() == velocity.size() && phi.size() == mean_theta.size());
  for (std::size_t i = 0; i < phi.size(); ++i) {
    const double v = mu * static_cast<double>(velocity[i]) +
                     lr * (static_cast<double>(mean_theta[i]) - static_cast<double>(phi[i]));
    velocity[i] = static_cast<float>(v);
    phi[i] = static_cast<float>(static_cast<double>(phi[i]) + v);
  }
}

void mix_into_local(std::span<float> local, std::span<const float> global, double alpha) {
  assert(local.size() == global.size());
  for (std::size_t i = 0; i < local.size(); ++i)
    local[i] = static_cast<float>((1.0 - alpha) * static_cast<double>(global[i]) + alpha * static_cast<double>(local[i]));
}

}  // namespace tandem::engine::outer
