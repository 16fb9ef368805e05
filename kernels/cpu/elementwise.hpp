#pragma once
// Element-wise helpers: the residual add, gradient accumulation, and the pieces of gradient-norm
// clipping. n counts elements. Instantiated for float and double.

#include <cstddef>

namespace tandem::kernels::cpu {

// out = a + b (the residual connection; out may alias a or b). Its backward is the identity:
// the caller passes dout on to both branches (or uses add_in_place to merge two gradients).
template <typename Scalar>
void residual_forward(Scalar* out, const Scalar* a, const Scalar* b, std::size_t n);

// a += b.
template <typename Scalar>
void add_in_place(Scalar* a, const Scalar* b, std::size_t n);

// Σ x², accumulated in double (for the global gradient norm; sum over ranks, then sqrt).
template <typename Scalar>
double sum_of_squares(const Scalar* x, std::size_t n);

// x *= scale (gradient clipping: scale = max_norm / max(norm, max_norm)).
template <typename Scalar>
void scale_in_place(Scalar* x, std::size_t n, Scalar scale);

}  // namespace tandem::kernels::cpu
