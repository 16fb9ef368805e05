#pragma once
// Private to kernels/cpu/*.cpp: Eigen views over the raw row-major buffers the public API takes,
// and the OpenMP thread count for a loop. Never include this from a public header.

#include <Eigen/Core>

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/threading.hpp"
#include "strategy/cpu_threading.hpp"

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

// Threads for a loop doing `work` elementary operations (~1 ns each): the rule of
// strategy/cpu_threading.hpp, which the twin's cpu cost model uses too.
inline int loop_threads(std::int64_t work) {
  return strategy::cpu_threading::loop_threads(kernel_threads(), work);
}


}  // namespace tandem::kernels::cpu::detail
