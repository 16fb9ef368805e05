#pragma once
// Counter-based random numbers for the data pipeline: every random choice of a batch is a pure
// function of (seed, stream, step, sequence index), never of a generator's history, so a batch
// is the same whatever the data-parallel layout, and a resumed run needs only the step.
//
// Specification (so a test can reproduce it independently):
//   mix64(x)          = the splitmix64 output function of x + 0x9E3779B97F4A7C15:
//                       z = x + 0x9E3779B97F4A7C15; z = (z ^ z>>30) * 0xBF58476D1CE4E5B9;
//                       z = (z ^ z>>27) * 0x94D049BB133111EB; return z ^ z>>31
//   counter_hash(seed, a, b, c) = h3 with h0 = mix64(seed), h1 = mix64(h0 ^ mix64(a)),
//                       h2 = mix64(h1 ^ mix64(b)), h3 = mix64(h2 ^ mix64(c))
//   CounterStream(key): a splitmix64 generator whose state starts at `key` (next(): state +=
//                       0x9E3779B97F4A7C15, then the output function above).
//   uniform_below(h, n) = floor(h * n / 2^64) (the high half of the 128-bit product)
//   unit_interval(h)  = (h >> 11) * 2^-53, in [0, 1)

#include <cstdint>

namespace tandem::engine::data {

inline constexpr std::uint64_t kGoldenGamma = 0x9E3779B97F4A7C15ULL;

constexpr std::uint64_t mix64(std::uint64_t x) {
  std::uint64_t z = x + kGoldenGamma;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

constexpr std::uint64_t counter_hash(std::uint64_t seed, std::uint64_t a, std::uint64_t b,
                                     std::uint64_t c) {
  std::uint64_t h = mix64(seed);
  h = mix64(h ^ mix64(a));
  h = mix64(h ^ mix64(b));
  return mix64(h ^ mix64(c));
}

constexpr std::uint64_t uniform_below(std::uint64_t h, std::uint64_t n) {
  return static_cast<std::uint64_t>((static_cast<unsigned __int128>(h) * n) >> 64);
}

constexpr double unit_interval(std::uint64_t h) {
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

// A splitmix64 stream: the draws of one sequence (its first token, then each transition).
class CounterStream {
 public:
  explicit constexpr CounterStream(std::uint64_t key) : state_(key) {}
  constexpr std::uint64_t next() {
    state_ += kGoldenGamma;
    std::uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  constexpr double next_unit() { return unit_interval(next()); }

 private:
  std::uint64_t state_;
};

}  // namespace tandem::engine::data
