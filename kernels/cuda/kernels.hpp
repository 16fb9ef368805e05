#pragma once
// CUDA versions of the kernels in kernels/cpu (float32 only), with the same names, argument
// order, layouts and semantics as the CPU headers document (read those for shapes) — plus a
// leading CudaContext. Every pointer is a DEVICE pointer; every call is asynchronous on
// ctx.stream. GEMMs go through cuBLAS (cublasSgemm, FP32 math mode).
//
// Differences from the CPU kernels, all documented where they occur:
//   - attention_backward (dk, dv) and embedding_backward use atomicAdd, so their float sums are
//     not bit-reproducible run to run;
//   - losses stay on the device (no host mean is returned; reduce `losses` yourself);
//   - sum_of_squares writes its double result to device memory.
// These kernels favour clarity over speed (one block per row/query); only the GEMMs are tuned.

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/context.hpp"

namespace tandem::kernels::cuda {

// ---- matmul.hpp --------------------------------------------------------------------------
// out (M,N) = inp (M,K) · weight (N,K)ᵀ + bias (N, or nullptr).
void matmul_forward(const CudaContext& ctx, float* out, const float* inp, const float* weight,
                    const float* bias, int M, int K, int N);
// dinp (M,K) = dout (M,N) · weight (N,K)  (+= when accumulate).
void matmul_backward_input(const CudaContext& ctx, float* dinp, const float* dout,
                           const float* weight, int M, int K, int N, bool accumulate = false);
// dweight (N,K) += doutᵀ · inp; dbias (N) += column sums of dout (if not nullptr).
void matmul_backward_weight(const CudaContext& ctx, float* dweight, float* dbias,
                            const float* dout, const float* inp, int M, int K, int N);

// ---- attention.hpp (causal, GQA, fused qkv (B,T,(Hq+2Hkv)·D), logsumexp (B,Hq,T)) -----------
// One block per query row; T ≤ 12288 (the row's scores live in shared memory).
void attention_forward(const CudaContext& ctx, float* out, float* logsumexp, const float* qkv,
                       int B, int T, int Hq, int Hkv, int D);
// dqkv written (zeroed, then dq stored and dk/dv accumulated with atomicAdd).
void attention_backward(const CudaContext& ctx, float* dqkv, const float* dout, const float* qkv,
                        const float* out, const float* logsumexp, int B, int T, int Hq, int Hkv,
                        int D);

// ---- normalization.hpp --------------------------------------------------------------------
void layernorm_forward(const CudaContext& ctx, float* out, float* mean, float* rstd,
                       const float* inp, const float* weight, const float* bias, int M, int C,
                       float eps = 1e-5f);
void layernorm_backward(const CudaContext& ctx, float* dinp, float* dweight, float* dbias,
                        const float* dout, const float* inp, const float* weight,
                        const float* mean, const float* rstd, int M, int C,
                        bool accumulate = false);
void rmsnorm_forward(const CudaContext& ctx, float* out, float* rstd, const float* inp,
                     const float* weight, int M, int C, float eps = 1e-5f);
void rmsnorm_backward(const CudaContext& ctx, float* dinp, float* dweight, const float* dout,
                      const float* inp, const float* weight, const float* rstd, int M, int C,
                      bool accumulate = false);

// ---- activation.hpp -----------------------------------------------------------------------
void gelu_forward(const CudaContext& ctx, float* out, const float* inp, std::size_t n);
void gelu_backward(const CudaContext& ctx, float* dinp, const float* inp, const float* dout,
                   std::size_t n, bool accumulate = false);
void swiglu_forward(const CudaContext& ctx, float* out, const float* inp, int M, int F);
void swiglu_backward(const CudaContext& ctx, float* dinp, const float* inp, const float* dout,
                     int M, int F, bool accumulate = false);

// ---- rope.hpp (rotate-half, in place on the q and k heads of qkv) ---------------------------
void rope_forward(const CudaContext& ctx, float* qkv, int B, int T, int Hq, int Hkv, int D,
                  double theta = 10000.0, int position_offset = 0);
void rope_backward(const CudaContext& ctx, float* dqkv, int B, int T, int Hq, int Hkv, int D,
                   double theta = 10000.0, int position_offset = 0);

// ---- embedding.hpp (tokens are device int32) -----------------------------------------------
void embedding_forward(const CudaContext& ctx, float* out, const std::int32_t* tokens,
                       const float* token_table, const float* position_table, int B, int T, int C,
                       int vocab_start, int V_local, int position_offset = 0);
// Accumulated with atomicAdd.
void embedding_backward(const CudaContext& ctx, float* token_table_grad,
                        float* position_table_grad, const float* dout,
                        const std::int32_t* tokens, int B, int T, int C, int vocab_start,
                        int V_local, int position_offset = 0);

// ---- cross_entropy.hpp (targets are device int32; negative = ignored row) ------------------
void cross_entropy_forward(const CudaContext& ctx, float* losses, float* logsumexp,
                           const float* logits, const std::int32_t* targets, int M, int V,
                           int valid_vocab);
void cross_entropy_backward(const CudaContext& ctx, float* dlogits, const float* logits,
                            const float* logsumexp, const std::int32_t* targets, float dloss,
                            int M, int V, int valid_vocab);
void vocab_parallel_max(const CudaContext& ctx, float* local_max, const float* logits, int M,
                        int V_local, int vocab_start, int valid_vocab);
void vocab_parallel_sum_exp(const CudaContext& ctx, float* local_sum_exp, const float* logits,
                            const float* global_max, int M, int V_local, int vocab_start,
                            int valid_vocab);
void vocab_parallel_target_logit(const CudaContext& ctx, float* local_target_logit,
                                 const float* logits, const std::int32_t* targets, int M,
                                 int V_local, int vocab_start);
void vocab_parallel_loss(const CudaContext& ctx, float* losses, float* logsumexp,
                         const float* global_max, const float* global_sum_exp,
                         const float* global_target_logit, const std::int32_t* targets, int M);
void vocab_parallel_backward(const CudaContext& ctx, float* dlogits, const float* logits,
                             const float* logsumexp, const std::int32_t* targets, float dloss,
                             int M, int V_local, int vocab_start, int valid_vocab);

// ---- elementwise.hpp ----------------------------------------------------------------------
void residual_forward(const CudaContext& ctx, float* out, const float* a, const float* b,
                      std::size_t n);
void add_in_place(const CudaContext& ctx, float* a, const float* b, std::size_t n);
// *result (device double) = Σ x², accumulated in double.
void sum_of_squares(const CudaContext& ctx, double* result, const float* x, std::size_t n);
void scale_in_place(const CudaContext& ctx, float* x, std::size_t n, float scale);

// ---- adamw.hpp (same semantics as the CPU adamw_update) -----------------------------------
void adamw_update(const CudaContext& ctx, float* param, const float* grad, float* m, float* v,
                  std::size_t n, float lr, float beta1, float beta2, float eps,
                  float weight_decay, int step);

}  // namespace tandem::kernels::cuda
