#pragma once
// Helpers of the checkpoint tests: a scratch directory, the deterministic contents of "the
// checkpoint of step S of rank R" (so a test knows what any checkpoint must hold), file damage.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "engine/checkpoint/checkpoint.hpp"
#include "tests/support/temporary_directory.hpp"

namespace tandem::engine::checkpoint::testing {

using tandem::testing::TemporaryDirectory;

inline std::uint64_t next_random(std::uint64_t& state) {
  state = state * 6364136223846793005ULL + 1442695040888963407ULL;
  return state >> 11;
}

// What the checkpoint of `step` on `rank` holds in these tests: every section filled with values
// derived from (step, rank), including the fp32 values a lossy encoding would break.
inline RankCheckpoint contents_for(std::int64_t step, int rank, std::size_t weights = 1000) {
  std::uint64_t state = static_cast<std::uint64_t>(step) * 1000003 + static_cast<std::uint64_t>(rank);
  RankCheckpoint c;
  c.weights.resize(weights);
  for (auto& w : c.weights) {
    const auto bits = static_cast<std::uint32_t>(next_random(state));
    std::memcpy(&w, &bits, sizeof w);  // any bit pattern: NaNs with payloads, denormals, -0
  }
  if (weights >= 4) {
    c.weights[0] = -0.0f;
    c.weights[1] = std::numeric_limits<float>::denorm_min();
    c.weights[2] = std::numeric_limits<float>::infinity();
    c.weights[3] = 1.0f / 3.0f;
  }
  c.optimizer_state.resize(300 + static_cast<std::size_t>(step));
  for (auto& b : c.optimizer_state) b = static_cast<std::uint8_t>(next_random(state));
  c.rng_state.resize(40);
  for (auto& b : c.rng_state) b = static_cast<std::uint8_t>(next_random(state));
  c.data_position = {'p', 'o', 's', static_cast<std::uint8_t>(step), static_cast<std::uint8_t>(rank)};
  for (std::int64_t s = 1; s <= step; ++s) c.loss_history.push_back(10.0 / static_cast<double>(s) + 1e-17 * s);
  c.extra_sections["lr_schedule"] = {1, 2, 3, static_cast<std::uint8_t>(step)};
  c.extra_sections["empty"] = {};
  return c;
}

inline bool bit_equal(const RankCheckpoint& a, const RankCheckpoint& b) {
  return a.weights.size() == b.weights.size() &&
         std::memcmp(a.weights.data(), b.weights.data(), a.weights.size() * sizeof(float)) == 0 &&
         a.optimizer_state == b.optimizer_state && a.rng_state == b.rng_state &&
         a.data_position == b.data_position && a.loss_history.size() == b.loss_history.size() &&
         std::memcmp(a.loss_history.data(), b.loss_history.data(),
                     a.loss_history.size() * sizeof(double)) == 0 &&
         a.extra_sections == b.extra_sections;
}

inline std::string read_all(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_all(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline void flip_byte(const std::filesystem::path& path, std::size_t offset) {
  std::string bytes = read_all(path);
  bytes.at(offset) = static_cast<char>(bytes.at(offset) ^ 0x5A);
  write_all(path, bytes);
}

inline WriteOptions keep_newest(int keep) {
  WriteOptions options;
  options.keep = keep;
  return options;
}

// Collects what the library logs.
struct LogCapture {
  std::vector<std::string> messages;
  LogSink sink() {
    return [this](const std::string& message) { messages.push_back(message); };
  }
  bool contains(const std::string& text) const {
    for (const auto& m : messages) {
      if (m.find(text) != std::string::npos) return true;
    }
    return false;
  }
  std::string all() const {
    std::string text;
    for (const auto& m : messages) text += m + "\n";
    return text;
  }
};

}  // namespace tandem::engine::checkpoint::testing
