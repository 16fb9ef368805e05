#pragma once
// Muon (KellerJordan/Muon muon.py, MuonWithAuxAdam; OPTIMIZERS.md "Muon"). State 1P for hidden
// matrices, 2P (AdamW) for the rest.
//   hidden 2-D weights: M = b*M + (1-b)*g ; U = nesterov ? (1-b)*g + b*M : M
//     O = NS5(U) * scale ; p *= 1 - lr*wd ; p -= lr*O
//     scale "shape": sqrt(max(1, rows/cols)) (rows = fan_out); "rms": 0.2*sqrt(max(rows, cols))
//   embeddings, output head, 1-D params: PyTorch AdamW with aux_lr (scheduled like lr),
//     aux_beta1, aux_beta2, aux_eps, aux_weight_decay (never on 1-D params).
// A tensor-parallel sharded matrix (shard_count > 1) is orthogonalised whole: every step the
// Nesterov momentum is all-gathered over ctx.tensor_group, NS5 runs on the full matrix on every
// rank and each applies its own slice. MuonBP (muonbp.hpp) is the same optimizer with block steps
// between those full steps.

#include "engine/optim/optimizer.hpp"

namespace tandem::engine::optim {

// Muon (block_periodic false: every step is a full step) or MuonBP (true: period, blocks and
// block_lr_ratio from the config).
std::unique_ptr<Optimizer> make_muon_family(const ResolvedOptimizer& config, bool block_periodic);

std::unique_ptr<Optimizer> make_muon(const ResolvedOptimizer& config);

// Muon's update scale for an orthogonalised rows x cols matrix (`scaling` "shape" or "rms").
double muon_update_scale(const std::string& scaling, std::int64_t rows, std::int64_t cols);

}  // namespace tandem::engine::optim
