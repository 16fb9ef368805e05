#pragma once
// The outer update rules of ../shared/reference/OPTIMIZERS.md on fp32 buffers (the outer state is
// fp32). Each element is computed in double and stored as fp32, so that with one worker, outer
// learning rate 1 and no momentum DiLoCo returns exactly the inner optimizer's parameters:
// global - (global - local) is exact in double for any two floats within 2^29 of each other's
// magnitude.

#include <span>

namespace tandem::engine::outer {

// DiLoCo / SNOO / Streaming DiLoCo: SGD with Nesterov momentum, no dampening (torch.optim.SGD),
// on the outer parameters with the averaged pseudo-gradient `delta` (old global - new local):
//   b = mu * b + delta;  global -= lr * (delta + mu * b)
void nesterov_outer_step(std::span<float> global, std::span<float> momentum, std::span<const float> delta,
                         double lr, double mu);
// The same with one worker: delta = global - local, formed in double (never rounded to fp32).
void nesterov_outer_step_local(std::span<float> global, std::span<float> momentum, std::span<const float> local,
                               double lr, double mu);

// NoLoCo (heavy-ball): with mean_theta the group's mean of the fast weights,
//   delta_i = mu * delta_i + lr * (mean_theta - phi_i);  phi_i += delta_i
// (OPTIMIZERS.md writes lr * mean(theta_j - phi_j) + lr * (mean(phi_j) - phi_i), the same sum).
void noloco_outer_step(std::span<float> phi, std::span<float> velocity, std::span<const float> mean_theta,
                       double lr, double mu);

// Streaming DiLoCo: local = (1 - alpha) * global + alpha * local.
void mix_into_local(std::span<float> local, std::span<const float> global, double alpha);

}  // namespace tandem::engine::outer
