#pragma once
// Fused AdamW update with torch.optim.AdamW semantics (decoupled weight decay), one pass over
// the parameters. step counts from 1 (the first update uses step = 1).
//   param *= 1 − lr·weight_decay
//   m      = beta1·m + (1 − beta1)·grad
//   v      = beta2·v + (1 − beta2)·grad²
//   param −= lr / (1 − beta1^step) · m / (sqrt(v) / sqrt(1 − beta2^step) + eps)
// m and v start at zero. The bias corrections are computed in double. Runs on kernel_threads().
// grad_scale multiplies every gradient as it is read (gradient-norm clipping folded into the
// update: the same float product as scale_in_place(grad, n, grad_scale) first, without the
// extra pass over the gradients; grad itself is not modified).

#include <cstddef>

namespace tandem::kernels::cpu {

void adamw_update(float* param, const float* grad, float* m, float* v, std::size_t n, float lr,
                  float beta1, float beta2, float eps, float weight_decay, int step,
                  float grad_scale = 1.0f);

}  // namespace tandem::kernels::cpu
