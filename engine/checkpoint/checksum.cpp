#include "engine/checkpoint/checksum.hpp"

#include <cinttypes>
#include <cstdio>

namespace tandem::engine::checkpoint {

namespace {
constexpr std::string_view kPrefix = "fnv1a64:";
}

std::string checksum_text(std::uint64_t checksum) {
  char digits[17];
  std::snprintf(digits, sizeof digits, "%016" PRIx64, checksum);
  return std::string(kPrefix) + digits;
}

bool parse_checksum_text(std::string_view text, std::uint64_t& checksum) {
  if (text.size() != kPrefix.size() + 16 || text.substr(0, kPrefix.size()) != kPrefix) return false;
  std::uint64_t value = 0;
  for (const char c : text.substr(kPrefix.size())) {
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else {
      return false;
    }
    value = value * 16 + static_cast<std::uint64_t>(digit);
  }
  checksum = value;
  return true;
}

}  // namespace tandem::engine::checkpoint
