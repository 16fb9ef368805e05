#pragma once
// How the engine's CPU backend splits work over a rank's threads. The kernels (kernels/cpu) follow
// these rules and the twin's cost model of the `cpu` backend (sim/compute_cost.cpp) predicts with
// them, so both run every GEMM on the same number of threads with the same blocks, and loops
// (norms, element-wise, loss, optimizer) with the same work threshold. Header-only: the kernels
// use it without linking the strategy layer.

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

// Loops (everything but GEMMs) are split only when each thread gets at least this much work,
// counted in elementary operations of ~1 ns (about one FLOP): waking the OpenMP team costs
// microseconds on an idle machine, and on shared cores a parallel region can wait a whole time
// slice for a descheduled thread. The twin counts an op's work as its FLOPs (the built-in cpu
// profile's cpu.parallel_grain is this number).
inline constexpr std::int64_t kMinLoopWorkPerThread = 1024 * 1024;

// Threads for a loop of `work` elementary operations on a rank with `threads` threads.
constexpr int loop_threads(int threads, std::int64_t work) {
  if (threads <= 1 || work < 2 * kMinLoopWorkPerThread) return 1;
  return static_cast<int>(std::min<std::int64_t>(threads, work / kMinLoopWorkPerThread));
}

// Causal attention runs in blocks of this many query rows per (batch, head): each block's scores
// (rows x the keys it can see) stay in L2.
inline constexpr int kAttentionQueryBlock = 64;

// The fraction of the T x T score matrix the blocked causal kernel computes: a block of rows
// starting at query i0 computes scores against keys [0, i0 + rows), so the masked triangle is
// skipped block by block (T = 64: all of it, 1; T = 128: 0.75; T = 1024: ~0.53).
constexpr double attention_scores_fraction(std::int64_t T) {
  if (T <= 0) return 1.0;
  double computed = 0;
  for (std::int64_t i0 = 0; i0 < T; i0 += kAttentionQueryBlock) {
    const std::int64_t rows = std::min<std::int64_t>(kAttentionQueryBlock, T - i0);
    computed += static_cast<double>(rows) * static_cast<double>(i0 + rows);
  }
  return computed / (static_cast<double>(T) * static_cast<double>(T));
}

}  // namespace tandem::strategy::cpu_threading
