#pragma once
// Lion (google/automl lion_pytorch.py; OPTIMIZERS.md "Lion"). State 1P, no bias correction.
//   p *= 1 - lr*wd ; c = b1*m + (1-b1)*g ; p -= lr*sign(c) (sign(0) = 0) ; m = b2*m + (1-b2)*g

#include "engine/optim/optimizer.hpp"

namespace tandem::engine::optim {

std::unique_ptr<Optimizer> make_lion(const ResolvedOptimizer& config);

}  // namespace tandem::engine::optim
