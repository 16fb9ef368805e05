#pragma once
// How the engine's CPU backend splits a GEMM over a rank's threads. The kernels
// (kernels/cpu/matmul.cpp) follow this rule and the twin's cost model of the `cpu` backend
// (sim/compute_cost.cpp) predicts with it, so both run every GEMM on the same number of threads
// with the same blocks. Header-only: the kernels use it without linking the strategy layer.

#include <algorithm>
#include <cstdint>

namespace tandem::strategy::cpu_threading {

// Only GEMMs of a few MFLOP or more are split: below that waking the OpenMP team costs more than
// it saves.
inline constexpr double kMinSplitGemmFlops = 4e6;
// Every thread gets at least this many output rows or columns: Eigen's packing would dominate
// thinner blocks.
inline constexpr std::int64_t kMinSplitExtent = 64;

// Threads for a GEMM of `flops` whose output is split along a dimension of `extent` (the
// larger of the output's rows and columns) on a rank with `threads` threads.
constexpr int gemm_threads(int threads, std::int64_t extent, double flops) {
  if (threads <= 1 || flops < kMinSplitGemmFlops) return 1;
  return static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, extent / kMinSplitExtent)));
}

// The block of `extent` each of `threads` threads takes: equal shares rounded up to a multiple of
// 16 (a cache-line pair of floats); the last block is what remains.
constexpr std::int64_t split_block(std::int64_t extent, int threads) {
  if (threads <= 1) return extent;
  return ((extent + threads - 1) / threads + 15) / 16 * 16;
}

}  // namespace tandem::strategy::cpu_threading
