#pragma once
// GaLore (jiaweizzhao/GaLore galore_torch: AdamW + GaLoreProjector, proj_type "std";
// OPTIMIZERS.md "GaLore"). For attention and MLP weight matrices G (m x n, the local shard),
// rank r (0 = min(full dims)/4):
//   steps 1, T+1, 2T+1, ...: SVD of G (Eigen BDCSVD, fp32); P = the top-r right singular vectors
//     (r x n, rows of V^T) if m >= n, else the top-r left singular vectors (m x r); each vector's
//     sign is fixed so that its largest-magnitude entry is positive (deterministic)
//   R = (m >= n) ? G P^T : P^T G ; Adam moments of R (kept across refreshes)
//   N = mR/(sqrt(vR) + eps) ; back = (m >= n) ? N P : P N
//   p -= lr*sqrt(1-b2^t)/(1-b1^t) * scale*back ; p -= lr*wd*p
// Every other parameter: HF-style AdamW (adamw_hf.hpp). State: 2*r*max(m,n) + r*min(m,n) fp32.

#include "engine/optim/optimizer.hpp"

namespace tandem::engine::optim {

std::unique_ptr<Optimizer> make_galore(const ResolvedOptimizer& config);

// The top-`rank` singular vectors of the row-major m x n matrix `g` as GaLore's projection:
// r x n row-major (right vectors, m >= n) or m x r row-major (left vectors, m < n), signs fixed
// as above.
std::vector<float> galore_projection(const float* g, std::int64_t m, std::int64_t n,
                                     std::int64_t rank);

}  // namespace tandem::engine::optim
