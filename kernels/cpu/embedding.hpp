#pragma once
// Token (+ learned position) embedding, with Megatron-style vocab-parallel sharding.
// Instantiated for float and double.

#include <cstdint>

namespace tandem::kernels::cpu {

// out is (B,T,C); tokens is (B,T); token_table is (V_local,C) and holds the rows of vocabulary
// ids [vocab_start, vocab_start + V_local); position_table is (>= position_offset+T, C) or nullptr.
//   out[b,t,:] = token_table[tokens[b,t] − vocab_start,:]  (zero if the id is outside the shard)
//              + position_table[position_offset + t,:]      (if position_table is not nullptr)
// Vocab-parallel use: every shard computes its partial out and an all-reduce (sum) completes it;
// pass position_table on ONE shard only (or add positions after the reduction). Unsharded use:
// vocab_start = 0, V_local = V (ids outside [0,V) then also give zero rows; validate ids first).
template <typename Scalar>
void embedding_forward(Scalar* out, const std::int32_t* tokens, const Scalar* token_table,
                       const Scalar* position_table, int B, int T, int C, int vocab_start,
                       int V_local, int position_offset = 0);

// Scatter-add, ACCUMULATED: token_table_grad[tokens[b,t] − vocab_start,:] += dout[b,t,:] for ids
// in the shard; position_table_grad[position_offset + t,:] += Σ_b dout[b,t,:] when not nullptr.
// Deterministic (no atomics: threads split the C channels).
template <typename Scalar>
void embedding_backward(Scalar* token_table_grad, Scalar* position_table_grad, const Scalar* dout,
                        const std::int32_t* tokens, int B, int T, int C, int vocab_start,
                        int V_local, int position_offset = 0);

}  // namespace tandem::kernels::cpu
