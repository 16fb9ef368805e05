#pragma once
// Private to kernels/cpu/*.cpp: Eigen views over the raw row-major buffers the public API takes,
// and the OpenMP thread count for a loop. Never include this from a public header.

#include <Eigen/Core>

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/threading.hpp"

namespace tandem::kernels::cpu::detail {

template <typename T>
using RowMajorMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
// A dense row-major matrix view (rows x cols, row stride = cols).
template <typename T>
using MatrixView = Eigen::Map<RowMajorMatrix<T>>;
template <typename T>
using ConstMatrixView = Eigen::Map<const RowMajorMatrix<T>>;
// A row-major matrix view whose rows are `stride` elements apart (a head inside a fused buffer).
template <typename T>
using StridedMatrixView = Eigen::Map<RowMajorMatrix<T>, 0, Eigen::OuterStride<>>;
template <typename T>
using ConstStridedMatrixView = Eigen::Map<const RowMajorMatrix<T>, 0, Eigen::OuterStride<>>;
template <typename T>
using VectorView = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <typename T>
using ConstVectorView = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;

// Threads for a loop doing `work` elementary operations (~1 ns each): one thread below ~2M
// operations. Waking the OpenMP team costs microseconds on an idle machine, but when other
// processes share the cores a parallel region waits for a descheduled thread for a whole time
// slice (measured: GPT-2 step layernorm/residual/GELU CPU time 10-60x higher with two threads
// on a loaded machine), so only loops long enough to amortize that are split.
inline int loop_threads(std::int64_t work) {
  constexpr std::int64_t kMinWorkPerThread = 1024 * 1024;
  const int threads = kernel_threads();
  if (threads <= 1 || work < 2 * kMinWorkPerThread) return 1;
  const std::int64_t useful = work / kMinWorkPerThread;
  return useful < threads ? static_cast<int>(useful) : threads;
}


}  // namespace tandem::kernels::cpu::detail
