#pragma once
// Adan (sail-sg/Adan adan.py; OPTIMIZERS.md "Adan"; the code's betas are 1 - the paper's).
// State 4P: m, d (gradient-difference moment), n, g_prev.
//   optional global-norm clip of g (max_grad_norm > 0, over the tensors of one step() call)
//   t == 1: g_prev = g ; diff = g - g_prev
//   m = b1*m + (1-b1)*g ; d = b2*d + (1-b2)*diff ; n = b3*n + (1-b3)*(g + b2*diff)^2
//   den = sqrt(n)/sqrt(1-b3^t) + eps
//   upd = lr/(1-b1^t) * m/den + lr*b2/(1-b2^t) * d/den
//   prox (default): p = (p - upd)/(1 + lr*wd) ; decoupled: p *= 1 - lr*wd ; p -= upd
//   g_prev = g

#include "engine/optim/optimizer.hpp"

namespace tandem::engine::optim {

std::unique_ptr<Optimizer> make_adan(const ResolvedOptimizer& config);

}  // namespace tandem::engine::optim
