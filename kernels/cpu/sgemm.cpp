#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include <omp.h>

#include "kernels/cpu/detail/sgemm.hpp"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define TANDEM_HAVE_PACKED_SGEMM 1
#else
#define TANDEM_HAVE_PACKED_SGEMM 0
#endif

namespace tandem::kernels::cpu::detail {

#if TANDEM_HAVE_PACKED_SGEMM
namespace {

constexpr int kMR = 6;      // rows of the register tile
constexpr int kNR = 16;     // columns of the register tile (two 8-float vectors)
constexpr int kKC = 256;    // depth of a packed block (A panel 6×256 + B panel 256×16 in L1)
constexpr int kMC = 144;    // rows of a packed A block (144×256 floats = 144 KiB, L2)
constexpr int kNC = 3072;   // columns of a packed B block (256×3072 floats = 3 MiB, L3)

struct AlignedFree {
  void operator()(float* p) const { std::free(p); }
};

// Per-thread packing buffers, kept between calls (OpenMP threads persist).
float* thread_buffer(int which, std::size_t floats) {
  thread_local std::unique_ptr<float, AlignedFree> buffers[2];
  thread_local std::size_t sizes[2] = {0, 0};
  if (sizes[which] < floats) {
    const std::size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;  // aligned_alloc needs a
    buffers[which].reset(static_cast<float*>(std::aligned_alloc(64, bytes)));  // multiple of 64
    if (!buffers[which]) throw std::bad_alloc();
    sizes[which] = floats;
  }
  return buffers[which].get();
}

// Packs op(A)[i0:i0+mc, p0:p0+kc] into kMR-row panels: panel r holds, for each k, the kMR values
// a(i0 + r·kMR + 0..kMR−1, p0 + k); rows beyond mc are zero.
void pack_a(int mc, int kc, const float* a, long lda, bool transposed, int i0, int p0,
            float* packed) {
  for (int r = 0; r < mc; r += kMR) {
    const int rows = std::min(kMR, mc - r);
    float* out = packed + static_cast<std::size_t>(r) * kc;
    if (!transposed) {
      const float* src = a + static_cast<long>(i0 + r) * lda + p0;
      for (int k = 0; k < kc; ++k) {
        for (int ii = 0; ii < rows; ++ii) out[k * kMR + ii] = src[ii * lda + k];
        for (int ii = rows; ii < kMR; ++ii) out[k * kMR + ii] = 0.0f;
      }
    } else {
      const float* src = a + static_cast<long>(p0) * lda + i0 + r;
      for (int k = 0; k < kc; ++k) {
        const float* row = src + k * lda;
        for (int ii = 0; ii < rows; ++ii) out[k * kMR + ii] = row[ii];
        for (int ii = rows; ii < kMR; ++ii) out[k * kMR + ii] = 0.0f;
      }
    }
  }
}

// In-register transpose: r[q][kk] → r[kk][q].
inline void transpose8x8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// Packs op(B)[p0:p0+kc, j0:j0+nc] into kNR-column panels: panel c holds, for each k, the kNR
// values b(p0 + k, j0 + c·kNR + 0..kNR−1); columns beyond nc are zero.
void pack_b(int kc, int nc, const float* b, long ldb, bool transposed, int p0, int j0,
            float* packed) {
  for (int c = 0; c < nc; c += kNR) {
    const int cols = std::min(kNR, nc - c);
    float* out = packed + static_cast<std::size_t>(c) * kc;
    if (!transposed) {
      const float* src = b + static_cast<long>(p0) * ldb + j0 + c;
      if (cols == kNR) {
        for (int k = 0; k < kc; ++k) {
          const float* row = src + k * ldb;
          _mm256_store_ps(out + k * kNR, _mm256_loadu_ps(row));
          _mm256_store_ps(out + k * kNR + 8, _mm256_loadu_ps(row + 8));
        }
      } else {
        for (int k = 0; k < kc; ++k) {
          const float* row = src + k * ldb;
          for (int jj = 0; jj < cols; ++jj) out[k * kNR + jj] = row[jj];
          for (int jj = cols; jj < kNR; ++jj) out[k * kNR + jj] = 0.0f;
        }
      }
    } else if (cols == kNR) {
      // b(k, j) = b[j·ldb + k]: transpose 8×8 blocks in registers (8 source rows × 8 k values
      // become 8 packed k rows × 8 columns).
      int k = 0;
      for (; k + 8 <= kc; k += 8) {
        for (int half = 0; half < 2; ++half) {
          const float* src = b + static_cast<long>(j0 + c + 8 * half) * ldb + p0 + k;
          __m256 r[8];
          for (int q = 0; q < 8; ++q) r[q] = _mm256_loadu_ps(src + q * ldb);
          transpose8x8(r);
          for (int kk = 0; kk < 8; ++kk) _mm256_store_ps(out + (k + kk) * kNR + 8 * half, r[kk]);
        }
      }
      for (; k < kc; ++k)
        for (int jj = 0; jj < kNR; ++jj)
          out[k * kNR + jj] = b[static_cast<long>(j0 + c + jj) * ldb + p0 + k];
    } else {
      for (int jj = 0; jj < cols; ++jj) {
        const float* src = b + static_cast<long>(j0 + c + jj) * ldb + p0;
        for (int k = 0; k < kc; ++k) out[k * kNR + jj] = src[k];
      }
      for (int jj = cols; jj < kNR; ++jj)
        for (int k = 0; k < kc; ++k) out[k * kNR + jj] = 0.0f;
    }
  }
}

// The 6×16 register tile: acc = Σ_k a_panel[k] ⊗ b_panel[k]; then C = acc or C += acc over the
// valid rows × cols.
inline void micro_kernel(int kc, const float* __restrict a, const float* __restrict b,
                         float* __restrict c, long ldc, bool add, int rows, int cols) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
#pragma GCC unroll 4
  for (int k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(b);
    const __m256 b1 = _mm256_load_ps(b + 8);
    __m256 a0 = _mm256_broadcast_ss(a + 0);
    __m256 a1 = _mm256_broadcast_ss(a + 1);
    c00 = _mm256_fmadd_ps(a0, b0, c00);
    c01 = _mm256_fmadd_ps(a0, b1, c01);
    c10 = _mm256_fmadd_ps(a1, b0, c10);
    c11 = _mm256_fmadd_ps(a1, b1, c11);
    a0 = _mm256_broadcast_ss(a + 2);
    a1 = _mm256_broadcast_ss(a + 3);
    c20 = _mm256_fmadd_ps(a0, b0, c20);
    c21 = _mm256_fmadd_ps(a0, b1, c21);
    c30 = _mm256_fmadd_ps(a1, b0, c30);
    c31 = _mm256_fmadd_ps(a1, b1, c31);
    a0 = _mm256_broadcast_ss(a + 4);
    a1 = _mm256_broadcast_ss(a + 5);
    c40 = _mm256_fmadd_ps(a0, b0, c40);
    c41 = _mm256_fmadd_ps(a0, b1, c41);
    c50 = _mm256_fmadd_ps(a1, b0, c50);
    c51 = _mm256_fmadd_ps(a1, b1, c51);
    a += kMR;
    b += kNR;
  }
  const __m256 acc[kMR][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                              {c30, c31}, {c40, c41}, {c50, c51}};
  if (rows == kMR && cols == kNR) {
    for (int r = 0; r < kMR; ++r) {
      float* row = c + r * ldc;
      if (add) {
        _mm256_storeu_ps(row, _mm256_add_ps(_mm256_loadu_ps(row), acc[r][0]));
        _mm256_storeu_ps(row + 8, _mm256_add_ps(_mm256_loadu_ps(row + 8), acc[r][1]));
      } else {
        _mm256_storeu_ps(row, acc[r][0]);
        _mm256_storeu_ps(row + 8, acc[r][1]);
      }
    }
    return;
  }
  alignas(32) float tile[kMR][kNR];
  for (int r = 0; r < kMR; ++r) {
    _mm256_store_ps(tile[r], acc[r][0]);
    _mm256_store_ps(tile[r] + 8, acc[r][1]);
  }
  for (int r = 0; r < rows; ++r) {
    float* row = c + r * ldc;
    for (int j = 0; j < cols; ++j) row[j] = add ? row[j] + tile[r][j] : tile[r][j];
  }
}

// One thread's share: C[i_begin:i_end, j_begin:j_end].
void sgemm_block(int i_begin, int i_end, int j_begin, int j_end, int K, const float* a, long lda,
                 bool a_transposed, const float* b, long ldb, bool b_transposed, float* c,
                 long ldc, bool accumulate) {
  float* packed_a = thread_buffer(0, static_cast<std::size_t>(kMC) * kKC);
  float* packed_b = thread_buffer(1, static_cast<std::size_t>(kKC) * (kNC + kNR));
  for (int jc = j_begin; jc < j_end; jc += kNC) {
    const int nc = std::min(kNC, j_end - jc);
    for (int pc = 0; pc < K; pc += kKC) {
      const int kc = std::min(kKC, K - pc);
      const bool add = accumulate || pc > 0;
      pack_b(kc, nc, b, ldb, b_transposed, pc, jc, packed_b);
      for (int ic = i_begin; ic < i_end; ic += kMC) {
        const int mc = std::min(kMC, i_end - ic);
        pack_a(mc, kc, a, lda, a_transposed, ic, pc, packed_a);
        for (int jr = 0; jr < nc; jr += kNR) {
          const float* bp = packed_b + static_cast<std::size_t>(jr) * kc;
          for (int ir = 0; ir < mc; ir += kMR) {
            micro_kernel(kc, packed_a + static_cast<std::size_t>(ir) * kc, bp,
                         c + static_cast<long>(ic + ir) * ldc + jc + jr, ldc, add,
                         std::min(kMR, mc - ir), std::min(kNR, nc - jr));
          }
        }
      }
    }
  }
}

}  // namespace

