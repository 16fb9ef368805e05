#pragma once
// Deterministic, platform-independent Gaussian numbers for APOLLO's random projections (std::
// normal_distribution differs between standard libraries, and a resumed run must regenerate
// exactly the same projection). Specification, so a test can reproduce it independently:
//   splitmix64(x): x += 0x9E3779B97F4A7C15; z = x; z = (z ^ z>>30) * 0xBF58476D1CE4E5B9;
//                  z = (z ^ z>>27) * 0x94D049BB133111EB; return z ^ z>>31   (x advanced in place)
//   tensor seed  = splitmix64(scenario seed XOR fnv1a64(tensor name))
//   projection k (the k-th refresh, from 0) is the stream with state tensor_seed + k*0xD1B54A32D192ED03;
//   entries in row-major order, two per Box-Muller pair of draws u1 = ((x>>11) + 1) * 2^-53,
//   u2 = (x>>11) * 2^-53:  z0 = sqrt(-2 ln u1) cos(2 pi u2), z1 = sqrt(-2 ln u1) sin(2 pi u2),
//   each entry = float(z / sqrt(rank))  ~ N(0, 1/rank).

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tandem::engine::optim {

std::uint64_t splitmix64(std::uint64_t& state);
std::uint64_t fnv1a64(std::string_view text);
std::uint64_t projection_tensor_seed(std::uint64_t scenario_seed, std::string_view tensor_name);
// Fills out[0..count) with projection `index` of the tensor: N(0, 1) / sqrt(rank).
void fill_gaussian_projection(std::uint64_t tensor_seed, std::uint64_t index, std::int64_t rank,
                              float* out, std::size_t count);

}  // namespace tandem::engine::optim
