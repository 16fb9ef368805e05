// The CPU backend: host memory (64-byte aligned) and the kernels of kernels/cpu.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>

#include "engine/backend/backend.hpp"
#include "kernels/cpu/kernels.hpp"

namespace tandem::engine {
namespace {

namespace k = tandem::kernels::cpu;

void* aligned_zeroed(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  const std::size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, rounded);
  return p;
}

template <typename Scalar>
class CpuBackend final : public Backend<Scalar> {
 public:
  std::string name() const override { return "cpu"; }
  bool is_host_memory() const override { return true; }

  Scalar* allocate(std::size_t n) override { return static_cast<Scalar*>(aligned_zeroed(n * sizeof(Scalar))); }
  void release(Scalar* p) override { std::free(p); }
  std::int32_t* allocate_tokens(std::size_t n) override {
    return static_cast<std::int32_t*>(aligned_zeroed(n * sizeof(std::int32_t)));
  }
  void release_tokens(std::int32_t* p) override { std::free(p); }
  void zero(Scalar* p, std::size_t n) override {
    if (n > 0) std::memset(p, 0, n * sizeof(Scalar));
  }
  void copy(Scalar* dst, const Scalar* src, std::size_t n) override {
    if (n > 0 && dst != src) std::memmove(dst, src, n * sizeof(Scalar));
  }
  void upload(Scalar* dst, const Scalar* host, std::size_t n) override { copy(dst, host, n); }
  void download(Scalar* host, const Scalar* src, std::size_t n) override { copy(host, src, n); }
  void upload_tokens(std::int32_t* dst, const std::int32_t* host, std::size_t n) override {
    if (n > 0 && dst != host) std::memcpy(dst, host, n * sizeof(std::int32_t));
  }
  void synchronize() override {}

  void matmul_forward(Scalar* out, const Scalar* inp, const Scalar* weight, const Scalar* bias, int M, int K,
                      int N) override {
    k::matmul_forward(out, inp, weight, bias, M, K, N);
  }
  void matmul_backward_input(Scalar* dinp, const Scalar* dout, const Scalar* weight, int M, int K, int N,
                             bool accumulate) override {
    k::matmul_backward_input(dinp, dout, weight, M, K, N, accumulate);
  }
  void matmul_backward_weight(Scalar* dweight, Scalar* dbias, const Scalar* dout, const Scalar* inp, int M,
                              int K, int N) override {
    k::matmul_backward_weight(dweight, dbias, dout, inp, M, K, N);
  }
  void bias_backward(Scalar* dbias, const Scalar* dout, int M, int N) override {
    // Rows in order, so the sum is the same whatever the thread count.
    for (int i = 0; i < M; ++i) {
      const Scalar* row = dout + static_cast<std::size_t>(i) * N;
#pragma omp simd
      for (int j = 0; j < N; ++j) dbias[j] += row[j];
    }
  }

  void attention_forward(Scalar* out, Scalar* logsumexp, const Scalar* qkv, int B, int T, int Hq, int Hkv,
                         int D) override {
    k::attention_forward(out, logsumexp, qkv, B, T, Hq, Hkv, D);
  }
  void attention_backward(Scalar* dqkv, const Scalar* dout, const Scalar* qkv, const Scalar* out,
                          const Scalar* logsumexp, int B, int T, int Hq, int Hkv, int D) override {
    k::attention_backward(dqkv, dout, qkv, out, logsumexp, B, T, Hq, Hkv, D);
  }
  void rope_forward(Scalar* qkv, int B, int T, int Hq, int Hkv, int D, double theta) override {
    k::rope_forward(qkv, B, T, Hq, Hkv, D, theta);
  }
  void rope_backward(Scalar* dqkv, int B, int T, int Hq, int Hkv, int D, double theta) override {
    k::rope_backward(dqkv, B, T, Hq, Hkv, D, theta);
  }

  void layernorm_forward(Scalar* out, Scalar* mean, Scalar* rstd, const Scalar* inp, const Scalar* weight,
                         const Scalar* bias, int M, int C) override {
    k::layernorm_forward(out, mean, rstd, inp, weight, bias, M, C);
  }
  void layernorm_backward(Scalar* dinp, Scalar* dweight, Scalar* dbias, const Scalar* dout, const Scalar* inp,
                          const Scalar* weight, const Scalar* mean, const Scalar* rstd, int M, int C,
                          bool accumulate) override {
    k::layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, M, C, accumulate);
  }
  void rmsnorm_forward(Scalar* out, Scalar* rstd, const Scalar* inp, const Scalar* weight, int M,
                       int C) override {
    k::rmsnorm_forward(out, rstd, inp, weight, M, C);
  }
  void rmsnorm_backward(Scalar* dinp, Scalar* dweight, const Scalar* dout, const Scalar* inp,
                        const Scalar* weight, const Scalar* rstd, int M, int C, bool accumulate) override {
    k::rmsnorm_backward(dinp, dweight, dout, inp, weight, rstd, M, C, accumulate);
  }

  void gelu_forward(Scalar* out, const Scalar* inp, std::size_t n) override { k::gelu_forward(out, inp, n); }
  void gelu_backward(Scalar* dinp, const Scalar* inp, const Scalar* dout, std::size_t n) override {
    k::gelu_backward(dinp, inp, dout, n);
  }
  void swiglu_forward(Scalar* out, const Scalar* inp, int M, int F) override { k::swiglu_forward(out, inp, M, F); }
  void swiglu_backward(Scalar* dinp, const Scalar* inp, const Scalar* dout, int M, int F) override {
    k::swiglu_backward(dinp, inp, dout, M, F);
  }

