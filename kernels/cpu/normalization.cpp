#include "kernels/cpu/normalization.hpp"

#include <cmath>
#include <cstdint>
#include <vector>

#include <omp.h>

#include "kernels/cpu/detail/eigen_views.hpp"
#include "kernels/cpu/detail/index_order.hpp"

namespace tandem::kernels::cpu {
namespace {

template <typename Scalar>
using Row = Eigen::Map<Eigen::Array<Scalar, 1, Eigen::Dynamic>>;
template <typename Scalar>
using ConstRow = Eigen::Map<const Eigen::Array<Scalar, 1, Eigen::Dynamic>>;

// Runs body(row_begin, row_end, dweight_part, dbias_part) over row chunks on several threads;
// each thread accumulates its weight gradients into a private buffer, summed at the end into
// dweight and dbias (which may be nullptr), in a fixed order so results are deterministic for a
// given thread count.
template <typename Scalar, typename Body>
void rows_with_weight_gradients(int M, int C, Scalar* dweight, Scalar* dbias, Body body) {
  const int threads = detail::loop_threads(static_cast<std::int64_t>(M) * C * 8);
  if (threads <= 1) {
    body(0, M, dweight, dbias);
    return;
  }
  const std::size_t part = static_cast<std::size_t>(C);
  std::vector<Scalar> partial(static_cast<std::size_t>(threads) * 2 * part, Scalar(0));
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    const int n = omp_get_num_threads();
    const int begin = static_cast<int>(static_cast<std::int64_t>(M) * t / n);
    const int end = static_cast<int>(static_cast<std::int64_t>(M) * (t + 1) / n);
    Scalar* dw = partial.data() + static_cast<std::size_t>(t) * 2 * part;
    body(begin, end, dweight ? dw : nullptr, dbias ? dw + part : nullptr);
  }
  for (int t = 0; t < threads; ++t) {
    const Scalar* dw = partial.data() + static_cast<std::size_t>(t) * 2 * part;
    if (dweight) Row<Scalar>(dweight, C) += ConstRow<Scalar>(dw, C);
    if (dbias) Row<Scalar>(dbias, C) += ConstRow<Scalar>(dw + part, C);
  }
}

}  // namespace

template <typename Scalar>
void layernorm_forward(Scalar* out, Scalar* mean, Scalar* rstd, const Scalar* inp,
                       const Scalar* weight, const Scalar* bias, int M, int C, Scalar eps) {
  ConstRow<Scalar> w(weight, C), b(bias, C);
  const int threads = detail::loop_threads(static_cast<std::int64_t>(M) * C * 4);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int i = 0; i < M; ++i) {
    ConstRow<Scalar> x(inp + static_cast<std::int64_t>(i) * C, C);
    Row<Scalar> y(out + static_cast<std::int64_t>(i) * C, C);
    // Sums in index order (detail/index_order.hpp): a sum directly over x would follow its address.
    const Scalar m = detail::sum_by_index(x.data(), C) / static_cast<Scalar>(C);
    const Scalar var = (x - m).square().mean();  // two passes: no cancellation
    const Scalar s = Scalar(1) / std::sqrt(var + eps);
    y = (x - m) * s * w + b;
    mean[i] = m;
    rstd[i] = s;
  }
}

template <typename Scalar>
void layernorm_backward(Scalar* dinp, Scalar* dweight, Scalar* dbias, const Scalar* dout,
                        const Scalar* inp, const Scalar* weight, const Scalar* mean,
                        const Scalar* rstd, int M, int C, bool accumulate) {
  ConstRow<Scalar> w(weight, C);
  rows_with_weight_gradients<Scalar>(
      M, C, dweight, dbias, [&](int begin, int end, Scalar* dw_ptr, Scalar* db_ptr) {
        Eigen::Array<Scalar, 1, Eigen::Dynamic> norm(C), dnorm(C);
        for (int i = begin; i < end; ++i) {
          const std::int64_t offset = static_cast<std::int64_t>(i) * C;
          ConstRow<Scalar> x(inp + offset, C), dy(dout + offset, C);
          Row<Scalar> dx(dinp + offset, C);
          norm = (x - mean[i]) * rstd[i];
          dnorm = dy * w;
          const Scalar dnorm_mean = dnorm.mean();
          const Scalar dnorm_norm_mean = (dnorm * norm).mean();
          if (accumulate) {
            dx += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * rstd[i];
          } else {
            dx = (dnorm - dnorm_mean - norm * dnorm_norm_mean) * rstd[i];
          }
          if (dw_ptr) Row<Scalar>(dw_ptr, C) += dy * norm;
          if (db_ptr) Row<Scalar>(db_ptr, C) += dy;
        }
      });
}

template <typename Scalar>
void rmsnorm_forward(Scalar* out, Scalar* rstd, const Scalar* inp, const Scalar* weight, int M,
                     int C, Scalar eps) {
  ConstRow<Scalar> w(weight, C);
  const int threads = detail::loop_threads(static_cast<std::int64_t>(M) * C * 3);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int i = 0; i < M; ++i) {
    ConstRow<Scalar> x(inp + static_cast<std::int64_t>(i) * C, C);
    Row<Scalar> y(out + static_cast<std::int64_t>(i) * C, C);
    const Scalar s = Scalar(1) / std::sqrt(x.square().mean() + eps);
    y = x * s * w;
    rstd[i] = s;
  }
}

template <typename Scalar>
void rmsnorm_backward(Scalar* dinp, Scalar* dweight, const Scalar* dout, const Scalar* inp,
                      const Scalar* weight, const Scalar* rstd, int M, int C, bool accumulate) {
  ConstRow<Scalar> w(weight, C);
  rows_with_weight_gradients<Scalar>(
      M, C, dweight, static_cast<Scalar*>(nullptr),
      [&](int begin, int end, Scalar* dw_ptr, Scalar*) {
        Eigen::Array<Scalar, 1, Eigen::Dynamic> norm(C), dnorm(C);
        for (int i = begin; i < end; ++i) {
          const std::int64_t offset = static_cast<std::int64_t>(i) * C;
          ConstRow<Scalar> x(inp + offset, C), dy(dout + offset, C);
          Row<Scalar> dx(dinp + offset, C);
          norm = x * rstd[i];
          dnorm = dy * w;
          const Scalar dnorm_norm_mean = (dnorm * norm).mean();
          if (accumulate) {
            dx += (dnorm - norm * dnorm_norm_mean) * rstd[i];
          } else {
            dx = (dnorm - norm * dnorm_norm_mean) * rstd[i];
          }
          if (dw_ptr) Row<Scalar>(dw_ptr, C) += dy * norm;
        }
      });
}

#define TANDEM_INSTANTIATE(Scalar)                                                              \
  template void layernorm_forward<Scalar>(Scalar*, Scalar*, Scalar*, const Scalar*,             \
                                          const Scalar*, const Scalar*, int, int, Scalar);      \
  template void layernorm_backward<Scalar>(Scalar*, Scalar*, Scalar*, const Scalar*,            \
                                           const Scalar*, const Scalar*, const Scalar*,         \
                                           const Scalar*, int, int, bool);                      \
  template void rmsnorm_forward<Scalar>(Scalar*, Scalar*, const Scalar*, const Scalar*, int, int, \
                                        Scalar);                                                \
  template void rmsnorm_backward<Scalar>(Scalar*, Scalar*, const Scalar*, const Scalar*,        \
                                         const Scalar*, const Scalar*, int, int, bool);
TANDEM_INSTANTIATE(float)
TANDEM_INSTANTIATE(double)
#undef TANDEM_INSTANTIATE

}  // namespace tandem::kernels::cpu
