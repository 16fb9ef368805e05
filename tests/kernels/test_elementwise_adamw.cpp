#include <gtest/gtest.h>

#include <cmath>

#include "kernels/cpu/adamw.hpp"
#include "kernels/cpu/elementwise.hpp"
#include "tests/kernels/reference.hpp"
#include "tests/kernels/test_support.hpp"

namespace tandem::kernels {
namespace {

using namespace testing;  // NOLINT

TEST(Elementwise, ResidualAddInPlaceAndScale) {
  for (std::size_t n : {std::size_t{1}, std::size_t{33}, std::size_t{300001}}) {
    SCOPED_TRACE("n=" + std::to_string(n));
    const Vec a = random_vector(n, 241), b = random_vector(n, 242);
    Vec sum(n);
    for (std::size_t i = 0; i < n; ++i) sum[i] = a[i] + b[i];
    const auto a_f = cast<float>(a), b_f = cast<float>(b);
    std::vector<float> out(n);
    cpu::residual_forward<float>(out.data(), a_f.data(), b_f.data(), n);
    EXPECT_TRUE(all_close(out, sum, 1e-7, 1e-7));
    auto acc = a_f;
    cpu::add_in_place<float>(acc.data(), b_f.data(), n);
    EXPECT_TRUE(all_close(acc, sum, 1e-7, 1e-7));
    Vec scaled = a;
    cpu::scale_in_place<double>(scaled.data(), n, 0.25);
    for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(scaled[i], a[i] * 0.25);
  }
}

TEST(Elementwise, SumOfSquaresAccumulatesInDouble) {
  // 3·10⁶ values of 1/3 in float: a float accumulator would drift visibly; double must not.
  const std::size_t n = 3000000;
  std::vector<float> x(n, 1.0f / 3.0f);
  const double value = static_cast<double>(1.0f / 3.0f);
  const double expected = value * value * static_cast<double>(n);
  // float accumulation would be off by ~1e-4 relative here; double summation by ~1e-12.
  EXPECT_NEAR(cpu::sum_of_squares<float>(x.data(), n), expected, expected * 1e-10);
  const Vec y = random_vector(1001, 251);
  double naive = 0.0;
  for (double v : y) naive += v * v;
  EXPECT_NEAR(cpu::sum_of_squares<double>(y.data(), y.size()), naive, 1e-12);
  EXPECT_EQ(cpu::sum_of_squares<float>(x.data(), 0), 0.0);
}

struct AdamWSettings {
  double lr, beta1, beta2, eps, weight_decay;
};

TEST(AdamW, MatchesFloat64FormulaOverSeveralSteps) {
  const std::size_t n = 50003;  // several threads' worth, and an odd tail
  const AdamWSettings settings[] = {{1e-3, 0.9, 0.999, 1e-8, 0.1},
                                    {6e-4, 0.9, 0.95, 1e-8, 0.0},
                                    {3e-2, 0.8, 0.99, 1e-6, 0.5}};
  for (auto s : settings) {
    // The kernel takes float hyperparameters: the reference uses exactly those values.
    for (double* h : {&s.lr, &s.beta1, &s.beta2, &s.eps, &s.weight_decay})
      *h = static_cast<double>(static_cast<float>(*h));
    SCOPED_TRACE("lr=" + std::to_string(s.lr) + " wd=" + std::to_string(s.weight_decay));
    Vec param = random_vector(n, 261), m(n, 0.0), v(n, 0.0);
    auto param_f = cast<float>(param);
    std::vector<float> m_f(n, 0.0f), v_f(n, 0.0f);
    for (int step = 1; step <= 6; ++step) {
      SCOPED_TRACE("step " + std::to_string(step));
      Vec grad = random_vector(n, 270 + step, -0.1, 0.1);
      if (step == 3) std::fill(grad.begin(), grad.end(), 0.0);  // a zero gradient step
      for (std::size_t i = 0; i < n; i += 7) grad[i] = 0.0;     // and zero entries every step
      const auto grad_f = cast<float>(grad);
      reference::adamw_update(param, grad, m, v, s.lr, s.beta1, s.beta2, s.eps, s.weight_decay,
                              step);
      cpu::adamw_update(param_f.data(), grad_f.data(), m_f.data(), v_f.data(), n,
                        static_cast<float>(s.lr), static_cast<float>(s.beta1),
                        static_cast<float>(s.beta2), static_cast<float>(s.eps),
                        static_cast<float>(s.weight_decay), step);
      EXPECT_TRUE(all_close(m_f, m, 1e-5, 1e-8));  // terms ~0.1·eps_float
      EXPECT_TRUE(all_close(v_f, v, 1e-5, 1e-11));
      // The update moves each parameter by ~lr; its float error is a small fraction of that.
      EXPECT_TRUE(all_close(param_f, param, 1e-6, s.lr * 1e-3));
    }
  }
}

TEST(AdamW, GradScaleEqualsScalingTheGradientsFirst) {
  // Clipping folded into the update must give exactly what scale_in_place then the update gives.
  const std::size_t n = 1037;
  const auto grad = cast<float>(random_vector(n, 281, -0.1, 0.1));
  const auto param0 = cast<float>(random_vector(n, 282));
  const float scale = 0.37f;
  std::vector<float> p_folded = param0, m_folded(n, 0.01f), v_folded(n, 0.001f);
  std::vector<float> p_scaled = param0, m_scaled(n, 0.01f), v_scaled(n, 0.001f);
  std::vector<float> scaled = grad;
  cpu::scale_in_place(scaled.data(), n, scale);
  for (int step = 1; step <= 3; ++step) {
    cpu::adamw_update(p_folded.data(), grad.data(), m_folded.data(), v_folded.data(), n, 6e-4f, 0.9f,
                      0.95f, 1e-8f, 0.1f, step, scale);
    cpu::adamw_update(p_scaled.data(), scaled.data(), m_scaled.data(), v_scaled.data(), n, 6e-4f, 0.9f,
                      0.95f, 1e-8f, 0.1f, step);
  }
  EXPECT_EQ(p_folded, p_scaled);
  EXPECT_EQ(m_folded, m_scaled);
  EXPECT_EQ(v_folded, v_scaled);
}

TEST(AdamW, FirstStepMovesEachParameterByLearningRateTimesSign) {
  // At t = 1: m̂ = g and v̂ = g², so the step is lr·g/(|g| + eps) ≈ lr·sign(g).
  std::vector<float> param{1.0f, -2.0f, 0.5f, 3.0f}, grad{0.3f, -0.02f, 0.0f, 5.0f};
  std::vector<float> m(4, 0.0f), v(4, 0.0f);
  const float lr = 0.01f;
  cpu::adamw_update(param.data(), grad.data(), m.data(), v.data(), 4, lr, 0.9f, 0.999f, 1e-8f,
                    0.0f, 1);
  EXPECT_NEAR(param[0], 1.0f - lr, 1e-6);
  EXPECT_NEAR(param[1], -2.0f + lr, 1e-6);
  EXPECT_FLOAT_EQ(param[2], 0.5f);  // zero gradient, no weight decay: unchanged
  EXPECT_NEAR(param[3], 3.0f - lr, 1e-6);
}

}  // namespace
}  // namespace tandem::kernels
