#pragma once
// Private to kernels/cpu: a packed, cache-blocked single-precision GEMM with an AVX2+FMA 6×16
// micro-kernel (the BLIS scheme: pack a KC×NC block of B for L3, an MC×KC block of A for L2,
// 6×16 register tile). Used for the float matmuls when the library is compiled for AVX2+FMA;
// on this Zen 3 machine g++ 12 compiles Eigen's GEMM to ~45–60% of the FMA peak per core, this
// kernel reaches ~85–90% (measured in bench/kernels).

namespace tandem::kernels::cpu::detail {

// True when the library was compiled with AVX2 and FMA (TANDEM_NATIVE on such a CPU) and the
// environment variable TANDEM_KERNELS_EIGEN_GEMM is unset or 0.
bool packed_sgemm_available();

// C (M×N, row stride ldc) = op(A)·op(B), or C += op(A)·op(B) when accumulate is true.
// op(A) is M×K: element (i,k) at a[i·lda + k], or at a[k·lda + i] when a_transposed.
// op(B) is K×N: element (k,j) at b[k·ldb + j], or at b[j·ldb + k] when b_transposed.
// Runs on `threads` threads (dynamic chunks of C; each chunk disjoint, no reduction).
void packed_sgemm(int M, int N, int K, const float* a, long lda, bool a_transposed, const float* b,
                  long ldb, bool b_transposed, float* c, long ldc, bool accumulate, int threads);

}  // namespace tandem::kernels::cpu::detail
