#include "kernels/cpu/rope.hpp"

#include <cassert>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/cpu/detail/eigen_views.hpp"

namespace tandem::kernels::cpu {
namespace {

// sign = +1 rotates forward, −1 applies the inverse rotation (the backward pass).
template <typename Scalar>
void rope_rotate(Scalar* qkv, int B, int T, int Hq, int Hkv, int D, double theta,
                 int position_offset, Scalar sign) {
  assert(D % 2 == 0);
  const int half = D / 2;
  // cos/sin table (T, D/2), computed in double.
  std::vector<Scalar> cos_table(static_cast<std::size_t>(T) * half);
  std::vector<Scalar> sin_table(static_cast<std::size_t>(T) * half);
  for (int i = 0; i < half; ++i) {
    const double inv_freq = std::pow(theta, -2.0 * i / D);
    for (int t = 0; t < T; ++t) {
      const double angle = static_cast<double>(position_offset + t) * inv_freq;
      cos_table[static_cast<std::size_t>(t) * half + i] = static_cast<Scalar>(std::cos(angle));
      sin_table[static_cast<std::size_t>(t) * half + i] =
          sign * static_cast<Scalar>(std::sin(angle));
    }
  }
  const std::int64_t stride = static_cast<std::int64_t>(Hq + 2 * Hkv) * D;
  const int rotated_heads = Hq + Hkv;  // q heads then k heads are contiguous at the row start
  const std::int64_t tokens = static_cast<std::int64_t>(B) * T;
  const int threads = detail::loop_threads(tokens * rotated_heads * D * 3);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (std::int64_t token = 0; token < tokens; ++token) {
    const int t = static_cast<int>(token % T);
    const Scalar* c = cos_table.data() + static_cast<std::size_t>(t) * half;
    const Scalar* s = sin_table.data() + static_cast<std::size_t>(t) * half;
    for (int h = 0; h < rotated_heads; ++h) {
      Scalar* x = qkv + token * stride + static_cast<std::int64_t>(h) * D;
#pragma omp simd
      for (int i = 0; i < half; ++i) {
        const Scalar x1 = x[i];
        const Scalar x2 = x[i + half];
        x[i] = x1 * c[i] - x2 * s[i];
        x[i + half] = x2 * c[i] + x1 * s[i];
      }
    }
  }
}

}  // namespace

template <typename Scalar>
void rope_forward(Scalar* qkv, int B, int T, int Hq, int Hkv, int D, double theta,
                  int position_offset) {
  rope_rotate(qkv, B, T, Hq, Hkv, D, theta, position_offset, Scalar(1));
}

template <typename Scalar>
void rope_backward(Scalar* dqkv, int B, int T, int Hq, int Hkv, int D, double theta,
                   int position_offset) {
  // The rotation is orthogonal: its transpose (the gradient map) is the rotation by −angle.
  rope_rotate(dqkv, B, T, Hq, Hkv, D, theta, position_offset, Scalar(-1));
}

template void rope_forward<float>(float*, int, int, int, int, int, double, int);
template void rope_forward<double>(double*, int, int, int, int, int, double, int);
template void rope_backward<float>(float*, int, int, int, int, int, double, int);
template void rope_backward<double>(double*, int, int, int, int, int, double, int);

}  // namespace tandem::kernels::cpu
