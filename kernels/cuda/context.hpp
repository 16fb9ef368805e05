#pragma once
// What every CUDA kernel call needs: the stream it is queued on and the cuBLAS handle its GEMMs
// use. All pointers passed to the kernels in kernels/cuda are DEVICE pointers; every call is
// asynchronous on ctx.stream (synchronize before reading results on the host).

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <string>

namespace tandem::kernels::cuda {

struct CudaContext {
  cudaStream_t stream = nullptr;   // nullptr: the legacy default stream
  cublasHandle_t cublas = nullptr;
};

// Creates a non-blocking stream and a cuBLAS handle bound to it on the current device.
// Throws std::runtime_error (with the CUDA/cuBLAS error text) on failure.
CudaContext create_context();
void destroy_context(CudaContext& ctx);

// Throws std::runtime_error naming `what` when status is not success.
void check_cuda(cudaError_t status, const char* what);
void check_cublas(cublasStatus_t status, const char* what);

// Number of CUDA devices, 0 when there is none or no driver (never throws).
int device_count();

}  // namespace tandem::kernels::cuda
