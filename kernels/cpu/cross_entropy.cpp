#include "kernels/cpu/cross_entropy.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/cpu/detail/eigen_views.hpp"
#include "kernels/cpu/detail/index_order.hpp"

namespace tandem::kernels::cpu {
namespace {

template <typename Scalar>
using ConstRow = Eigen::Map<const Eigen::Array<Scalar, 1, Eigen::Dynamic>>;
template <typename Scalar>
using Row = Eigen::Map<Eigen::Array<Scalar, 1, Eigen::Dynamic>>;

// Number of this shard's columns that are real vocabulary ids.
int valid_columns(int V_local, int vocab_start, int valid_vocab) {
  return std::clamp(valid_vocab - vocab_start, 0, V_local);
}

int row_threads(int M, int columns, int cost) {
  return detail::loop_threads(static_cast<std::int64_t>(M) * columns * cost);
}


template <typename Scalar>
double mean_loss(const Scalar* losses, const std::int32_t* targets, int M) {
  double sum = 0.0;
  int counted = 0;
  for (int i = 0; i < M; ++i) {
    if (targets[i] < 0) continue;
    sum += static_cast<double>(losses[i]);
    ++counted;
  }
  return counted > 0 ? sum / counted : 0.0;
}

}  // namespace

template <typename Scalar>
double cross_entropy_forward(Scalar* losses, Scalar* logsumexp, const Scalar* logits,
                             const std::int32_t* targets, int M, int V, int valid_vocab) {
  const int columns = valid_columns(V, 0, valid_vocab);
  assert(columns > 0);
#pragma omp parallel for num_threads(row_threads(M, columns, 12)) schedule(static)
  for (int i = 0; i < M; ++i) {
    ConstRow<Scalar> row(logits + static_cast<std::int64_t>(i) * V, columns);
    const Scalar max = row.maxCoeff();
    // A sum over an expression: Eigen sums it in index order (detail/index_order.hpp).
    const Scalar lse = max + std::log((row - max).exp().sum());
    logsumexp[i] = lse;
    const std::int32_t target = targets[i];
    assert(target < columns);
    losses[i] = target >= 0 ? lse - row[target] : Scalar(0);
  }
  return mean_loss(losses, targets, M);
}

template <typename Scalar>
void cross_entropy_backward(Scalar* dlogits, const Scalar* logits, const Scalar* logsumexp,
                            const std::int32_t* targets, Scalar dloss, int M, int V,
                            int valid_vocab) {
  vocab_parallel_backward(dlogits, logits, logsumexp, targets, dloss, M, V, 0, valid_vocab);
}

template <typename Scalar>
void vocab_parallel_max(Scalar* local_max, const Scalar* logits, int M, int V_local,
                        int vocab_start, int valid_vocab) {
  const int columns = valid_columns(V_local, vocab_start, valid_vocab);
#pragma omp parallel for num_threads(row_threads(M, columns, 1)) schedule(static)
  for (int i = 0; i < M; ++i) {
    local_max[i] = columns > 0
                       ? ConstRow<Scalar>(logits + static_cast<std::int64_t>(i) * V_local, columns)
                             .maxCoeff()
                       : -std::numeric_limits<Scalar>::infinity();
  }
}

template <typename Scalar>
void vocab_parallel_sum_exp(Scalar* local_sum_exp, const Scalar* logits, const Scalar* global_max,
                            int M, int V_local, int vocab_start, int valid_vocab) {
  const int columns = valid_columns(V_local, vocab_start, valid_vocab);
#pragma omp parallel for num_threads(row_threads(M, columns, 10)) schedule(static)
  for (int i = 0; i < M; ++i) {
    local_sum_exp[i] =
        columns > 0
            ? (ConstRow<Scalar>(logits + static_cast<std::int64_t>(i) * V_local, columns) -
               global_max[i])
                  .exp()
                  .sum()
            : Scalar(0);
  }
}

template <typename Scalar>
void vocab_parallel_target_logit(Scalar* local_target_logit, const Scalar* logits,
                                 const std::int32_t* targets, int M, int V_local,
                                 int vocab_start) {
  for (int i = 0; i < M; ++i) {
    const std::int64_t column = static_cast<std::int64_t>(targets[i]) - vocab_start;
    const bool in_shard = targets[i] >= 0 && column >= 0 && column < V_local;
    local_target_logit[i] =
        in_shard ? logits[static_cast<std::int64_t>(i) * V_local + column] : Scalar(0);
  }
}

template <typename Scalar>
double vocab_parallel_loss(Scalar* losses, Scalar* logsumexp, const Scalar* global_max,
                           const Scalar* global_sum_exp, const Scalar* global_target_logit,
                           const std::int32_t* targets, int M) {
  for (int i = 0; i < M; ++i) {
    const Scalar lse = global_max[i] + std::log(global_sum_exp[i]);
    logsumexp[i] = lse;
    losses[i] = targets[i] >= 0 ? lse - global_target_logit[i] : Scalar(0);
  }
  return mean_loss(losses, targets, M);
}

template <typename Scalar>
void vocab_parallel_backward(Scalar* dlogits, const Scalar* logits, const Scalar* logsumexp,
                             const std::int32_t* targets, Scalar dloss, int M, int V_local,
                             int vocab_start, int valid_vocab) {
  const int columns = valid_columns(V_local, vocab_start, valid_vocab);
#pragma omp parallel for num_threads(row_threads(M, V_local, 10)) schedule(static)
  for (int i = 0; i < M; ++i) {
    const std::int64_t offset = static_cast<std::int64_t>(i) * V_local;
    Row<Scalar> d(dlogits + offset, V_local);
    if (targets[i] < 0) {
      d.setZero();
      continue;
    }
    // Element-wise, so dlogits may alias logits; through aligned blocks, so which columns take
    // the SIMD exp does not depend on where dlogits lies.
    const ConstRow<Scalar> row(logits + offset, columns);
    const Scalar lse = logsumexp[i];
    detail::assign_by_index(dlogits + offset, columns, [&](Eigen::Index begin, Eigen::Index count) {
      return (row.segment(begin, count) - lse).exp() * dloss;
    });
    d.tail(V_local - columns).setZero();
    const std::int64_t column = static_cast<std::int64_t>(targets[i]) - vocab_start;
    if (column >= 0 && column < columns) d[column] -= dloss;
  }
}

#define TANDEM_INSTANTIATE(Scalar)                                                               \
  template double cross_entropy_forward<Scalar>(Scalar*, Scalar*, const Scalar*,                 \
                                                const std::int32_t*, int, int, int);             \
  template void cross_entropy_backward<Scalar>(Scalar*, const Scalar*, const Scalar*,            \
                                               const std::int32_t*, Scalar, int, int, int);      \
  template void vocab_parallel_max<Scalar>(Scalar*, const Scalar*, int, int, int, int);          \
  template void vocab_parallel_sum_exp<Scalar>(Scalar*, const Scalar*, const Scalar*, int, int,  \
                                               int, int);                                        \
  template void vocab_parallel_target_logit<Scalar>(Scalar*, const Scalar*, const std::int32_t*, \
                                                    int, int, int);                              \
  template double vocab_parallel_loss<Scalar>(Scalar*, Scalar*, const Scalar*, const Scalar*,    \
                                              const Scalar*, const std::int32_t*, int);          \
  template void vocab_parallel_backward<Scalar>(Scalar*, const Scalar*, const Scalar*,           \
                                                const std::int32_t*, Scalar, int, int, int, int);
TANDEM_INSTANTIATE(float)
TANDEM_INSTANTIATE(double)
#undef TANDEM_INSTANTIATE

}  // namespace tandem::kernels::cpu
