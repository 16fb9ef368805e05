#include "kernels/cpu/elementwise.hpp"

#include <cstdint>

#include "kernels/cpu/detail/eigen_views.hpp"

namespace tandem::kernels::cpu {
namespace {
std::int64_t signed_size(std::size_t n) { return static_cast<std::int64_t>(n); }
}  // namespace

template <typename Scalar>
void residual_forward(Scalar* out, const Scalar* a, const Scalar* b, std::size_t n) {
  const std::int64_t count = signed_size(n);
#pragma omp parallel for simd num_threads(detail::loop_threads(count)) schedule(static)
  for (std::int64_t i = 0; i < count; ++i) out[i] = a[i] + b[i];
}

template <typename Scalar>
void add_in_place(Scalar* a, const Scalar* b, std::size_t n) {
  const std::int64_t count = signed_size(n);
#pragma omp parallel for simd num_threads(detail::loop_threads(count)) schedule(static)
  for (std::int64_t i = 0; i < count; ++i) a[i] += b[i];
}

template <typename Scalar>
double sum_of_squares(const Scalar* x, std::size_t n) {
  const std::int64_t count = signed_size(n);
  double sum = 0.0;
#pragma omp parallel for simd num_threads(detail::loop_threads(count)) schedule(static) \
    reduction(+ : sum)
  for (std::int64_t i = 0; i < count; ++i) {
    const double value = static_cast<double>(x[i]);
    sum += value * value;
  }
  return sum;
}

template <typename Scalar>
void scale_in_place(Scalar* x, std::size_t n, Scalar scale) {
  const std::int64_t count = signed_size(n);
#pragma omp parallel for simd num_threads(detail::loop_threads(count)) schedule(static)
  for (std::int64_t i = 0; i < count; ++i) x[i] *= scale;
}

#define TANDEM_INSTANTIATE(Scalar)                                                     \
  template void residual_forward<Scalar>(Scalar*, const Scalar*, const Scalar*, std::size_t); \
  template void add_in_place<Scalar>(Scalar*, const Scalar*, std::size_t);             \
  template double sum_of_squares<Scalar>(const Scalar*, std::size_t);                  \
  template void scale_in_place<Scalar>(Scalar*, std::size_t, Scalar);
TANDEM_INSTANTIATE(float)
TANDEM_INSTANTIATE(double)
#undef TANDEM_INSTANTIATE

}  // namespace tandem::kernels::cpu
