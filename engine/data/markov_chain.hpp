#pragma once
// The built-in synthetic corpus: a first-order Markov chain over V symbols whose entropy rate is
// known exactly, so a training run can prove it learns (its validation loss approaches
// entropy_rate_nats()).
//
// Random chains (MarkovChain::random(V, K, seed)), specified so a test can rebuild them:
//   - a random cyclic permutation sigma of the V states (Sattolo's algorithm driven by
//     CounterStream(mix64(seed ^ 0x4D41524B4F56)), j = uniform_below(next(), i) for i = V-1..1):
//     state i always has sigma(i) among its successors, so every state reaches every other and
//     the stationary distribution is unique;
//   - K-1 further successors of each state, distinct, drawn uniformly from the other states
//     (a self-transition is allowed), from the same stream;
//   - probabilities: independent Exponential(1) weights -ln(((next() >> 11) + 0.5) * 2^-53) (in
//     the order the successors were drawn), normalised — i.e. each row is
//     uniform on the probability simplex (Dirichlet(1, ..., 1)). The expected row entropy is then
//     H_K - 1 nats (H_K the K-th harmonic number): 1.083 nats for K = 4.
//   Successors are stored in the order they were drawn (sigma(i) first).
//
// Sequences are started from the stationary distribution pi, so the process is stationary and
// every predicted token x_t (t >= 1) has minimal expected cross-entropy H(P_{x_{t-1}}) given
// everything before it; averaged over the stationary start, every target position's minimum is
// the entropy rate  sum_i pi_i H(P_i)  (nats).
//
// pi is computed by power iteration on the lazy chain (I + P)/2 (same stationary distribution,
// aperiodic even when P is periodic) until the L1 distance left to pi, estimated from the
// geometric rate of convergence, is below 1e-15 (or the change reaches rounding level);
// construction throws if that does not happen and the residual |pi P - pi|_1 exceeds 1e-14.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace tandem::engine::data {

struct Transition {
  std::int32_t next = 0;
  double probability = 0;
};

class MarkovChain {
 public:
  // A random sparse chain as specified above. V >= 2, 1 <= K <= V. Throws std::invalid_argument.
  static MarkovChain random(int states, int successors, std::uint64_t seed);
  // A given chain (tests: a hand-computed 2- or 3-state chain). Every row must hold distinct
  // successors in [0, V) with positive probabilities summing to 1 (within 1e-12), and the chain
  // must be irreducible. Throws std::invalid_argument naming the row that is wrong.
  static MarkovChain from_rows(std::vector<std::vector<Transition>> rows);

  int states() const { return static_cast<int>(rows_.size()); }
  std::span<const Transition> row(int state) const { return rows_[state]; }
  // Stationary distribution: pi P = pi, sum pi = 1.
  const std::vector<double>& stationary() const { return stationary_; }
  // H(P_i) in nats.
  double row_entropy_nats(int state) const;
  // sum_i pi_i H(P_i): the minimal expected cross-entropy per predicted token.
  double entropy_rate_nats() const { return entropy_rate_; }

  // Inverse-CDF sampling with u in [0, 1).
  std::int32_t sample_stationary(double u) const;
  std::int32_t sample_next(std::int32_t state, double u) const;

 private:
  explicit MarkovChain(std::vector<std::vector<Transition>> rows);

  std::vector<std::vector<Transition>> rows_;
  std::vector<std::vector<double>> row_cumulative_;
  std::vector<double> stationary_;
  std::vector<double> stationary_cumulative_;
  double entropy_rate_ = 0;
};

}  // namespace tandem::engine::data
