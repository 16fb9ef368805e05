#include <gtest/gtest.h>

#include "kernels/cpu/activation.hpp"
#include "kernels/cpu/rope.hpp"
#include "tests/kernels/cases.hpp"
#include "tests/kernels/reference.hpp"
#include "tests/kernels/test_support.hpp"

namespace tandem::kernels {
namespace {

using namespace testing;  // NOLINT

// ---- GELU ------------------------------------------------------------------------------------

template <typename Scalar>
std::vector<Scalar> gelu(const Vec& x) {
  const auto in = cast<Scalar>(x);
  std::vector<Scalar> out(x.size());
  cpu::gelu_forward<Scalar>(out.data(), in.data(), in.size());
  return out;
}

TEST(Gelu, ForwardMatchesFloat64Reference) {
  // 1, 37 and 100003 elements: the scalar tail, one chunk, and several chunks on two threads.
  for (std::size_t n : {std::size_t{1}, std::size_t{37}, std::size_t{100003}}) {
    SCOPED_TRACE("n=" + std::to_string(n));
    const Vec x = random_vector(n, 111, -6.0, 6.0);
    const Vec expected = reference::gelu_forward(x);
    EXPECT_TRUE(all_close(gelu<double>(x), expected, 1e-12, 1e-13));
    EXPECT_TRUE(all_close(gelu<float>(x), expected, kFloatRtol, kFloatAtol));
  }
}

TEST(Gelu, BackwardMatchesFiniteDifferencesAndFloat) {
  const Vec x = random_vector(257, 121, -6.0, 6.0);
  const Vec projection = random_vector(x.size(), 122);
  Vec dinp(x.size());
  cpu::gelu_backward<double>(dinp.data(), x.data(), projection.data(), x.size());
  EXPECT_TRUE(all_close(
      dinp, numeric_gradient([&](const Vec& v) { return dot(gelu<double>(v), projection); }, x),
      kGradRtol, kGradAtol));
  // Float, accumulating onto a previous gradient.
  const auto x_f = cast<float>(x), proj_f = cast<float>(projection);
  std::vector<float> dinp_f(x.size(), 2.0f);
  cpu::gelu_backward<float>(dinp_f.data(), x_f.data(), proj_f.data(), x.size(), true);
  Vec expected = dinp;
  for (auto& v : expected) v += 2.0;
  EXPECT_TRUE(all_close(dinp_f, expected, kFloatRtol, kFloatAtol));
  // In place: dinp aliases dout.
  std::vector<float> inplace = proj_f;
  cpu::gelu_backward<float>(inplace.data(), x_f.data(), inplace.data(), x.size());
  EXPECT_TRUE(all_close(inplace, dinp, kFloatRtol, kFloatAtol));
}

// ---- SwiGLU ----------------------------------------------------------------------------------

template <typename Scalar>
std::vector<Scalar> swiglu(const Vec& x, int M, int F) {
  const auto in = cast<Scalar>(x);
  std::vector<Scalar> out(static_cast<std::size_t>(M) * F);
  cpu::swiglu_forward<Scalar>(out.data(), in.data(), M, F);
  return out;
}

TEST(Swiglu, ForwardMatchesFloat64Reference) {
  auto all = cases::kSwiglu;
  all.push_back({300, 513});  // parallel path
  for (const auto& c : all) {
    SCOPED_TRACE("M=" + std::to_string(c.M) + " F=" + std::to_string(c.F));
    const Vec x = random_vector(static_cast<std::size_t>(c.M) * 2 * c.F, 131, -8.0, 8.0);
    const Vec expected = reference::swiglu_forward(x, c.M, c.F);
    EXPECT_TRUE(all_close(swiglu<double>(x, c.M, c.F), expected, 1e-12, 1e-13));
    EXPECT_TRUE(all_close(swiglu<float>(x, c.M, c.F), expected, kFloatRtol, kFloatAtol));
  }
}

TEST(Swiglu, BackwardMatchesFiniteDifferencesAndFloat) {
  for (const auto& c : cases::kSwiglu) {
    SCOPED_TRACE("M=" + std::to_string(c.M) + " F=" + std::to_string(c.F));
    const Vec x = random_vector(static_cast<std::size_t>(c.M) * 2 * c.F, 141, -8.0, 8.0);
    const Vec projection = random_vector(static_cast<std::size_t>(c.M) * c.F, 142);
    Vec dinp(x.size(), 3.0);
    cpu::swiglu_backward<double>(dinp.data(), x.data(), projection.data(), c.M, c.F);
    EXPECT_TRUE(all_close(
        dinp,
        numeric_gradient([&](const Vec& v) { return dot(swiglu<double>(v, c.M, c.F), projection); },
                         x),
        kGradRtol, kGradAtol));
    const auto x_f = cast<float>(x), proj_f = cast<float>(projection);
    std::vector<float> dinp_f(x.size(), -1.0f);
    cpu::swiglu_backward<float>(dinp_f.data(), x_f.data(), proj_f.data(), c.M, c.F, true);
    Vec expected = dinp;
    for (auto& v : expected) v -= 1.0;
    EXPECT_TRUE(all_close(dinp_f, expected, kFloatRtol, kFloatAtol));
  }
}

// ---- RoPE ------------------------------------------------------------------------------------

using cases::RopeCase;

std::string describe(const RopeCase& c) {
  return "B=" + std::to_string(c.B) + " T=" + std::to_string(c.T) + " Hq=" +
         std::to_string(c.Hq) + " Hkv=" + std::to_string(c.Hkv) + " D=" + std::to_string(c.D) +
         " offset=" + std::to_string(c.position_offset);
}

std::size_t qkv_size(const RopeCase& c) {
  return static_cast<std::size_t>(c.B) * c.T * (c.Hq + 2 * c.Hkv) * c.D;
}

template <typename Scalar>
std::vector<Scalar> rope(const RopeCase& c, const Vec& qkv) {
  auto x = cast<Scalar>(qkv);
  cpu::rope_forward<Scalar>(x.data(), c.B, c.T, c.Hq, c.Hkv, c.D, c.theta, c.position_offset);
  return x;
}

TEST(Rope, ForwardMatchesFloat64Reference) {
  for (const auto& c : cases::kRope) {
    SCOPED_TRACE(describe(c));
    const Vec qkv = random_vector(qkv_size(c), 151);
    const Vec expected =
        reference::rope_forward(qkv, c.B, c.T, c.Hq, c.Hkv, c.D, c.theta, c.position_offset);
    EXPECT_TRUE(all_close(rope<double>(c, qkv), expected, 1e-12, 1e-12));
    EXPECT_TRUE(all_close(rope<float>(c, qkv), expected, kFloatRtol, kFloatAtol));
  }
}

TEST(Rope, BackwardMatchesFiniteDifferencesAndInvertsForward) {
  for (const auto& c : cases::kRope) {
    SCOPED_TRACE(describe(c));
    const Vec qkv = random_vector(qkv_size(c), 161);
    const Vec projection = random_vector(qkv.size(), 162);
    Vec dqkv = projection;
    cpu::rope_backward<double>(dqkv.data(), c.B, c.T, c.Hq, c.Hkv, c.D, c.theta,
                               c.position_offset);
    EXPECT_TRUE(all_close(
        dqkv, numeric_gradient([&](const Vec& x) { return dot(rope<double>(c, x), projection); },
                               qkv),
        kGradRtol, kGradAtol));
    auto dqkv_f = cast<float>(projection);
    cpu::rope_backward<float>(dqkv_f.data(), c.B, c.T, c.Hq, c.Hkv, c.D, c.theta,
                              c.position_offset);
    EXPECT_TRUE(all_close(dqkv_f, dqkv, kFloatRtol, kFloatAtol));
    // A rotation's gradient map is its inverse: backward(forward(x)) = x.
    Vec roundtrip = rope<double>(c, qkv);
    cpu::rope_backward<double>(roundtrip.data(), c.B, c.T, c.Hq, c.Hkv, c.D, c.theta,
                               c.position_offset);
    EXPECT_TRUE(all_close(roundtrip, qkv, 1e-12, 1e-12));
  }
}

}  // namespace
}  // namespace tandem::kernels
