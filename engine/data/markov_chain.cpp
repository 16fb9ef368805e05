#include "engine/data/markov_chain.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

#include "engine/data/counter_hash.hpp"

namespace tandem::engine::data {
namespace {

// Stream tag of the chain's structure ("MARKOV" in ASCII).
constexpr std::uint64_t kChainTag = 0x4D41524B4F56ULL;

bool reaches_everything(const std::vector<std::vector<int>>& edges) {
  std::vector<char> seen(edges.size(), 0);
  std::vector<int> stack{0};
  seen[0] = 1;
  std::size_t count = 1;
  while (!stack.empty()) {
    const int state = stack.back();
    stack.pop_back();
    for (const int next : edges[state]) {
      if (!seen[next]) {
        seen[next] = 1;
        ++count;
        stack.push_back(next);
      }
    }
  }
  return count == edges.size();
}

}  // namespace

MarkovChain MarkovChain::random(int states, int successors, std::uint64_t seed) {
  if (states < 2) {
    throw std::invalid_argument("synthetic corpus: the vocabulary must hold at least 2 symbols, got " +
                                std::to_string(states));
  }
  if (successors < 1 || successors > states) {
    throw std::invalid_argument("synthetic corpus: successors per symbol must be in [1, " +
                                std::to_string(states) + "], got " + std::to_string(successors));
  }
  CounterStream stream(mix64(seed ^ kChainTag));
  // Sattolo: a uniformly random cyclic permutation (one cycle through every state).
  std::vector<std::int32_t> cycle(static_cast<std::size_t>(states));
  for (int i = 0; i < states; ++i) cycle[i] = i;
  for (int i = states - 1; i >= 1; --i) {
    const auto j = static_cast<int>(uniform_below(stream.next(), static_cast<std::uint64_t>(i)));
    std::swap(cycle[i], cycle[j]);
  }
  // In Sattolo's permutation, cycle[i] is the image of i.
  std::vector<std::vector<Transition>> rows(static_cast<std::size_t>(states));
  for (int i = 0; i < states; ++i) {
    std::vector<std::int32_t> chosen{cycle[i]};
    while (static_cast<int>(chosen.size()) < successors) {
      const auto candidate =
          static_cast<std::int32_t>(uniform_below(stream.next(), static_cast<std::uint64_t>(states)));
      if (std::find(chosen.begin(), chosen.end(), candidate) == chosen.end()) {
        chosen.push_back(candidate);
      }
    }
    std::vector<double> weights;
    double total = 0;
    for (std::size_t k = 0; k < chosen.size(); ++k) {
      const double u = (static_cast<double>(stream.next() >> 11) + 0.5) * 0x1.0p-53;
      weights.push_back(-std::log(u));
      total += weights.back();
    }
    for (std::size_t k = 0; k < chosen.size(); ++k) {
      rows[i].push_back({chosen[k], weights[k] / total});
    }
  }
  return MarkovChain(std::move(rows));
}

MarkovChain MarkovChain::from_rows(std::vector<std::vector<Transition>> rows) {
  const auto states = static_cast<int>(rows.size());
  if (states < 1) throw std::invalid_argument("Markov chain: no states");
  std::vector<std::vector<int>> edges(rows.size());
  for (int i = 0; i < states; ++i) {
    const std::string where = "Markov chain row " + std::to_string(i) + ": ";
    if (rows[i].empty()) throw std::invalid_argument(where + "has no successors");
    double total = 0;
    for (const Transition& t : rows[i]) {
      if (t.next < 0 || t.next >= states) {
        throw std::invalid_argument(where + "successor " + std::to_string(t.next) +
                                    " is not a state in [0, " + std::to_string(states) + ")");
      }
      if (!(t.probability > 0)) {
        throw std::invalid_argument(where + "probability of successor " +
                                    std::to_string(t.next) + " is not positive");
      }
      if (std::find(edges[i].begin(), edges[i].end(), t.next) != edges[i].end()) {
        throw std::invalid_argument(where + "successor " + std::to_string(t.next) +
                                    " is listed twice");
      }
      edges[i].push_back(t.next);
      total += t.probability;
    }
    if (std::abs(total - 1.0) > 1e-12) {
      throw std::invalid_argument(where + "probabilities sum to " + std::to_string(total) +
                                  ", not 1");
    }
  }
  std::vector<std::vector<int>> reversed(rows.size());
  for (int i = 0; i < states; ++i) {
    for (const int j : edges[i]) reversed[j].push_back(i);
  }
  if (!reaches_everything(edges) || !reaches_everything(reversed)) {
    throw std::invalid_argument(
        "Markov chain: not irreducible (some state cannot reach another), so its stationary "
        "distribution is not unique");
  }
  return MarkovChain(std::move(rows));
}

MarkovChain::MarkovChain(std::vector<std::vector<Transition>> rows) : rows_(std::move(rows)) {
  const std::size_t states = rows_.size();
  row_cumulative_.resize(states);
  for (std::size_t i = 0; i < states; ++i) {
    double running = 0;
    for (const Transition& t : rows_[i]) {
      running += t.probability;
      row_cumulative_[i].push_back(running);
    }
    row_cumulative_[i].back() = 1.0;  // rounding must never let u fall past the last successor
  }

  // Power iteration on the lazy chain (I + P) / 2.
  std::vector<double> pi(states, 1.0 / static_cast<double>(states));
  std::vector<double> next(states);
  const long max_iterations = std::max<long>(100000, 400000000L / static_cast<long>(states * 8 + 1));
  bool converged = false;
  double previous_change = 2.0;
  for (long iteration = 0; iteration < max_iterations; ++iteration) {
    for (std::size_t i = 0; i < states; ++i) next[i] = 0.5 * pi[i];
    for (std::size_t i = 0; i < states; ++i) {
      const double half = 0.5 * pi[i];
      for (const Transition& t : rows_[i]) next[t.next] += half * t.probability;
    }
    double total = 0;
    for (const double p : next) total += p;
    double change = 0;
    for (std::size_t i = 0; i < states; ++i) {
      next[i] /= total;
      change += std::abs(next[i] - pi[i]);
    }
    pi.swap(next);
    // Geometric convergence: the distance left to pi is about change * rate / (1 - rate).
    const double rate = change / previous_change;
    previous_change = change;
    if (change == 0 || change < 1e-17 * static_cast<double>(states) ||
        (change < 1e-15 && rate < 1 && change * rate / (1 - rate) < 1e-15)) {
      converged = true;
      break;
    }
  }
  // Residual of the chain itself (not the lazy one).
  std::vector<double> image(states, 0.0);
  for (std::size_t i = 0; i < states; ++i) {
    for (const Transition& t : rows_[i]) image[t.next] += pi[i] * t.probability;
  }
  double residual = 0;
  for (std::size_t i = 0; i < states; ++i) residual += std::abs(image[i] - pi[i]);
  if (!converged && residual > 1e-14) {
    throw std::runtime_error("Markov chain: the stationary distribution did not converge (residual " +
                             std::to_string(residual) + ")");
  }
  stationary_ = std::move(pi);
  stationary_cumulative_.resize(states);
  double running = 0;
  for (std::size_t i = 0; i < states; ++i) {
    running += stationary_[i];
    stationary_cumulative_[i] = running;
  }
  stationary_cumulative_.back() = 1.0;

  entropy_rate_ = 0;
  for (std::size_t i = 0; i < states; ++i) {
    entropy_rate_ += stationary_[i] * row_entropy_nats(static_cast<int>(i));
  }
}

double MarkovChain::row_entropy_nats(int state) const {
  double entropy = 0;
  for (const Transition& t : rows_[state]) entropy -= t.probability * std::log(t.probability);
  return entropy;
}

std::int32_t MarkovChain::sample_stationary(double u) const {
  const auto it = std::upper_bound(stationary_cumulative_.begin(), stationary_cumulative_.end(), u);
  const auto index = std::min<std::ptrdiff_t>(it - stationary_cumulative_.begin(),
                                              static_cast<std::ptrdiff_t>(stationary_.size()) - 1);
  return static_cast<std::int32_t>(index);
}

std::int32_t MarkovChain::sample_next(std::int32_t state, double u) const {
  const std::vector<double>& cumulative = row_cumulative_[state];
  const std::vector<Transition>& row = rows_[state];
  for (std::size_t k = 0; k + 1 < row.size(); ++k) {
    if (u < cumulative[k]) return row[k].next;
  }
  return row.back().next;
}

}  // namespace tandem::engine::data
