// The CUDA backend: device memory and the kernels of kernels/cuda (cuBLAS GEMMs), one stream.
//
// STATUS: compiled and linked wherever the CUDA toolkit is found, never run by the project's tests
// (the machines it was written on have no GPU). make_cuda_backend() refuses cleanly without one.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "engine/backend/backend.hpp"
#include "kernels/cuda/kernels.hpp"

namespace tandem::engine {
namespace {

namespace k = tandem::kernels::cuda;

class CudaBackend final : public Backend<float> {
 public:
  explicit CudaBackend(int device) : device_(device) {
    k::check_cuda(cudaSetDevice(device), "cudaSetDevice");
    ctx_ = k::create_context();
  }
  ~CudaBackend() override {
    if (ones_ != nullptr) cudaFree(ones_);
    if (scratch_double_ != nullptr) cudaFree(scratch_double_);
    k::destroy_context(ctx_);
  }

  std::string name() const override { return "cuda:" + std::to_string(device_); }
  bool is_host_memory() const override { return false; }

  float* allocate(std::size_t n) override {
    void* p = nullptr;
    if (n == 0) return nullptr;
    k::check_cuda(cudaMalloc(&p, n * sizeof(float)), "cudaMalloc");
    k::check_cuda(cudaMemsetAsync(p, 0, n * sizeof(float), ctx_.stream), "cudaMemsetAsync");
    return static_cast<float*>(p);
  }
  void release(float* p) override { cudaFree(p); }
  std::int32_t* allocate_tokens(std::size_t n) override {
    void* p = nullptr;
    if (n == 0) return nullptr;
    k::check_cuda(cudaMalloc(&p, n * sizeof(std::int32_t)), "cudaMalloc");
    k::check_cuda(cudaMemsetAsync(p, 0, n * sizeof(std::int32_t), ctx_.stream), "cudaMemsetAsync");
    return static_cast<std::int32_t*>(p);
  }
  void release_tokens(std::int32_t* p) override { cudaFree(p); }
  void zero(float* p, std::size_t n) override {
    if (n > 0) k::check_cuda(cudaMemsetAsync(p, 0, n * sizeof(float), ctx_.stream), "cudaMemsetAsync");
  }
  void copy(float* dst, const float* src, std::size_t n) override {
    if (n > 0 && dst != src)
      k::check_cuda(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, ctx_.stream),
                    "cudaMemcpyAsync");
  }
  void upload(float* dst, const float* host, std::size_t n) override {
    if (n > 0)
      k::check_cuda(cudaMemcpyAsync(dst, host, n * sizeof(float), cudaMemcpyHostToDevice, ctx_.stream),
                    "cudaMemcpyAsync");
    synchronize();  // the host buffer may be reused at once
  }
  void download(float* host, const float* src, std::size_t n) override {
    if (n > 0)
      k::check_cuda(cudaMemcpyAsync(host, src, n * sizeof(float), cudaMemcpyDeviceToHost, ctx_.stream),
                    "cudaMemcpyAsync");
    synchronize();
  }
  void upload_tokens(std::int32_t* dst, const std::int32_t* host, std::size_t n) override {
    if (n > 0)
      k::check_cuda(cudaMemcpyAsync(dst, host, n * sizeof(std::int32_t), cudaMemcpyHostToDevice, ctx_.stream),
                    "cudaMemcpyAsync");
    synchronize();
  }
  void synchronize() override { k::check_cuda(cudaStreamSynchronize(ctx_.stream), "cudaStreamSynchronize"); }

  void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int M, int K,
                      int N) override {
    k::matmul_forward(ctx_, out, inp, weight, bias, M, K, N);
  }
  void matmul_backward_input(float* dinp, const float* dout, const float* weight, int M, int K, int N,
                             bool accumulate) override {
    k::matmul_backward_input(ctx_, dinp, dout, weight, M, K, N, accumulate);
  }
  void matmul_backward_weight(float* dweight, float* dbias, const float* dout, const float* inp, int M, int K,
                              int N) override {
    k::matmul_backward_weight(ctx_, dweight, dbias, dout, inp, M, K, N);
  }
  void bias_backward(float* dbias, const float* dout, int M, int N) override {
    // dbias (N) += doutᵀ (N x M, column-major view of the row-major (M,N)) · ones (M).
    ensure_ones(M);
    const float alpha = 1.0f, beta = 1.0f;
    k::check_cublas(cublasSgemv(ctx_.cublas, CUBLAS_OP_N, N, M, &alpha, dout, N, ones_, 1, &beta, dbias, 1),
                    "cublasSgemv");
  }

