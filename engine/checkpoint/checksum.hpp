#pragma once
// FNV-1a 64 (offset basis 0xcbf29ce484222325 = 14695981039346656037, prime 0x100000001b3), fed in
// pieces: the checksum of every checkpoint section, shard and manifest (streamed, so a multi-GiB
// shard is never held twice).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tandem::engine::checkpoint {

class Fnv1a64 {
 public:
  static constexpr std::uint64_t kOffsetBasis = 0xcbf29ce484222325ULL;
  static constexpr std::uint64_t kPrime = 0x100000001b3ULL;

  void update(const void* data, std::size_t size) {
    const auto* bytes = static_cast<const unsigned char*>(data);
    std::uint64_t hash = hash_;
    for (std::size_t i = 0; i < size; ++i) {
      hash ^= bytes[i];
      hash *= kPrime;
    }
    hash_ = hash;
  }
  void update(std::string_view bytes) { update(bytes.data(), bytes.size()); }
  std::uint64_t value() const { return hash_; }

 private:
  std::uint64_t hash_ = kOffsetBasis;
};

inline std::uint64_t fnv1a64(const void* data, std::size_t size) {
  Fnv1a64 hash;
  hash.update(data, size);
  return hash.value();
}

// "fnv1a64:" followed by 16 lower-case hex digits (how the manifest writes a checksum).
std::string checksum_text(std::uint64_t checksum);
// The inverse; false when `text` is not of that form.
bool parse_checksum_text(std::string_view text, std::uint64_t& checksum);

}  // namespace tandem::engine::checkpoint
