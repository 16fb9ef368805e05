#pragma once
// Causal multi-head self-attention with grouped-query attention (GQA), scale 1/sqrt(D).
//
// Layouts (row-major, per token):
//   qkv (B,T,(Hq+2·Hkv)·D): the fused QKV projection output, per token
//       [q head 0 | … | q head Hq-1 | k head 0 | … | k head Hkv-1 | v head 0 | … | v head Hkv-1],
//       each head D contiguous values (RoPE, if used, is applied to this buffer beforehand).
//   out (B,T,Hq·D): per token [head 0 | … | head Hq-1], ready for the output projection.
//   logsumexp (B,Hq,T): saved by forward for backward — log Σ_j exp(s_ij) of each query row
//       (memory B·Hq·T values; the T×T probabilities are NOT stored, backward recomputes them).
// Hq and Hkv are the LOCAL head counts on this rank (tensor parallelism is the caller's business);
// Hq must be a multiple of Hkv. Query head h reads key/value head h / (Hq/Hkv) (consecutive
// grouping, as Hugging Face's repeat_kv). Row i attends to keys 0..i.
//
// The scores are computed in blocks of 64 query rows × the visible keys (so the T×T matrix never
// exists and the strictly-masked part of the product is skipped), with Eigen GEMMs per block.
// Instantiated for float and double.

namespace tandem::kernels::cpu {

// out (B,T,Hq·D) and logsumexp (B,Hq,T) are written. qkv is (B,T,(Hq+2·Hkv)·D).
template <typename Scalar>
void attention_forward(Scalar* out, Scalar* logsumexp, const Scalar* qkv, int B, int T, int Hq,
                       int Hkv, int D);

// dqkv (B,T,(Hq+2·Hkv)·D) is WRITTEN (q, k and v parts), from dout (B,T,Hq·D) and what forward
// used and produced: qkv, out and logsumexp. dqkv must not alias any input.
template <typename Scalar>
void attention_backward(Scalar* dqkv, const Scalar* dout, const Scalar* qkv, const Scalar* out,
                        const Scalar* logsumexp, int B, int T, int Hq, int Hkv, int D);

}  // namespace tandem::kernels::cpu
