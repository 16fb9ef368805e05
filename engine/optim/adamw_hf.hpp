#pragma once
// AdamW as in HuggingFace transformers, the variant GaLore and APOLLO ship and use for every
// parameter they do not project (OPTIMIZERS.md "AdamW", HF variant). State 2P.
//   m = b1*m + (1-b1)*g ; v = b2*v + (1-b2)*g^2
//   p -= lr*sqrt(1-b2^t)/(1-b1^t) * m/(sqrt(v) + eps) ; p -= lr*wd*p   (decay after the update)

#include <cstddef>
#include <vector>

#include "engine/optim/optimizer.hpp"

namespace tandem::engine::optim {

void adamw_hf_update(float* param, const float* grad, float* m, float* v, std::size_t n, float lr,
                     float beta1, float beta2, float eps, float weight_decay, std::int64_t step);

// One AdamW-HF step of a whole tensor on its moments `m` and `v` (allocated on first use), `step`
// being the step count including this one; weight decay only for parameters that decay. AdamW-HF
// itself, and GaLore and APOLLO for the tensors they do not project.
void adamw_hf_tensor_step(ParameterTensor& param, std::vector<float>& m, std::vector<float>& v, std::int64_t step,
                          double lr, double beta1, double beta2, double eps, double weight_decay);

std::unique_ptr<Optimizer> make_adamw_hf(const ResolvedOptimizer& config);

}  // namespace tandem::engine::optim
