#pragma once
// APOLLO and APOLLO-Mini (zhuhanqing/APOLLO apollo_torch: AdamW + GradientProjector;
// OPTIMIZERS.md "APOLLO"). For attention and MLP weight matrices G (m x n, the local shard),
// rank r (0 = min(full dims)/4):
//   steps 1, T+1, 2T+1, ...: new random projection P ~ N(0, 1/r), r x n if m >= n else m x r,
//     seeded from the scenario seed and the tensor name (random.hpp)
//   R = (m >= n) ? G P^T : P^T G ;  Adam moments of R (kept across refreshes)
//   N = mR/(sqrt(vR) + eps)
//   channel: s = norms of N / norms of R (+1e-8) over R's rows (m >= n) or columns (m < n),
//            broadcast over G's rows or columns; tensor: s = ||N||_F/(||R||_F + 1e-8)
//   Gs = G*s ; [scale_front: Gs *= sqrt(scale)]
//   norm-growth limiter: from the second step, if ||Gs|| > limit*previous: Gs *= limit*previous/||Gs||;
//     previous = ||Gs|| after limiting
//   [not scale_front: Gs *= sqrt(scale)]     (the reference multiplies by the SQUARE ROOT of scale)
//   p -= lr*sqrt(1-b2^t)/(1-b1^t) * Gs ; p -= lr*wd*p
// Every other parameter: HF-style AdamW (adamw_hf.hpp) with the same lr, betas, eps, wd.
// State: subspace m and v (2*r*max(m,n)) plus the projection (r*min(m,n)), all fp32; the
// projection is saved with the checkpoint together with its seed and refresh count.

#include "engine/optim/optimizer.hpp"

namespace tandem::engine::optim {

// config.name "apollo" or "apollo-mini" (the same rule, different defaults).
std::unique_ptr<Optimizer> make_apollo(const ResolvedOptimizer& config);

}  // namespace tandem::engine::optim
