#include "kernels/cpu/embedding.hpp"

#include <algorithm>
#include <cstdint>

#include <omp.h>

#include "kernels/cpu/detail/eigen_views.hpp"

namespace tandem::kernels::cpu {

template <typename Scalar>
void embedding_forward(Scalar* out, const std::int32_t* tokens, const Scalar* token_table,
                       const Scalar* position_table, int B, int T, int C, int vocab_start,
                       int V_local, int position_offset) {
  const std::int64_t count = static_cast<std::int64_t>(B) * T;
  const int threads = detail::loop_threads(count * C);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (std::int64_t i = 0; i < count; ++i) {
    const int t = static_cast<int>(i % T);
    detail::VectorView<Scalar> y(out + i * C, C);
    const std::int64_t row = static_cast<std::int64_t>(tokens[i]) - vocab_start;
    const bool in_shard = row >= 0 && row < V_local;
    if (in_shard) {
      detail::ConstVectorView<Scalar> e(token_table + row * C, C);
      if (position_table) {
        y = e + detail::ConstVectorView<Scalar>(
                    position_table + static_cast<std::int64_t>(position_offset + t) * C, C);
      } else {
        y = e;
      }
    } else if (position_table) {
      y = detail::ConstVectorView<Scalar>(
          position_table + static_cast<std::int64_t>(position_offset + t) * C, C);
    } else {
      y.setZero();
    }
  }
}

template <typename Scalar>
void embedding_backward(Scalar* token_table_grad, Scalar* position_table_grad, const Scalar* dout,
                        const std::int32_t* tokens, int B, int T, int C, int vocab_start,
                        int V_local, int position_offset) {
  const std::int64_t count = static_cast<std::int64_t>(B) * T;
  // Split the channels between threads (multiples of 16 for whole cache lines / vectors): every
  // thread visits every token but touches only its own columns, so repeated ids never race.
  int threads = detail::loop_threads(count * C);
  threads = std::max(1, std::min(threads, (C + 15) / 16));
#pragma omp parallel num_threads(threads)
  {
    const int t_id = omp_get_thread_num();
    const int n = omp_get_num_threads();
    const int columns = ((C + 15) / 16 + n - 1) / n * 16;
    const int c0 = std::min(C, t_id * columns);
    const int c1 = std::min(C, c0 + columns);
    const int width = c1 - c0;
    if (width > 0) {
      for (std::int64_t i = 0; i < count; ++i) {
        const Scalar* dy = dout + i * C + c0;
        const std::int64_t row = static_cast<std::int64_t>(tokens[i]) - vocab_start;
        if (row >= 0 && row < V_local) {
          Scalar* g = token_table_grad + row * C + c0;
#pragma omp simd
          for (int c = 0; c < width; ++c) g[c] += dy[c];
        }
        if (position_table_grad) {
          const int t = static_cast<int>(i % T);
          Scalar* g = position_table_grad + static_cast<std::int64_t>(position_offset + t) * C + c0;
#pragma omp simd
          for (int c = 0; c < width; ++c) g[c] += dy[c];
        }
      }
    }
  }
}

template void embedding_forward<float>(float*, const std::int32_t*, const float*, const float*,
                                       int, int, int, int, int, int);
template void embedding_forward<double>(double*, const std::int32_t*, const double*,
                                        const double*, int, int, int, int, int, int);
template void embedding_backward<float>(float*, float*, const float*, const std::int32_t*, int,
                                        int, int, int, int, int);
template void embedding_backward<double>(double*, double*, const double*, const std::int32_t*,
                                         int, int, int, int, int, int);

}  // namespace tandem::kernels::cpu