bool packed_sgemm_available() {
  // TANDEM_KERNELS_EIGEN_GEMM=1 routes the float matmuls through Eigen instead (A/B benchmarks).
  static const bool enabled = [] {
    const char* value = std::getenv("TANDEM_KERNELS_EIGEN_GEMM");
    return value == nullptr || value[0] == '\0' || value[0] == '0';
  }();
  return enabled;
}

void packed_sgemm(int M, int N, int K, const float* a, long lda, bool a_transposed, const float* b,
                  long ldb, bool b_transposed, float* c, long ldc, bool accumulate, int threads) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int i = 0; i < M; ++i) std::memset(c + static_cast<long>(i) * ldc, 0, sizeof(float) * N);
    return;
  }
  // Split the larger output dimension into contiguous chunks of whole register tiles, handed
  // out dynamically: each chunk packs its own blocks and writes a disjoint part of C, so threads
  // never wait for each other except at the end — and a thread that loses its core to another
  // process (a shared machine) does not hold the other back for half the product. Chunks stay
  // at least ~1024 columns / ~576 rows wide so re-packing the other operand per chunk costs a few
  // percent at most, and their number is a multiple of the thread count (balanced when idle).
  const double work = 2.0 * M * N * K;
  threads = std::max(1, std::min(threads, static_cast<int>(work / 8e6) + 1));  // ≥ ~100 µs each
  const bool split_columns = N / kNR >= M / kMR;
  const int tile = split_columns ? kNR : kMR;
  const int extent = split_columns ? N : M;
  const int units = (extent + tile - 1) / tile;
  threads = std::min(threads, units);
  if (threads <= 1) {
    sgemm_block(0, M, 0, N, K, a, lda, a_transposed, b, ldb, b_transposed, c, ldc, accumulate);
    return;
  }
  const int min_chunk = split_columns ? 1024 : 576;
  const int chunks = threads * std::clamp(extent / (min_chunk * threads), 1, 4);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int chunk = 0; chunk < chunks; ++chunk) {
    const int u0 = static_cast<int>(static_cast<long>(units) * chunk / chunks);
    const int u1 = static_cast<int>(static_cast<long>(units) * (chunk + 1) / chunks);
    if (u0 == u1) continue;
    if (split_columns) {
      sgemm_block(0, M, u0 * kNR, std::min(N, u1 * kNR), K, a, lda, a_transposed, b, ldb,
                  b_transposed, c, ldc, accumulate);
    } else {
      sgemm_block(u0 * kMR, std::min(M, u1 * kMR), 0, N, K, a, lda, a_transposed, b, ldb,
                  b_transposed, c, ldc, accumulate);
    }
  }
}

#else  // no AVX2+FMA: the float matmuls use Eigen

bool packed_sgemm_available() { return false; }
void packed_sgemm(int, int, int, const float*, long, bool, const float*, long, bool, float*, long,
                  bool, int) {
  std::abort();
}

#endif

}  // namespace tandem::kernels::cpu::detail
