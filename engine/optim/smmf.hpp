#pragma once
// SMMF (KwangryeolPark/Official.SMMF SMMF.py, weight_decay_mode "adamw"; OPTIMIZERS.md "SMMF").
// Each tensor of n elements is viewed row-major as the most square a x b (a >= b, a*b = n).
// Momentum and second moment are kept as rank-1 non-negative factorisations (row sums r, column
// sums c, the shorter side's vector normalised to sum 1 -- with a >= b that is c) plus one sign
// bit per element for the momentum. Per step t (from 1):
//   p *= 1 - lr*wd
//   m = sign ? r_m c_m^T : -r_m c_m^T ;  v = r_v c_v^T                  (decompress)
//   b_m = beta*growth_rate^(t-1) ; m = b_m*m + (1-b_m)*g
//   b_v = 1 - t^decay_rate       ; v = b_v*v + (1-b_v)*g^2
//   sign = m > 0 ; (r_m, c_m) = sums of |m| ; (r_v, c_v) = sums of v   (compress)
//   p -= lr * m/(sqrt(v) + eps)                                        (uncompressed m, v)
// With vector_reshape false, 1-D tensors keep full m and v (same schedules).
// State: 2(a+b) fp32 + ceil(n/8) bytes of packed sign bits.

#include "engine/optim/optimizer.hpp"

namespace tandem::engine::optim {

std::unique_ptr<Optimizer> make_smmf(const ResolvedOptimizer& config);

}  // namespace tandem::engine::optim
