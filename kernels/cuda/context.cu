#include "kernels/cuda/context.hpp"

#include <stdexcept>

namespace tandem::kernels::cuda {

void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string("CUDA error in ") + what + ": " +
                             cudaGetErrorString(status));
  }
}

void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw std::runtime_error(std::string("cuBLAS error in ") + what + ": " +
                             cublasGetStatusString(status));
  }
}

CudaContext create_context() {
  CudaContext ctx;
  check_cuda(cudaStreamCreateWithFlags(&ctx.stream, cudaStreamNonBlocking), "cudaStreamCreate");
  check_cublas(cublasCreate(&ctx.cublas), "cublasCreate");
  check_cublas(cublasSetStream(ctx.cublas, ctx.stream), "cublasSetStream");
  return ctx;
}

void destroy_context(CudaContext& ctx) {
  if (ctx.cublas) cublasDestroy(ctx.cublas);
  if (ctx.stream) cudaStreamDestroy(ctx.stream);
  ctx = CudaContext{};
}

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device / no driver" error
    return 0;
  }
  return count;
}

}  // namespace tandem::kernels::cuda