  void attention_forward(float* out, float* logsumexp, const float* qkv, int B, int T, int Hq, int Hkv,
                         int D) override {
    k::attention_forward(ctx_, out, logsumexp, qkv, B, T, Hq, Hkv, D);
  }
  void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* out,
                          const float* logsumexp, int B, int T, int Hq, int Hkv, int D) override {
    k::attention_backward(ctx_, dqkv, dout, qkv, out, logsumexp, B, T, Hq, Hkv, D);
  }
  void rope_forward(float* qkv, int B, int T, int Hq, int Hkv, int D, double theta) override {
    k::rope_forward(ctx_, qkv, B, T, Hq, Hkv, D, theta);
  }
  void rope_backward(float* dqkv, int B, int T, int Hq, int Hkv, int D, double theta) override {
    k::rope_backward(ctx_, dqkv, B, T, Hq, Hkv, D, theta);
  }

  void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                         const float* bias, int M, int C) override {
    k::layernorm_forward(ctx_, out, mean, rstd, inp, weight, bias, M, C);
  }
  void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                          const float* weight, const float* mean, const float* rstd, int M, int C,
                          bool accumulate) override {
    k::layernorm_backward(ctx_, dinp, dweight, dbias, dout, inp, weight, mean, rstd, M, C, accumulate);
  }
  void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int M, int C) override {
    k::rmsnorm_forward(ctx_, out, rstd, inp, weight, M, C);
  }
  void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                        const float* rstd, int M, int C, bool accumulate) override {
    k::rmsnorm_backward(ctx_, dinp, dweight, dout, inp, weight, rstd, M, C, accumulate);
  }

  void gelu_forward(float* out, const float* inp, std::size_t n) override { k::gelu_forward(ctx_, out, inp, n); }
  void gelu_backward(float* dinp, const float* inp, const float* dout, std::size_t n) override {
    k::gelu_backward(ctx_, dinp, inp, dout, n);
  }
  void swiglu_forward(float* out, const float* inp, int M, int F) override {
    k::swiglu_forward(ctx_, out, inp, M, F);
  }
  void swiglu_backward(float* dinp, const float* inp, const float* dout, int M, int F) override {
    k::swiglu_backward(ctx_, dinp, inp, dout, M, F);
  }

  void embedding_forward(float* out, const std::int32_t* tokens, const float* token_table,
                         const float* position_table, int B, int T, int C, int vocab_start, int V_local) override {
    k::embedding_forward(ctx_, out, tokens, token_table, position_table, B, T, C, vocab_start, V_local);
  }
  void embedding_backward(float* token_table_grad, float* position_table_grad, const float* dout,
                          const std::int32_t* tokens, int B, int T, int C, int vocab_start, int V_local) override {
    k::embedding_backward(ctx_, token_table_grad, position_table_grad, dout, tokens, B, T, C, vocab_start,
                          V_local);
  }

  void cross_entropy_forward(float* losses, float* logsumexp, const float* logits, const std::int32_t* targets,
                             int M, int V, int valid_vocab) override {
    k::cross_entropy_forward(ctx_, losses, logsumexp, logits, targets, M, V, valid_vocab);
  }
  void cross_entropy_backward(float* dlogits, const float* logits, const float* logsumexp,
                              const std::int32_t* targets, float dloss, int M, int V, int valid_vocab) override {
    k::cross_entropy_backward(ctx_, dlogits, logits, logsumexp, targets, dloss, M, V, valid_vocab);
  }
  void vocab_parallel_statistics(float* stats, const float* logits, const std::int32_t* targets, int M,
                                 int V_local, int vocab_start, int valid_vocab) override {
    k::vocab_parallel_max(ctx_, stats, logits, M, V_local, vocab_start, valid_vocab);
    k::vocab_parallel_sum_exp(ctx_, stats + M, logits, stats, M, V_local, vocab_start, valid_vocab);
    k::vocab_parallel_target_logit(ctx_, stats + 2 * static_cast<std::size_t>(M), logits, targets, M, V_local,
                                   vocab_start);
  }
  void vocab_parallel_combine(float* losses, float* logsumexp, const float* gathered,
                              const std::int32_t* targets, int M, int shards) override {
    // Small (3·M·shards values): combined on the host.
    const std::size_t block = 3 * static_cast<std::size_t>(M);
    std::vector<float> host(block * static_cast<std::size_t>(shards));
    std::vector<std::int32_t> host_targets(static_cast<std::size_t>(M));
    download(host.data(), gathered, host.size());
    k::check_cuda(cudaMemcpy(host_targets.data(), targets, sizeof(std::int32_t) * host_targets.size(),
                             cudaMemcpyDeviceToHost),
                  "cudaMemcpy");
    std::vector<float> host_losses(static_cast<std::size_t>(M)), host_lse(static_cast<std::size_t>(M));
    for (int i = 0; i < M; ++i) {
      double global_max = -std::numeric_limits<double>::infinity();
      for (int r = 0; r < shards; ++r) global_max = std::max(global_max, static_cast<double>(host[r * block + i]));
      double sum = 0, target = 0;
      for (int r = 0; r < shards; ++r) {
        const double local_sum = host[r * block + M + i];
        if (local_sum > 0) sum += local_sum * std::exp(host[r * block + i] - global_max);
        target += host[r * block + 2 * M + i];
      }
      const double lse = global_max + std::log(sum);
      host_lse[i] = static_cast<float>(lse);
      host_losses[i] = host_targets[i] >= 0 ? static_cast<float>(lse - target) : 0.0f;
    }
    upload(losses, host_losses.data(), host_losses.size());
    upload(logsumexp, host_lse.data(), host_lse.size());
  }
  void vocab_parallel_backward(float* dlogits, const float* logits, const float* logsumexp,
                               const std::int32_t* targets, float dloss, int M, int V_local, int vocab_start,
                               int valid_vocab) override {
    k::vocab_parallel_backward(ctx_, dlogits, logits, logsumexp, targets, dloss, M, V_local, vocab_start,
                               valid_vocab);
  }

  void residual_forward(float* out, const float* a, const float* b, std::size_t n) override {
    k::residual_forward(ctx_, out, a, b, n);
  }
  void add_in_place(float* a, const float* b, std::size_t n) override { k::add_in_place(ctx_, a, b, n); }
  double sum_of_squares(const float* x, std::size_t n) override {
    if (scratch_double_ == nullptr)
      k::check_cuda(cudaMalloc(reinterpret_cast<void**>(&scratch_double_), sizeof(double)), "cudaMalloc");
    k::sum_of_squares(ctx_, scratch_double_, x, n);
    double result = 0;
    k::check_cuda(cudaMemcpyAsync(&result, scratch_double_, sizeof(double), cudaMemcpyDeviceToHost, ctx_.stream),
                  "cudaMemcpyAsync");
    synchronize();
    return result;
  }
  void scale_in_place(float* x, std::size_t n, float scale) override { k::scale_in_place(ctx_, x, n, scale); }
  double sum(const float* x, std::size_t n) override {
    std::vector<float> host(n);
    download(host.data(), x, n);
    double total = 0;
    for (float value : host) total += value;
    return total;
  }
  void copy_columns(float* dst, int dst_cols, int dst_col, const float* src, int rows, int cols) override {
    k::check_cuda(cudaMemcpy2DAsync(dst + dst_col, sizeof(float) * dst_cols, src, sizeof(float) * cols,
                                    sizeof(float) * cols, rows, cudaMemcpyDeviceToDevice, ctx_.stream),
                  "cudaMemcpy2DAsync");
  }

 private:
  void ensure_ones(int n) {
    if (n <= ones_size_) return;
    if (ones_ != nullptr) cudaFree(ones_);
    k::check_cuda(cudaMalloc(reinterpret_cast<void**>(&ones_), sizeof(float) * n), "cudaMalloc");
    std::vector<float> host(static_cast<std::size_t>(n), 1.0f);
    k::check_cuda(cudaMemcpy(ones_, host.data(), sizeof(float) * n, cudaMemcpyHostToDevice), "cudaMemcpy");
    ones_size_ = n;
  }

  int device_;
  k::CudaContext ctx_{};
  float* ones_ = nullptr;
  int ones_size_ = 0;
  double* scratch_double_ = nullptr;
};

}  // namespace

bool cuda_backend_compiled() { return true; }

std::unique_ptr<Backend<float>> make_cuda_backend(int device) {
  const int devices = k::device_count();
  if (devices <= 0)
    throw BackendError(
        "no CUDA device found: cluster.gpu selects a GPU profile, but this machine has no usable GPU "
        "(use cluster.gpu: cpu to train on the CPU)");
  if (device < 0) {
    int local_rank = 0;
    for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "MV2_COMM_WORLD_LOCAL_RANK"}) {
      if (const char* value = std::getenv(name)) {
        local_rank = std::atoi(value);
        break;
      }
    }
    device = local_rank % devices;
  }
  try {
    return std::make_unique<CudaBackend>(device);
  } catch (const std::exception& error) {
    throw BackendError(std::string("no CUDA device found: CUDA device ") + std::to_string(device) +
                       " cannot be used (" + error.what() + ")");
  }
}

}  // namespace tandem::engine
