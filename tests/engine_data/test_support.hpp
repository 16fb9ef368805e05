#pragma once
// Helpers of the engine/data tests: a scratch directory and writers of the documented formats
// (written here from the format's description, not with the library).

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/temporary_directory.hpp"

namespace tandem::engine::data::testing {

using tandem::testing::TemporaryDirectory;

inline void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// An llm.c shard: 256 little-endian int32 (magic, version, token count, zeros), then uint16
// tokens. `declared` overrides header[2]; the tokens written are `tokens` as given.
inline std::string llmc_shard_bytes(const std::vector<std::uint16_t>& tokens,
                                    std::int32_t magic = 20240520, std::int32_t version = 1,
                                    std::optional<std::int64_t> declared = std::nullopt) {
  std::vector<std::int32_t> header(256, 0);
  header[0] = magic;
  header[1] = version;
  header[2] = static_cast<std::int32_t>(declared ? *declared : static_cast<std::int64_t>(tokens.size()));
  std::string bytes;
  for (const std::int32_t value : header) {
    const auto u = static_cast<std::uint32_t>(value);
    for (int b = 0; b < 4; ++b) bytes.push_back(static_cast<char>((u >> (8 * b)) & 0xFF));
  }
  for (const std::uint16_t token : tokens) {
    bytes.push_back(static_cast<char>(token & 0xFF));
    bytes.push_back(static_cast<char>(token >> 8));
  }
  return bytes;
}

// Reference implementation of the counter hash of counter_hash.hpp, from its specification.
inline std::uint64_t reference_splitmix_output(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
inline std::uint64_t reference_mix(std::uint64_t x) {
  return reference_splitmix_output(x + 0x9E3779B97F4A7C15ULL);
}
inline std::uint64_t reference_counter_hash(std::uint64_t seed, std::uint64_t a, std::uint64_t b,
                                            std::uint64_t c) {
  std::uint64_t h = reference_mix(seed);
  h = reference_mix(h ^ reference_mix(a));
  h = reference_mix(h ^ reference_mix(b));
  return reference_mix(h ^ reference_mix(c));
}
inline std::uint64_t reference_below(std::uint64_t h, std::uint64_t n) {
  return static_cast<std::uint64_t>((static_cast<unsigned __int128>(h) * n) >> 64);
}

}  // namespace tandem::engine::data::testing
