#pragma once
// Private to kernels/cuda/*.cu: launch checks and block reductions.

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/context.hpp"

namespace tandem::kernels::cuda::detail {

constexpr int kWarp = 32;

inline unsigned blocks_for(std::int64_t n, int threads) {
  return static_cast<unsigned>((n + threads - 1) / threads);
}

// Throws if the last launch failed (configuration errors surface here; execution errors at the
// next synchronization).
inline void check_launch(const char* what) { check_cuda(cudaGetLastError(), what); }

template <typename Scalar>
__device__ inline Scalar warp_sum(Scalar v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

template <typename Scalar>
__device__ inline Scalar warp_max(Scalar v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2)
    v = max(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Sum over the whole block (blockDim.x a multiple of 32, at most 1024); every thread gets the
// result. `scratch` holds 32 values of shared memory; the call synchronizes the block.
template <typename Scalar>
__device__ inline Scalar block_sum(Scalar v, Scalar* scratch) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int warps = blockDim.x / kWarp;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous reduction
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : Scalar(0);
  return warp_sum(v);
}

template <typename Scalar>
__device__ inline Scalar block_max(Scalar v, Scalar* scratch) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int warps = blockDim.x / kWarp;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : Scalar(-INFINITY);
  return warp_max(v);
}

}  // namespace tandem::kernels::cuda::detail
