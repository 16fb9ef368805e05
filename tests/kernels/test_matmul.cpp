#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/matmul.hpp"
#include "tests/kernels/cases.hpp"
#include "tests/kernels/reference.hpp"
#include "tests/kernels/test_support.hpp"

namespace tandem::kernels {
namespace {

using namespace testing;  // NOLINT
using cases::MatmulCase;

std::string describe(const MatmulCase& c) {
  return "M=" + std::to_string(c.M) + " K=" + std::to_string(c.K) + " N=" + std::to_string(c.N) +
         (c.bias ? " bias" : " no bias");
}

template <typename Scalar>
std::vector<Scalar> run_forward(const MatmulCase& c, const Vec& inp, const Vec& weight,
                                const Vec& bias) {
  std::vector<Scalar> out(static_cast<std::size_t>(c.M) * c.N, Scalar(-7));
  const auto i = cast<Scalar>(inp), w = cast<Scalar>(weight), b = cast<Scalar>(bias);
  cpu::matmul_forward<Scalar>(out.data(), i.data(), w.data(), c.bias ? b.data() : nullptr, c.M,
                              c.K, c.N);
  return out;
}

TEST(Matmul, ForwardMatchesFloat64Reference) {
  for (const auto& c : cases::kMatmul) {
    SCOPED_TRACE(describe(c));
    const Vec inp = random_vector(static_cast<std::size_t>(c.M) * c.K, 1);
    const Vec weight = random_vector(static_cast<std::size_t>(c.N) * c.K, 2);
    const Vec bias = c.bias ? random_vector(c.N, 3) : Vec{};
    const Vec expected = reference::matmul_forward(inp, weight, bias, c.M, c.K, c.N);
    EXPECT_TRUE(all_close(run_forward<double>(c, inp, weight, bias), expected, kDoubleRtol,
                          kDoubleAtol));
    EXPECT_TRUE(all_close(run_forward<float>(c, inp, weight, bias), expected, kFloatRtol,
                          kFloatAtol));
  }
}

TEST(Matmul, BackwardMatchesFiniteDifferencesInDouble) {
  for (const auto& c : cases::kMatmul) {
    if (static_cast<long>(c.M) * c.K * c.N > 40000) continue;  // finite differences stay cheap
    SCOPED_TRACE(describe(c));
    const Vec inp = random_vector(static_cast<std::size_t>(c.M) * c.K, 11);
    const Vec weight = random_vector(static_cast<std::size_t>(c.N) * c.K, 12);
    const Vec bias = random_vector(c.N, 13);
    const Vec projection = random_vector(static_cast<std::size_t>(c.M) * c.N, 14);
    auto loss = [&](const Vec& i, const Vec& w, const Vec& b) {
      Vec out(static_cast<std::size_t>(c.M) * c.N);
      cpu::matmul_forward<double>(out.data(), i.data(), w.data(), b.data(), c.M, c.K, c.N);
      return dot(out, projection);
    };
    Vec dinp(inp.size(), 0.0);
    cpu::matmul_backward_input<double>(dinp.data(), projection.data(), weight.data(), c.M, c.K,
                                       c.N);
    Vec dweight(weight.size(), 0.0), dbias(bias.size(), 0.0);
    cpu::matmul_backward_weight<double>(dweight.data(), dbias.data(), projection.data(),
                                        inp.data(), c.M, c.K, c.N);
    EXPECT_TRUE(all_close(dinp,
                          numeric_gradient([&](const Vec& x) { return loss(x, weight, bias); }, inp),
                          kGradRtol, kGradAtol));
    EXPECT_TRUE(all_close(dweight,
                          numeric_gradient([&](const Vec& x) { return loss(inp, x, bias); }, weight),
                          kGradRtol, kGradAtol));
    EXPECT_TRUE(all_close(dbias,
                          numeric_gradient([&](const Vec& x) { return loss(inp, weight, x); }, bias),
                          kGradRtol, kGradAtol));
  }
}

// The float tolerance of test_support.hpp holds for sums of up to ~1000 products of values in
// [−1, 1]; the rounding error of a longer float sum grows like the square root of its length
// (Eigen sums each output in chains as long as its depth block, up to ~800 products), so the input
// gradient, a sum over N, gets that much more.
double float_tolerance_for_depth(int depth) { return std::max(1.0, std::sqrt(depth / 1000.0)); }

TEST(Matmul, FloatBackwardMatchesFloat64ReferenceAndAccumulates) {
  for (const auto& c : cases::kMatmul) {
    SCOPED_TRACE(describe(c));
    const double input_scale = float_tolerance_for_depth(c.N);
    const Vec inp = random_vector(static_cast<std::size_t>(c.M) * c.K, 21);
    const Vec weight = random_vector(static_cast<std::size_t>(c.N) * c.K, 22);
    const Vec dout = random_vector(static_cast<std::size_t>(c.M) * c.N, 23);
    const Vec dinp_expected = reference::matmul_backward_input(dout, weight, c.M, c.K, c.N);
    Vec dweight_expected, dbias_expected;
    reference::matmul_backward_weight(dweight_expected, dbias_expected, dout, inp, c.M, c.K, c.N);

    const auto inp_f = cast<float>(inp), weight_f = cast<float>(weight), dout_f = cast<float>(dout);
    // Input gradient: written, then accumulated onto a previous value.
    std::vector<float> dinp(inp.size(), 99.0f);
    cpu::matmul_backward_input<float>(dinp.data(), dout_f.data(), weight_f.data(), c.M, c.K, c.N);
    EXPECT_TRUE(all_close(dinp, dinp_expected, kFloatRtol * input_scale, kFloatAtol * input_scale));
    const Vec previous = random_vector(inp.size(), 24);
    std::vector<float> dinp_acc = cast<float>(previous);
    cpu::matmul_backward_input<float>(dinp_acc.data(), dout_f.data(), weight_f.data(), c.M, c.K,
                                      c.N, /*accumulate=*/true);
    Vec dinp_acc_expected = dinp_expected;
    for (std::size_t i = 0; i < previous.size(); ++i) dinp_acc_expected[i] += previous[i];
    EXPECT_TRUE(all_close(dinp_acc, dinp_acc_expected, kFloatRtol * input_scale, kFloatAtol * input_scale));

    // Weight gradients accumulate onto what is there (micro-batch accumulation).
    const Vec dweight0 = random_vector(weight.size(), 25), dbias0 = random_vector(c.N, 26);
    std::vector<float> dweight = cast<float>(dweight0), dbias = cast<float>(dbias0);
    cpu::matmul_backward_weight<float>(dweight.data(), dbias.data(), dout_f.data(), inp_f.data(),
                                       c.M, c.K, c.N);
    for (std::size_t i = 0; i < dweight0.size(); ++i) dweight_expected[i] += dweight0[i];
    for (std::size_t i = 0; i < dbias0.size(); ++i) dbias_expected[i] += dbias0[i];
    EXPECT_TRUE(all_close(dweight, dweight_expected, kFloatRtol, kFloatAtol));
    EXPECT_TRUE(all_close(dbias, dbias_expected, kFloatRtol, kFloatAtol));

    // A null dbias skips the bias gradient.
    std::vector<float> dweight_only(weight.size(), 0.0f);
    cpu::matmul_backward_weight<float>(dweight_only.data(), nullptr, dout_f.data(), inp_f.data(),
                                       c.M, c.K, c.N);
    Vec dweight_plain;
    reference::matmul_backward_weight(dweight_plain, dbias_expected, dout, inp, c.M, c.K, c.N);
    EXPECT_TRUE(all_close(dweight_only, dweight_plain, kFloatRtol, kFloatAtol));
  }
}

}  // namespace
}  // namespace tandem::kernels
