#include <gtest/gtest.h>

#include "kernels/cpu/normalization.hpp"
#include "tests/kernels/cases.hpp"
#include "tests/kernels/reference.hpp"
#include "tests/kernels/test_support.hpp"

namespace tandem::kernels {
namespace {

using namespace testing;  // NOLINT
using cases::NormCase;

constexpr double kEps = 1e-5;

std::string describe(const NormCase& c) {
  return "M=" + std::to_string(c.M) + " C=" + std::to_string(c.C);
}

struct LayerNormResult {
  Vec out, mean, rstd;
};

template <typename Scalar>
void layernorm(const NormCase& c, const Vec& inp, const Vec& w, const Vec& b,
               std::vector<Scalar>& out, std::vector<Scalar>& mean, std::vector<Scalar>& rstd) {
  const auto i = cast<Scalar>(inp), wt = cast<Scalar>(w), bs = cast<Scalar>(b);
  out.assign(inp.size(), Scalar(0));
  mean.assign(c.M, Scalar(0));
  rstd.assign(c.M, Scalar(0));
  cpu::layernorm_forward<Scalar>(out.data(), mean.data(), rstd.data(), i.data(), wt.data(),
                                 bs.data(), c.M, c.C, Scalar(kEps));
}

TEST(LayerNorm, ForwardMatchesFloat64Reference) {
  for (const auto& c : cases::kNorm) {
    SCOPED_TRACE(describe(c));
    const Vec inp = random_vector(static_cast<std::size_t>(c.M) * c.C, 71, -2.0, 3.0);
    const Vec w = random_vector(c.C, 72), b = random_vector(c.C, 73);
    Vec out_ref, mean_ref, rstd_ref;
    reference::layernorm_forward(out_ref, mean_ref, rstd_ref, inp, w, b, c.M, c.C, kEps);
    Vec out, mean, rstd;
    layernorm<double>(c, inp, w, b, out, mean, rstd);
    EXPECT_TRUE(all_close(out, out_ref, 1e-9, 1e-10));
    EXPECT_TRUE(all_close(mean, mean_ref, 1e-9, 1e-10));
    EXPECT_TRUE(all_close(rstd, rstd_ref, 1e-9, 1e-10));
    std::vector<float> out_f, mean_f, rstd_f;
    layernorm<float>(c, inp, w, b, out_f, mean_f, rstd_f);
    // rstd can reach 1/sqrt(eps) ≈ 316 for constant rows (C = 1): relative tolerance there.
    EXPECT_TRUE(all_close(out_f, out_ref, 1e-4, 1e-5));
    EXPECT_TRUE(all_close(mean_f, mean_ref, 1e-5, 1e-6));
    EXPECT_TRUE(all_close(rstd_f, rstd_ref, 1e-4, 1e-5));
  }
}

TEST(LayerNorm, BackwardMatchesFiniteDifferencesAndFloat) {
  for (const auto& c : cases::kNorm) {
    SCOPED_TRACE(describe(c));
    const std::size_t n = static_cast<std::size_t>(c.M) * c.C;
    const Vec inp = random_vector(n, 81, -2.0, 3.0);
    const Vec w = random_vector(c.C, 82), b = random_vector(c.C, 83);
    const Vec projection = random_vector(n, 84);
    auto loss = [&](const Vec& i, const Vec& wt, const Vec& bs) {
      Vec out, mean, rstd;
      layernorm<double>(c, i, wt, bs, out, mean, rstd);
      return dot(out, projection);
    };
    Vec out, mean, rstd;
    layernorm<double>(c, inp, w, b, out, mean, rstd);
    Vec dinp(n, 5.0), dw(c.C, 0.0), db(c.C, 0.0);
    cpu::layernorm_backward<double>(dinp.data(), dw.data(), db.data(), projection.data(),
                                    inp.data(), w.data(), mean.data(), rstd.data(), c.M, c.C);
    if (c.C > 1) {  // C = 1: the output is the bias whatever the input; FD is exact there too,
                    // but rstd = 1/sqrt(eps) makes the step size matter — skip the input check.
      EXPECT_TRUE(all_close(dinp, numeric_gradient([&](const Vec& x) { return loss(x, w, b); }, inp),
                            kGradRtol, kGradAtol));
    }
    EXPECT_TRUE(all_close(dw, numeric_gradient([&](const Vec& x) { return loss(inp, x, b); }, w),
                          kGradRtol, kGradAtol));
    EXPECT_TRUE(all_close(db, numeric_gradient([&](const Vec& x) { return loss(inp, w, x); }, b),
                          kGradRtol, kGradAtol));

    // Float backward against the (finite-difference-checked) double backward, with accumulation.
    std::vector<float> out_f, mean_f, rstd_f;
    layernorm<float>(c, inp, w, b, out_f, mean_f, rstd_f);
    const Vec previous = random_vector(n, 85);
    std::vector<float> dinp_f = cast<float>(previous), dw_f(c.C, 1.0f), db_f(c.C, -1.0f);
    const auto inp_f = cast<float>(inp), w_f = cast<float>(w), proj_f = cast<float>(projection);
    cpu::layernorm_backward<float>(dinp_f.data(), dw_f.data(), db_f.data(), proj_f.data(),
                                   inp_f.data(), w_f.data(), mean_f.data(), rstd_f.data(), c.M,
                                   c.C, /*accumulate=*/true);
    Vec dinp_expected = dinp, dw_expected = dw, db_expected = db;
    for (std::size_t i = 0; i < n; ++i) dinp_expected[i] += previous[i];
    for (int i = 0; i < c.C; ++i) {
      dw_expected[i] += 1.0;
      db_expected[i] -= 1.0;
    }
    const double scale = c.C > 1 ? 1.0 : 1e3;  // C = 1: dinp ≈ 0 up to rounding × rstd
    EXPECT_TRUE(all_close(dinp_f, dinp_expected, 1e-4, 1e-4 * scale));
    EXPECT_TRUE(all_close(dw_f, dw_expected, 1e-4, 1e-4));
    EXPECT_TRUE(all_close(db_f, db_expected, 1e-4, 1e-4));
  }
}

template <typename Scalar>
void rmsnorm(const NormCase& c, const Vec& inp, const Vec& w, std::vector<Scalar>& out,
             std::vector<Scalar>& rstd) {
  const auto i = cast<Scalar>(inp), wt = cast<Scalar>(w);
  out.assign(inp.size(), Scalar(0));
  rstd.assign(c.M, Scalar(0));
  cpu::rmsnorm_forward<Scalar>(out.data(), rstd.data(), i.data(), wt.data(), c.M, c.C,
                               Scalar(kEps));
}

TEST(RmsNorm, ForwardMatchesFloat64Reference) {
  for (const auto& c : cases::kNorm) {
    SCOPED_TRACE(describe(c));
    const Vec inp = random_vector(static_cast<std::size_t>(c.M) * c.C, 91, -2.0, 3.0);
    const Vec w = random_vector(c.C, 92);
    Vec out_ref, rstd_ref;
    reference::rmsnorm_forward(out_ref, rstd_ref, inp, w, c.M, c.C, kEps);
    Vec out, rstd;
    rmsnorm<double>(c, inp, w, out, rstd);
    EXPECT_TRUE(all_close(out, out_ref, 1e-10, 1e-11));
    EXPECT_TRUE(all_close(rstd, rstd_ref, 1e-10, 1e-11));
    std::vector<float> out_f, rstd_f;
    rmsnorm<float>(c, inp, w, out_f, rstd_f);
    EXPECT_TRUE(all_close(out_f, out_ref, kFloatRtol, kFloatAtol));
    EXPECT_TRUE(all_close(rstd_f, rstd_ref, kFloatRtol, kFloatAtol));
  }
}

TEST(RmsNorm, BackwardMatchesFiniteDifferencesAndFloat) {
  for (const auto& c : cases::kNorm) {
    SCOPED_TRACE(describe(c));
    const std::size_t n = static_cast<std::size_t>(c.M) * c.C;
    const Vec inp = random_vector(n, 101, -2.0, 3.0);
    const Vec w = random_vector(c.C, 102);
    const Vec projection = random_vector(n, 103);
    auto loss = [&](const Vec& i, const Vec& wt) {
      Vec out, rstd;
      rmsnorm<double>(c, i, wt, out, rstd);
      return dot(out, projection);
    };
    Vec out, rstd;
    rmsnorm<double>(c, inp, w, out, rstd);
    Vec dinp(n, 5.0), dw(c.C, 0.0);
    cpu::rmsnorm_backward<double>(dinp.data(), dw.data(), projection.data(), inp.data(), w.data(),
                                  rstd.data(), c.M, c.C);
    EXPECT_TRUE(all_close(dinp, numeric_gradient([&](const Vec& x) { return loss(x, w); }, inp),
                          kGradRtol, kGradAtol));
    EXPECT_TRUE(all_close(dw, numeric_gradient([&](const Vec& x) { return loss(inp, x); }, w),
                          kGradRtol, kGradAtol));

    std::vector<float> out_f, rstd_f;
    rmsnorm<float>(c, inp, w, out_f, rstd_f);
    std::vector<float> dinp_f(n, 7.0f), dw_f(c.C, 0.5f);
    const auto inp_f = cast<float>(inp), w_f = cast<float>(w), proj_f = cast<float>(projection);
    cpu::rmsnorm_backward<float>(dinp_f.data(), dw_f.data(), proj_f.data(), inp_f.data(),
                                 w_f.data(), rstd_f.data(), c.M, c.C);
    Vec dw_expected = dw;
    for (auto& x : dw_expected) x += 0.5;
    EXPECT_TRUE(all_close(dinp_f, dinp, 1e-4, 1e-4));
    EXPECT_TRUE(all_close(dw_f, dw_expected, 1e-4, 1e-4));
  }
}

}  // namespace
}  // namespace tandem::kernels
