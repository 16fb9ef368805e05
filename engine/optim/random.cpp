#include "engine/optim/random.hpp"

#include <cmath>
#include <numbers>

namespace tandem::engine::optim {

std::uint64_t splitmix64(std::uint64_t& state) {
  state += 0x9E3779B97F4A7C15ull;
  std::uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::uint64_t fnv1a64(std::string_view text) {
  std::uint64_t hash = 0xCBF29CE484222325ull;
  for (const char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001B3ull;
  }
  return hash;
}

std::uint64_t projection_tensor_seed(std::uint64_t scenario_seed, std::string_view tensor_name) {
  std::uint64_t state = scenario_seed ^ fnv1a64(tensor_name);
  return splitmix64(state);
}

void fill_gaussian_projection(std::uint64_t tensor_seed, std::uint64_t index, std::int64_t rank,
                              float* out, std::size_t count) {
  std::uint64_t state = tensor_seed + index * 0xD1B54A32D192ED03ull;
  const double inverse_sqrt_rank = 1.0 / std::sqrt(static_cast<double>(rank));
  constexpr double kTwoPi = 2.0 * std::numbers::pi;
  constexpr double kUnit = 1.0 / 9007199254740992.0;  // 2^-53
  for (std::size_t i = 0; i < count; i += 2) {
    const double u1 = static_cast<double>((splitmix64(state) >> 11) + 1) * kUnit;
    const double u2 = static_cast<double>(splitmix64(state) >> 11) * kUnit;
    const double radius = std::sqrt(-2.0 * std::log(u1));
    out[i] = static_cast<float>(radius * std::cos(kTwoPi * u2) * inverse_sqrt_rank);
    if (i + 1 < count) out[i + 1] = static_cast<float>(radius * std::sin(kTwoPi * u2) * inverse_sqrt_rank);
  }
}

}  // namespace tandem::engine::optim
