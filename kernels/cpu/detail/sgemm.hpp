#pragma once
// Private to kernels/cpu: a packed, cache-blocked single-precision GEMM with an AVX2+FMA 6×16
// micro-kernel (the BLIS scheme: pack a KC×NC block of B for L3, an MC×KC block of A for L2,
// 6×16 register tile, no spills). Used for the float matmuls when the library is compiled for
// AVX2+FMA. Why not Eigen's threaded GEMM: it synchronizes its threads several times per
// product, while this kernel splits C into independent chunks handed out dynamically (no barrier
// but the final join), and its speed does not hinge on how g++ tunes Eigen's gebp (see the
// -mtune note in CMakeLists.txt). Measured on the shared 2-core machine (load ~11), a GPT-2
// 124M step on two threads: 10.4–12.7 s with this kernel (matmul CPU time 3.7–3.8 s) vs
// 18.1–20.3 s with Eigen (7.3 s: its threads spin at barriers). Per core the two are on par (58–69 vs 54–71 GFLOP/s
// per CPU-second at B·T = 256 on a loaded machine; ~83 GFLOP/s on cache-resident blocks; this
// machine's FMA peak is ~100 GFLOP/s per core). The double matmuls stay on Eigen, so the tests
// compare two independent GEMM implementations.

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
