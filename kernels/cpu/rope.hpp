#pragma once
// Rotary position embedding (RoPE), applied IN PLACE to the q and k heads of the fused QKV buffer
// (B,T,(Hq+2·Hkv)·D) described in attention.hpp; the v heads are untouched.
//
// Convention: "rotate half" (GPT-NeoX, Hugging Face Llama): within each head of D values (D even),
// element i is paired with element i + D/2 for i < D/2, and the pair is rotated by the angle
//   (position_offset + t) · theta^(−2i/D),
//   x'[i]       = x[i]·cos − x[i+D/2]·sin
//   x'[i+D/2]   = x[i+D/2]·cos + x[i]·sin.
// (Meta's original Llama code pairs adjacent elements (2i, 2i+1) instead — "interleaved";
// checkpoints from it need their q/k projection rows permuted.)
// position_offset is the position of token t = 0 (0 for training on whole sequences; nonzero for
// a sequence shard under context parallelism). Angles are computed in double.
// Instantiated for float and double.

namespace tandem::kernels::cpu {

template <typename Scalar>
void rope_forward(Scalar* qkv, int B, int T, int Hq, int Hkv, int D, double theta = 10000.0,
                  int position_offset = 0);

// Backward: rotates the gradients of the q and k heads inside dqkv back (the inverse rotation),
// in place. The v part of dqkv is untouched.
template <typename Scalar>
void rope_backward(Scalar* dqkv, int B, int T, int Hq, int Hkv, int D, double theta = 10000.0,
                   int position_offset = 0);

}  // namespace tandem::kernels::cpu
