#pragma once
// Pointwise activations. Instantiated for float and double.

#include <cstddef>

namespace tandem::kernels::cpu {

// GELU, tanh approximation (GPT-2, llm.c):
//   out = 0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³))). inp, out have n elements; may alias.
template <typename Scalar>
void gelu_forward(Scalar* out, const Scalar* inp, std::size_t n);

// dinp = gelu'(inp) · dout (written, or added when accumulate is true). dinp may alias dout.
template <typename Scalar>
void gelu_backward(Scalar* dinp, const Scalar* inp, const Scalar* dout, std::size_t n,
                   bool accumulate = false);

// SwiGLU: inp is (M, 2F), each row [gate (F) | up (F)]; out is (M, F) = silu(gate) · up, with
// silu(g) = g · sigmoid(g). (The fused gate/up projection produces this layout directly.)
template <typename Scalar>
void swiglu_forward(Scalar* out, const Scalar* inp, int M, int F);

// dinp is (M, 2F) [dgate | dup] (written, or added when accumulate is true); dout is (M, F).
template <typename Scalar>
void swiglu_backward(Scalar* dinp, const Scalar* inp, const Scalar* dout, int M, int F,
                     bool accumulate = false);

}  // namespace tandem::kernels::cpu
