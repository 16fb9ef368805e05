#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "kernels/cpu/attention.hpp"
#include "tests/kernels/cases.hpp"
#include "tests/kernels/reference.hpp"
#include "tests/kernels/test_support.hpp"

namespace tandem::kernels {
namespace {

using namespace testing;  // NOLINT
using cases::AttentionCase;

std::string describe(const AttentionCase& c) {
  return "B=" + std::to_string(c.B) + " T=" + std::to_string(c.T) + " Hq=" +
         std::to_string(c.Hq) + " Hkv=" + std::to_string(c.Hkv) + " D=" + std::to_string(c.D);
}
std::size_t qkv_size(const AttentionCase& c) {
  return static_cast<std::size_t>(c.B) * c.T * (c.Hq + 2 * c.Hkv) * c.D;
}
std::size_t out_size(const AttentionCase& c) {
  return static_cast<std::size_t>(c.B) * c.T * c.Hq * c.D;
}
std::size_t lse_size(const AttentionCase& c) {
  return static_cast<std::size_t>(c.B) * c.Hq * c.T;
}

template <typename Scalar>
void forward(const AttentionCase& c, const std::vector<Scalar>& qkv, std::vector<Scalar>& out,
             std::vector<Scalar>& lse) {
  out.assign(out_size(c), Scalar(-3));
  lse.assign(lse_size(c), Scalar(-3));
  cpu::attention_forward<Scalar>(out.data(), lse.data(), qkv.data(), c.B, c.T, c.Hq, c.Hkv, c.D);
}

template <typename Scalar>
std::vector<Scalar> backward(const AttentionCase& c, const std::vector<Scalar>& qkv,
                             const std::vector<Scalar>& dout) {
  std::vector<Scalar> out, lse;
  forward(c, qkv, out, lse);
  std::vector<Scalar> dqkv(qkv.size(), Scalar(1234));  // written, so the garbage must vanish
  cpu::attention_backward<Scalar>(dqkv.data(), dout.data(), qkv.data(), out.data(), lse.data(),
                                  c.B, c.T, c.Hq, c.Hkv, c.D);
  return dqkv;
}

TEST(Attention, ForwardMatchesFloat64Reference) {
  std::vector<AttentionCase> all = cases::kAttention;
  all.insert(all.end(), cases::kAttentionLong.begin(), cases::kAttentionLong.end());
  for (const auto& c : all) {
    SCOPED_TRACE(describe(c));
    // Scores of size ~±3·sqrt(D) exercise the softmax's max subtraction.
    const Vec qkv = random_vector(qkv_size(c), 31, -2.0, 2.0);
    Vec expected_out, expected_lse;
    reference::attention_forward(expected_out, expected_lse, qkv, c.B, c.T, c.Hq, c.Hkv, c.D);
    Vec out, lse;
    forward<double>(c, qkv, out, lse);
    EXPECT_TRUE(all_close(out, expected_out, kDoubleRtol, 1e-10));
    EXPECT_TRUE(all_close(lse, expected_lse, kDoubleRtol, 1e-10));
    std::vector<float> out_f, lse_f;
    forward<float>(c, cast<float>(qkv), out_f, lse_f);
    EXPECT_TRUE(all_close(out_f, expected_out, kFloatRtol, kFloatAtol));
    EXPECT_TRUE(all_close(lse_f, expected_lse, kFloatRtol, kFloatAtol));
  }
}

TEST(Attention, BackwardMatchesFiniteDifferencesInDouble) {
  for (const auto& c : cases::kAttention) {
    SCOPED_TRACE(describe(c));
    const Vec qkv = random_vector(qkv_size(c), 41, -2.0, 2.0);
    const Vec projection = random_vector(out_size(c), 42);
    const Vec dqkv = backward<double>(c, qkv, projection);
    const Vec numeric = numeric_gradient(
        [&](const Vec& x) {
          Vec out, lse;
          forward<double>(c, x, out, lse);
          return dot(out, projection);
        },
        qkv);
    EXPECT_TRUE(all_close(dqkv, numeric, kGradRtol, kGradAtol));
  }
}

// GQA with a single kv head and enough work for two threads takes the backward path that
// accumulates dk/dv per query head in scratch buffers; check it on a sample of coordinates.
TEST(Attention, GroupedBackwardWithFewKvHeadsMatchesFiniteDifferences) {
  const AttentionCase c{1, 70, 4, 1, 8};
  const Vec qkv = random_vector(qkv_size(c), 51, -2.0, 2.0);
  const Vec projection = random_vector(out_size(c), 52);
  const Vec dqkv = backward<double>(c, qkv, projection);
  auto loss = [&](const Vec& x) {
    Vec out, lse;
    forward<double>(c, x, out, lse);
    return dot(out, projection);
  };
  std::mt19937 rng(53);
  std::uniform_int_distribution<std::size_t> pick(0, qkv.size() - 1);
  Vec analytic, numeric;
  Vec x = qkv;
  for (int sample = 0; sample < 300; ++sample) {
    const std::size_t i = pick(rng);
    const double h = 1e-5;
    x[i] = qkv[i] + h;
    const double plus = loss(x);
    x[i] = qkv[i] - h;
    const double minus = loss(x);
    x[i] = qkv[i];
    numeric.push_back((plus - minus) / (2 * h));
    analytic.push_back(dqkv[i]);
  }
  EXPECT_TRUE(all_close(analytic, numeric, kGradRtol, kGradAtol));
}

TEST(Attention, FloatBackwardMatchesDoubleBackward) {
  std::vector<AttentionCase> all = cases::kAttention;
  all.insert(all.end(), cases::kAttentionLong.begin(), cases::kAttentionLong.end());
  all.push_back({1, 130, 4, 1, 16});  // the scratch path at a longer length
  for (const auto& c : all) {
    SCOPED_TRACE(describe(c));
    const Vec qkv = random_vector(qkv_size(c), 61, -2.0, 2.0);
    const Vec dout = random_vector(out_size(c), 62);
    const Vec expected = backward<double>(c, qkv, dout);
    const std::vector<float> dqkv = backward<float>(c, cast<float>(qkv), cast<float>(dout));
    EXPECT_TRUE(all_close(dqkv, expected, 1e-4, 1e-4));
  }
}

}  // namespace
}  // namespace tandem::kernels