  void embedding_forward(Scalar* out, const std::int32_t* tokens, const Scalar* token_table,
                         const Scalar* position_table, int B, int T, int C, int vocab_start,
                         int V_local) override {
    k::embedding_forward(out, tokens, token_table, position_table, B, T, C, vocab_start, V_local);
  }
  void embedding_backward(Scalar* token_table_grad, Scalar* position_table_grad, const Scalar* dout,
                          const std::int32_t* tokens, int B, int T, int C, int vocab_start,
                          int V_local) override {
    k::embedding_backward(token_table_grad, position_table_grad, dout, tokens, B, T, C, vocab_start, V_local);
  }

  void cross_entropy_forward(Scalar* losses, Scalar* logsumexp, const Scalar* logits,
                             const std::int32_t* targets, int M, int V, int valid_vocab) override {
    k::cross_entropy_forward(losses, logsumexp, logits, targets, M, V, valid_vocab);
  }
  void cross_entropy_backward(Scalar* dlogits, const Scalar* logits, const Scalar* logsumexp,
                              const std::int32_t* targets, Scalar dloss, int M, int V,
                              int valid_vocab) override {
    k::cross_entropy_backward(dlogits, logits, logsumexp, targets, dloss, M, V, valid_vocab);
  }
  void vocab_parallel_statistics(Scalar* stats, const Scalar* logits, const std::int32_t* targets, int M,
                                 int V_local, int vocab_start, int valid_vocab) override {
    Scalar* local_max = stats;
    Scalar* local_sum = stats + M;
    Scalar* local_target = stats + 2 * static_cast<std::size_t>(M);
    k::vocab_parallel_max(local_max, logits, M, V_local, vocab_start, valid_vocab);
    k::vocab_parallel_sum_exp(local_sum, logits, local_max, M, V_local, vocab_start, valid_vocab);
    k::vocab_parallel_target_logit(local_target, logits, targets, M, V_local, vocab_start);
    // A shard without valid columns: max is -inf and its sum is 0; keep it exactly 0.
    for (int i = 0; i < M; ++i)
      if (!std::isfinite(static_cast<double>(local_max[i]))) local_sum[i] = 0;
  }
  void vocab_parallel_combine(Scalar* losses, Scalar* logsumexp, const Scalar* gathered,
                              const std::int32_t* targets, int M, int shards) override {
    const std::size_t block = 3 * static_cast<std::size_t>(M);
    for (int i = 0; i < M; ++i) {
      double global_max = -std::numeric_limits<double>::infinity();
      for (int r = 0; r < shards; ++r) global_max = std::max(global_max, static_cast<double>(gathered[r * block + i]));
      double sum = 0, target = 0;
      for (int r = 0; r < shards; ++r) {
        const double local_max = static_cast<double>(gathered[r * block + i]);
        const double local_sum = static_cast<double>(gathered[r * block + M + i]);
        if (local_sum > 0) sum += local_sum * std::exp(local_max - global_max);
        target += static_cast<double>(gathered[r * block + 2 * M + i]);
      }
      const double lse = global_max + std::log(sum);
      logsumexp[i] = static_cast<Scalar>(lse);
      losses[i] = targets[i] >= 0 ? static_cast<Scalar>(lse - target) : Scalar(0);
    }
  }
  void vocab_parallel_backward(Scalar* dlogits, const Scalar* logits, const Scalar* logsumexp,
                               const std::int32_t* targets, Scalar dloss, int M, int V_local, int vocab_start,
                               int valid_vocab) override {
    k::vocab_parallel_backward(dlogits, logits, logsumexp, targets, dloss, M, V_local, vocab_start, valid_vocab);
  }

  void residual_forward(Scalar* out, const Scalar* a, const Scalar* b, std::size_t n) override {
    k::residual_forward(out, a, b, n);
  }
  void add_in_place(Scalar* a, const Scalar* b, std::size_t n) override { k::add_in_place(a, b, n); }
  double sum_of_squares(const Scalar* x, std::size_t n) override { return k::sum_of_squares(x, n); }
  void scale_in_place(Scalar* x, std::size_t n, Scalar scale) override { k::scale_in_place(x, n, scale); }
  double sum(const Scalar* x, std::size_t n) override {
    double total = 0;
    for (std::size_t i = 0; i < n; ++i) total += static_cast<double>(x[i]);
    return total;
  }
  void copy_columns(Scalar* dst, int dst_cols, int dst_col, const Scalar* src, int rows, int cols) override {
    for (int i = 0; i < rows; ++i)
      std::memcpy(dst + static_cast<std::size_t>(i) * dst_cols + dst_col, src + static_cast<std::size_t>(i) * cols,
                  sizeof(Scalar) * static_cast<std::size_t>(cols));
  }
};

}  // namespace

template <typename Scalar>
std::unique_ptr<Backend<Scalar>> make_cpu_backend() {
  return std::make_unique<CpuBackend<Scalar>>();
}

template std::unique_ptr<Backend<float>> make_cpu_backend<float>();
template std::unique_ptr<Backend<double>> make_cpu_backend<double>();

}  // namespace tandem::engine
