#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/cross_entropy.hpp"
#include "tests/kernels/cases.hpp"
#include "tests/kernels/reference.hpp"
#include "tests/kernels/test_support.hpp"

namespace tandem::kernels {
namespace {

using namespace testing;  // NOLINT
using cases::CrossEntropyCase;

std::string describe(const CrossEntropyCase& c) {
  return "M=" + std::to_string(c.M) + " V=" + std::to_string(c.V) +
         " valid=" + std::to_string(c.valid_vocab) + (c.ignore_some ? " with ignored rows" : "");
}

std::vector<std::int32_t> targets_for(int M, int valid_vocab, bool ignore_some, std::uint32_t seed) {
  auto targets = random_tokens(M, 0, valid_vocab, seed);
  if (ignore_some) {
    for (int i = 1; i < M; i += 3) targets[i] = -1;
  }
  return targets;
}

double reference_mean(const Vec& losses, const std::vector<std::int32_t>& targets) {
  double sum = 0.0;
  int counted = 0;
  for (std::size_t i = 0; i < losses.size(); ++i) {
    if (targets[i] < 0) continue;
    sum += losses[i];
    ++counted;
  }
  return counted ? sum / counted : 0.0;
}

int counted_rows(const std::vector<std::int32_t>& targets) {
  return static_cast<int>(std::count_if(targets.begin(), targets.end(), [](int t) { return t >= 0; }));
}

// Logits spread over ±8 (and padding columns set huge, which must be ignored).
Vec logits_for(const CrossEntropyCase& c, std::uint32_t seed) {
  Vec logits = random_vector(static_cast<std::size_t>(c.M) * c.V, seed, -8.0, 8.0);
  for (int i = 0; i < c.M; ++i)
    for (int j = c.valid_vocab; j < c.V; ++j) logits[static_cast<std::size_t>(i) * c.V + j] = 1e3;
  return logits;
}

TEST(CrossEntropy, ForwardMatchesFloat64Reference) {
  for (const auto& c : cases::kCrossEntropy) {
    SCOPED_TRACE(describe(c));
    const Vec logits = logits_for(c, 211);
    const auto targets = targets_for(c.M, c.valid_vocab, c.ignore_some, 212);
    const Vec expected = reference::cross_entropy_losses(logits, targets, c.M, c.V, c.valid_vocab);
    Vec losses(c.M), lse(c.M);
    const double mean = cpu::cross_entropy_forward<double>(losses.data(), lse.data(),
                                                           logits.data(), targets.data(), c.M,
                                                           c.V, c.valid_vocab);
    EXPECT_TRUE(all_close(losses, expected, 1e-12, 1e-12));
    EXPECT_NEAR(mean, reference_mean(expected, targets), 1e-12);
    const auto logits_f = cast<float>(logits);
    std::vector<float> losses_f(c.M), lse_f(c.M);
    const double mean_f = cpu::cross_entropy_forward<float>(losses_f.data(), lse_f.data(),
                                                            logits_f.data(), targets.data(), c.M,
                                                            c.V, c.valid_vocab);
    EXPECT_TRUE(all_close(losses_f, expected, kFloatRtol, kFloatAtol));
    EXPECT_NEAR(mean_f, reference_mean(expected, targets), kFloatAtol);
  }
}

TEST(CrossEntropy, BackwardMatchesReferenceFiniteDifferencesAndWorksInPlace) {
  for (const auto& c : cases::kCrossEntropy) {
    SCOPED_TRACE(describe(c));
    const Vec logits = logits_for(c, 221);
    const auto targets = targets_for(c.M, c.valid_vocab, c.ignore_some, 222);
    const int counted = std::max(1, counted_rows(targets));
    const double dloss = 1.0 / counted;  // gradient of the mean loss
    Vec losses(c.M), lse(c.M);
    cpu::cross_entropy_forward<double>(losses.data(), lse.data(), logits.data(), targets.data(),
                                       c.M, c.V, c.valid_vocab);
    Vec dlogits(logits.size(), 77.0);
    cpu::cross_entropy_backward<double>(dlogits.data(), logits.data(), lse.data(), targets.data(),
                                        dloss, c.M, c.V, c.valid_vocab);
    const Vec expected =
        reference::cross_entropy_dlogits(logits, targets, dloss, c.M, c.V, c.valid_vocab);
    EXPECT_TRUE(all_close(dlogits, expected, 1e-12, 1e-14));
    const Vec numeric = numeric_gradient(
        [&](const Vec& x) {
          Vec l(c.M), s(c.M);
          return cpu::cross_entropy_forward<double>(l.data(), s.data(), x.data(), targets.data(),
                                                    c.M, c.V, c.valid_vocab);
        },
        logits);
    EXPECT_TRUE(all_close(dlogits, numeric, kGradRtol, kGradAtol));

    // Float, in place (dlogits aliases logits).
    auto buffer = cast<float>(logits);
    std::vector<float> losses_f(c.M), lse_f(c.M);
    cpu::cross_entropy_forward<float>(losses_f.data(), lse_f.data(), buffer.data(),
                                      targets.data(), c.M, c.V, c.valid_vocab);
    cpu::cross_entropy_backward<float>(buffer.data(), buffer.data(), lse_f.data(), targets.data(),
                                       static_cast<float>(dloss), c.M, c.V, c.valid_vocab);
    EXPECT_TRUE(all_close(buffer, expected, kFloatRtol, 1e-6));
  }
}

// Megatron's vocab-parallel cross-entropy, composed over 2–3 shards with the reductions done here
// by hand, equals the full-vocabulary loss and gradient.
TEST(CrossEntropy, VocabParallelPiecesComposeToFullVocabulary) {
  for (const auto& c : cases::kShardedCrossEntropy) {
    SCOPED_TRACE("M=" + std::to_string(c.M) + " V=" + std::to_string(c.V) + " valid=" +
                 std::to_string(c.valid_vocab) + " shards=" + std::to_string(c.shard_sizes.size()));
    const CrossEntropyCase full{c.M, c.V, c.valid_vocab, true};
    const Vec logits = logits_for(full, 231);
    const auto targets = targets_for(c.M, c.valid_vocab, true, 232);
    const double dloss = 1.0 / std::max(1, counted_rows(targets));
    const Vec expected_losses =
        reference::cross_entropy_losses(logits, targets, c.M, c.V, c.valid_vocab);
    const Vec expected_dlogits =
        reference::cross_entropy_dlogits(logits, targets, dloss, c.M, c.V, c.valid_vocab);

    for (int precision = 0; precision < 2; ++precision) {
      SCOPED_TRACE(precision == 0 ? "double" : "float");
      auto run = [&](auto zero) {
        using Scalar = decltype(zero);
        // Slice the shards.
        std::vector<std::vector<Scalar>> shard_logits;
        std::vector<int> starts;
        int start = 0;
        for (int size : c.shard_sizes) {
          std::vector<Scalar> s(static_cast<std::size_t>(c.M) * size);
          for (int i = 0; i < c.M; ++i)
            for (int j = 0; j < size; ++j)
              s[static_cast<std::size_t>(i) * size + j] =
                  static_cast<Scalar>(logits[static_cast<std::size_t>(i) * c.V + start + j]);
          shard_logits.push_back(std::move(s));
          starts.push_back(start);
          start += size;
        }
        const std::size_t shards = c.shard_sizes.size();
        std::vector<Scalar> global_max(c.M, -INFINITY), global_sum(c.M, 0), global_target(c.M, 0);
        std::vector<Scalar> part(c.M);
        for (std::size_t s = 0; s < shards; ++s) {  // all-reduce MAX
          cpu::vocab_parallel_max<Scalar>(part.data(), shard_logits[s].data(), c.M,
                                          c.shard_sizes[s], starts[s], c.valid_vocab);
          for (int i = 0; i < c.M; ++i) global_max[i] = std::max(global_max[i], part[i]);
        }
        for (std::size_t s = 0; s < shards; ++s) {  // all-reduce SUM (two buffers)
          cpu::vocab_parallel_sum_exp<Scalar>(part.data(), shard_logits[s].data(),
                                              global_max.data(), c.M, c.shard_sizes[s], starts[s],
                                              c.valid_vocab);
          for (int i = 0; i < c.M; ++i) global_sum[i] += part[i];
          cpu::vocab_parallel_target_logit<Scalar>(part.data(), shard_logits[s].data(),
                                                   targets.data(), c.M, c.shard_sizes[s],
                                                   starts[s]);
          for (int i = 0; i < c.M; ++i) global_target[i] += part[i];
        }
        std::vector<Scalar> losses(c.M), lse(c.M);
        const double mean =
            cpu::vocab_parallel_loss<Scalar>(losses.data(), lse.data(), global_max.data(),
                                             global_sum.data(), global_target.data(),
                                             targets.data(), c.M);
        std::vector<Scalar> dlogits(logits.size());
        for (std::size_t s = 0; s < shards; ++s) {
          // In place on the shard's logits, then scattered back into the full layout.
          cpu::vocab_parallel_backward<Scalar>(shard_logits[s].data(), shard_logits[s].data(),
                                               lse.data(), targets.data(),
                                               static_cast<Scalar>(dloss), c.M, c.shard_sizes[s],
                                               starts[s], c.valid_vocab);
          for (int i = 0; i < c.M; ++i)
            for (int j = 0; j < c.shard_sizes[s]; ++j)
              dlogits[static_cast<std::size_t>(i) * c.V + starts[s] + j] =
                  shard_logits[s][static_cast<std::size_t>(i) * c.shard_sizes[s] + j];
        }
        const double rtol = precision == 0 ? 1e-12 : kFloatRtol;
        const double atol = precision == 0 ? 1e-12 : kFloatAtol;
        EXPECT_TRUE(all_close(losses, expected_losses, rtol, atol));
        EXPECT_NEAR(mean, reference_mean(expected_losses, targets), atol);
        EXPECT_TRUE(all_close(dlogits, expected_dlogits, rtol, atol));
      };
      if (precision == 0) {
        run(0.0);
      } else {
        run(0.0f);
      }
    }
  }
}

}  // namespace
}  // namespace tandem::kernels
