// The synthetic corpus: its entropy rate against hand-computed chains, an independent stationary
// distribution, and long empirical samples; its construction against its written specification.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "engine/data/counter_hash.hpp"
#include "engine/data/markov_chain.hpp"
#include "engine/data/token_dataset.hpp"
#include "tests/engine_data/test_support.hpp"

namespace tandem::engine::data {
namespace {

// pi of a dense transition matrix by Gaussian elimination with partial pivoting in long double:
// (P^T - I) pi = 0 with the last equation replaced by sum(pi) = 1.
std::vector<double> stationary_by_linear_solve(const MarkovChain& chain) {
  const int n = chain.states();
  std::vector<std::vector<long double>> a(n, std::vector<long double>(n + 1, 0.0L));
  for (int i = 0; i < n; ++i) {
    for (const Transition& t : chain.row(i)) a[t.next][i] += t.probability;
  }
  for (int i = 0; i < n; ++i) a[i][i] -= 1.0L;
  for (int j = 0; j <= n; ++j) a[n - 1][j] = 1.0L;
  for (int col = 0; col < n; ++col) {
    int pivot = col;
    for (int r = col + 1; r < n; ++r) {
      if (std::fabs(a[r][col]) > std::fabs(a[pivot][col])) pivot = r;
    }
    std::swap(a[col], a[pivot]);
    for (int r = 0; r < n; ++r) {
      if (r == col || a[r][col] == 0.0L) continue;
      const long double factor = a[r][col] / a[col][col];
      for (int j = col; j <= n; ++j) a[r][j] -= factor * a[col][j];
    }
  }
  std::vector<double> pi(n);
  for (int i = 0; i < n; ++i) pi[i] = static_cast<double>(a[i][n] / a[i][i]);
  return pi;
}

TEST(SyntheticCorpus, TwoStateChainMatchesHandComputation) {
  // P = [[0.9, 0.1], [0.5, 0.5]]: pi_0 = P10 / (P01 + P10) = 0.5 / 0.6 = 5/6, pi_1 = 1/6.
  const MarkovChain chain = MarkovChain::from_rows({{{0, 0.9}, {1, 0.1}}, {{0, 0.5}, {1, 0.5}}});
  EXPECT_NEAR(chain.stationary()[0], 5.0 / 6.0, 1e-15);
  EXPECT_NEAR(chain.stationary()[1], 1.0 / 6.0, 1e-15);
  const double h0 = -(0.9 * std::log(0.9) + 0.1 * std::log(0.1));  // 0.325083 nats
  const double h1 = std::log(2.0);                                  // 0.693147 nats
  EXPECT_NEAR(chain.entropy_rate_nats(), 5.0 / 6.0 * h0 + 1.0 / 6.0 * h1, 1e-15);
  EXPECT_NEAR(chain.entropy_rate_nats(), 0.386427, 1e-6);
}

TEST(SyntheticCorpus, ThreeStateChainsMatchHandComputation) {
  // 0 -> 1, 1 -> 2, 2 -> {0: 1/2, 2: 1/2}: pi = (1, 1, 2) / 4, only state 2 is uncertain:
  // rate = pi_2 ln 2 = ln(2) / 2.
  const MarkovChain aperiodic =
      MarkovChain::from_rows({{{1, 1.0}}, {{2, 1.0}}, {{0, 0.5}, {2, 0.5}}});
  EXPECT_NEAR(aperiodic.stationary()[0], 0.25, 1e-15);
  EXPECT_NEAR(aperiodic.stationary()[1], 0.25, 1e-15);
  EXPECT_NEAR(aperiodic.stationary()[2], 0.5, 1e-15);
  EXPECT_NEAR(aperiodic.entropy_rate_nats(), std::log(2.0) / 2, 1e-15);

  // Periodic (period 2): 0 -> 1, 1 -> {0: 1/2, 2: 1/2}, 2 -> 1: pi = (1/4, 1/2, 1/4) — plain
  // power iteration would oscillate; rate = pi_1 ln 2.
  const MarkovChain periodic =
      MarkovChain::from_rows({{{1, 1.0}}, {{0, 0.5}, {2, 0.5}}, {{1, 1.0}}});
  EXPECT_NEAR(periodic.stationary()[0], 0.25, 1e-15);
  EXPECT_NEAR(periodic.stationary()[1], 0.5, 1e-15);
  EXPECT_NEAR(periodic.entropy_rate_nats(), std::log(2.0) / 2, 1e-15);
}

TEST(SyntheticCorpus, InvalidChainsAreRefused) {
  EXPECT_THROW(MarkovChain::from_rows({{{0, 1.0}}, {{1, 1.0}}}), std::invalid_argument);  // reducible
  EXPECT_THROW(MarkovChain::from_rows({{{0, 0.5}, {1, 0.4}}, {{0, 1.0}}}), std::invalid_argument);
  EXPECT_THROW(MarkovChain::from_rows({{{0, 0.5}, {0, 0.5}}}), std::invalid_argument);
  EXPECT_THROW(MarkovChain::from_rows({{{3, 1.0}}}), std::invalid_argument);
  EXPECT_THROW(MarkovChain::random(1, 1, 0), std::invalid_argument);
  EXPECT_THROW(MarkovChain::random(8, 9, 0), std::invalid_argument);
}

TEST(SyntheticCorpus, RandomChainFollowsItsSpecification) {
  // Rebuilt here from markov_chain.hpp's description.
  const int V = 64, K = 4;
  const std::uint64_t seed = 1234;
  std::uint64_t state = testing::reference_mix(seed ^ 0x4D41524B4F56ULL);
  auto next = [&state] {
    state += 0x9E3779B97F4A7C15ULL;
    return testing::reference_splitmix_output(state);
  };
  std::vector<int> sigma(V);
  std::iota(sigma.begin(), sigma.end(), 0);
  for (int i = V - 1; i >= 1; --i) {
    std::swap(sigma[i], sigma[testing::reference_below(next(), static_cast<std::uint64_t>(i))]);
  }
  const MarkovChain chain = MarkovChain::random(V, K, seed);
  ASSERT_EQ(chain.states(), V);
  std::vector<int> visited(V, 0);
  for (int i = 0, s = 0; i < V; ++i, s = sigma[s]) visited[s] = 1;  // one cycle through all
  EXPECT_EQ(std::accumulate(visited.begin(), visited.end(), 0), V);
  for (int i = 0; i < V; ++i) {
    std::vector<int> successors{sigma[i]};
    while (static_cast<int>(successors.size()) < K) {
      const int candidate = static_cast<int>(testing::reference_below(next(), V));
      if (std::find(successors.begin(), successors.end(), candidate) == successors.end()) {
        successors.push_back(candidate);
      }
    }
    std::vector<double> weights;
    for (int k = 0; k < K; ++k) {
      weights.push_back(-std::log((static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53));
    }
    const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
    const auto row = chain.row(i);
    ASSERT_EQ(row.size(), static_cast<std::size_t>(K));
    for (int k = 0; k < K; ++k) {
      EXPECT_EQ(row[k].next, successors[k]) << "row " << i;
      EXPECT_DOUBLE_EQ(row[k].probability, weights[k] / total) << "row " << i;
    }
  }
}

TEST(SyntheticCorpus, StationaryDistributionAndEntropyRateAgreeWithALinearSolve) {
  for (const int V : {64, 256}) {
    const MarkovChain chain = MarkovChain::random(V, 4, 99);
    const std::vector<double> pi = stationary_by_linear_solve(chain);
    double rate = 0;
    for (int i = 0; i < V; ++i) {
      EXPECT_NEAR(chain.stationary()[i], pi[i], 1e-14) << "V=" << V << " state " << i;
      double h = 0;
      for (const Transition& t : chain.row(i)) h -= t.probability * std::log(t.probability);
      rate += pi[i] * h;
    }
    EXPECT_NEAR(chain.entropy_rate_nats(), rate, 1e-13);
    // Dirichlet(1,1,1,1) rows: expected row entropy H_4 - 1 = 1.0833; a random chain's rate lies
    // near it (each row's entropy has standard deviation ~0.25; 64+ rows average it out).
    EXPECT_NEAR(chain.entropy_rate_nats(), 1.0833, 0.15);
  }
}

TEST(SyntheticCorpus, EntropyRateMatchesALongEmpiricalSample) {
  DataOptions options;
  options.model_vocab = 256;
  options.seq_len = 128;
  options.seed = 2024;
  const TokenDataset dataset = TokenDataset::open(options);
  const MarkovChain& chain = *dataset.chain();
  const int V = chain.states();
  ASSERT_EQ(V, kDefaultSyntheticVocab);  // min(256, 64)
  const double rate = *dataset.entropy_nats_per_token();

  // 4000 sequences of 128 targets: 512,000 predicted tokens.
  std::vector<std::vector<double>> counts(V, std::vector<double>(V, 0.0));
  std::vector<double> first(V, 0.0);
  double log_loss = 0, log_loss_squared = 0;
  std::int64_t n = 0;
  for (std::int64_t step = 1; step <= 250; ++step) {
    const Batch batch = dataset.global_sequences(step, 0, 16, 128);
    for (std::int64_t s = 0; s < 16; ++s) {
      first[batch.inputs[s * 128]] += 1;
      for (std::int64_t t = 0; t < 128; ++t) {
        const int from = batch.inputs[s * 128 + t];
        const int to = batch.targets[s * 128 + t];
        if (t + 1 < 128) {
          ASSERT_EQ(batch.inputs[s * 128 + t + 1], to);
        }
        counts[from][to] += 1;
        double p = 0;
        for (const Transition& tr : chain.row(from)) {
          if (tr.next == to) p = tr.probability;
        }
        ASSERT_GT(p, 0) << "transition " << from << " -> " << to << " is not in the chain";
        log_loss += -std::log(p);
        log_loss_squared += std::log(p) * std::log(p);
        ++n;
      }
    }
  }
  // (1) Mean log-loss under the true chain: unbiased for the entropy rate. Tokens within a
  // sequence are correlated only through the chain's fast mixing; the tolerance is 6 standard
  // errors of an independent sample, doubled for that correlation.
  const double mean = log_loss / n;
  const double sd = std::sqrt(log_loss_squared / n - mean * mean);
  const double tolerance = 2 * 6 * sd / std::sqrt(static_cast<double>(n));
  EXPECT_NEAR(mean, rate, tolerance) << "sd " << sd << ", n " << n;
  EXPECT_LT(tolerance, 0.02);

  // (2) Plug-in conditional entropy from the bigram counts alone (no knowledge of P): biased low
  // by about (transitions - states) / (2 n) = 192 / 1.0e6; same tolerance plus that bias.
  double plug_in = 0;
  for (int i = 0; i < V; ++i) {
    const double row_total = std::accumulate(counts[i].begin(), counts[i].end(), 0.0);
    for (int j = 0; j < V; ++j) {
      if (counts[i][j] > 0) plug_in -= counts[i][j] / n * std::log(counts[i][j] / row_total);
    }
  }
  EXPECT_NEAR(plug_in, rate - 192.0 / (2.0 * n), tolerance);

  // (3) First tokens follow pi: the total variation distance between pi and the empirical
  // distribution of 4000 draws over 64 states is about 0.05 for a correct sampler; require < 0.1.
  double total_variation = 0;
  for (int i = 0; i < V; ++i) total_variation += std::abs(first[i] / 4000.0 - chain.stationary()[i]);
  EXPECT_LT(total_variation / 2, 0.1);
}

TEST(SyntheticCorpus, DefaultsAndParameters) {
  DataOptions options;
  options.seq_len = 16;
  options.model_vocab = 32;  // smaller than the default V: V = model vocab
  EXPECT_EQ(TokenDataset::open(options).chain()->states(), 32);
  options.model_vocab = 50304;
  const TokenDataset large = TokenDataset::open(options);
  EXPECT_EQ(large.chain()->states(), 64);
  EXPECT_EQ(large.vocab(), 64);
  EXPECT_EQ(large.max_token(), 63);
  EXPECT_NE(large.describe().find("synthetic Markov chain (V=64, 4 successors"), std::string::npos)
      << large.describe();
  options.synthetic.vocab = 256;
  options.synthetic.successors = 2;
  const TokenDataset custom = TokenDataset::open(options);
  EXPECT_EQ(custom.chain()->states(), 256);
  EXPECT_EQ(custom.chain()->row(5).size(), 2u);
  // Different seeds, different chains.
  options.seed = 1;
  const double a = *TokenDataset::open(options).entropy_nats_per_token();
  options.seed = 2;
  EXPECT_NE(a, *TokenDataset::open(options).entropy_nats_per_token());
}

}  // namespace
}  // namespace tandem::engine::data
