#pragma once
// AdamW with PyTorch semantics (torch.optim.AdamW; OPTIMIZERS.md "AdamW"). State 2P.
//   p *= 1 - lr*wd ; m = b1*m + (1-b1)*g ; v = b2*v + (1-b2)*g^2
//   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)

#include <cstddef>

#include "engine/optim/optimizer.hpp"

namespace tandem::engine::optim {

// One fused AdamW update over n elements. The single switch point to the fused CPU kernel
// (kernels/cpu/adamw.hpp, tandem::kernels::cpu::adamw_update, same signature and semantics):
// when that target exists at configure time it is used, otherwise the loop in adamw.cpp.
// grad_scale multiplies every gradient as it is read (StepContext::grad_scale).
void adamw_update(float* param, const float* grad, float* m, float* v, std::size_t n, float lr,
                  float beta1, float beta2, float eps, float weight_decay, int step,
                  float grad_scale = 1.0f);

std::unique_ptr<Optimizer> make_adamw(const ResolvedOptimizer& config);

}  // namespace tandem::engine::optim
