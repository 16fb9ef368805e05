#pragma once
// Helpers for the kernel tests: deterministic random data, tolerant comparison with a useful
// failure message, and central finite differences.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace tandem::kernels::testing {

using Vec = std::vector<double>;

inline Vec random_vector(std::size_t n, std::uint32_t seed, double low = -1.0, double high = 1.0) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(low, high);
  Vec v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

inline std::vector<std::int32_t> random_tokens(std::size_t n, int low, int high,
                                               std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(low, high - 1);
  std::vector<std::int32_t> t(n);
  for (auto& x : t) x = dist(rng);
  return t;
}

template <typename To, typename From>
std::vector<To> cast(const std::vector<From>& v) {
  return std::vector<To>(v.begin(), v.end());
}

// Checks |actual − expected| <= atol + rtol·|expected| element-wise; reports the worst element.
template <typename A, typename E>
::testing::AssertionResult all_close(const std::vector<A>& actual, const std::vector<E>& expected,
                                     double rtol, double atol) {
  if (actual.size() != expected.size()) {
    return ::testing::AssertionFailure()
           << "size " << actual.size() << " != expected size " << expected.size();
  }
  double worst_ratio = 0.0;
  std::size_t worst = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double a = static_cast<double>(actual[i]);
    const double e = static_cast<double>(expected[i]);
    const double allowed = atol + rtol * std::fabs(e);
    const double ratio = std::isfinite(a) ? std::fabs(a - e) / allowed : 1e300;
    if (ratio > worst_ratio) {
      worst_ratio = ratio;
      worst = i;
    }
  }
  if (worst_ratio <= 1.0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "element " << worst << " of " << actual.size() << ": got "
         << static_cast<double>(actual[worst]) << ", expected "
         << static_cast<double>(expected[worst]) << " (rtol " << rtol << ", atol " << atol
         << ", error/allowed = " << worst_ratio << ")";
}

// Central finite differences of a scalar function f at x: (f(x+h) − f(x−h)) / 2h per element,
// with h scaled by max(1, |x_i|).
inline Vec numeric_gradient(const std::function<double(const Vec&)>& f, Vec x,
                            double step = 1e-5) {
  Vec grad(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    const double h = step * std::fmax(1.0, std::fabs(saved));
    x[i] = saved + h;
    const double plus = f(x);
    x[i] = saved - h;
    const double minus = f(x);
    x[i] = saved;
    grad[i] = (plus - minus) / (2.0 * h);
  }
  return grad;
}

inline double dot(const Vec& a, const Vec& b) {
  double sum = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) sum += a[i] * b[i];
  return sum;
}

// Tolerances used throughout (stated once):
//   double kernel vs float64 reference:        rtol 1e-10, atol 1e-11
//   double analytic gradient vs finite diffs:  rtol 1e-6,  atol 1e-7   (central, h = 1e-5)
//   float kernel vs float64 reference:         rtol 2e-5,  atol 2e-5   (inputs in [−1, 1])
constexpr double kDoubleRtol = 1e-10, kDoubleAtol = 1e-11;
constexpr double kGradRtol = 1e-6, kGradAtol = 1e-7;
constexpr double kFloatRtol = 2e-5, kFloatAtol = 2e-5;

}  // namespace tandem::kernels::testing
