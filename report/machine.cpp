#include "report/machine.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace tandem::report {
namespace {

std::string trim(std::string text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

// The value of the first "key<spaces>: value" line of a /proc file, or "".
std::string proc_field(const char* file, std::string_view key) {
  std::ifstream input(file);
  std::string line;
  while (std::getline(input, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    if (trim(line.substr(0, colon)) == key) return trim(line.substr(colon + 1));
  }
  return {};
}

// --- SHA-256 (FIPS 180-4, section 6.2) ---------------------------------------------------------

constexpr std::array<std::uint32_t, 64> kRoundConstants = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

constexpr std::uint32_t rotate_right(std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

void compress(std::array<std::uint32_t, 8>& state, const unsigned char* block) {
  std::array<std::uint32_t, 64> w{};
  for (int t = 0; t < 16; ++t) {
    w[t] = (std::uint32_t{block[4 * t]} << 24) | (std::uint32_t{block[4 * t + 1]} << 16) |
           (std::uint32_t{block[4 * t + 2]} << 8) | std::uint32_t{block[4 * t + 3]};
  }
  for (int t = 16; t < 64; ++t) {
    const std::uint32_t s0 = rotate_right(w[t - 15], 7) ^ rotate_right(w[t - 15], 18) ^ (w[t - 15] >> 3);
    const std::uint32_t s1 = rotate_right(w[t - 2], 17) ^ rotate_right(w[t - 2], 19) ^ (w[t - 2] >> 10);
    w[t] = w[t - 16] + s0 + w[t - 7] + s1;
  }
  std::uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
  std::uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
  for (int t = 0; t < 64; ++t) {
    const std::uint32_t sum1 = rotate_right(e, 6) ^ rotate_right(e, 11) ^ rotate_right(e, 25);
    const std::uint32_t choose = (e & f) ^ (~e & g);
    const std::uint32_t t1 = h + sum1 + choose + kRoundConstants[t] + w[t];
    const std::uint32_t sum0 = rotate_right(a, 2) ^ rotate_right(a, 13) ^ rotate_right(a, 22);
    const std::uint32_t majority = (a & b) ^ (a & c) ^ (b & c);
    const std::uint32_t t2 = sum0 + majority;
    h = g; g = f; f = e; e = d + t1;
    d = c; c = b; b = a; a = t1 + t2;
  }
  state[0] += a; state[1] += b; state[2] += c; state[3] += d;
  state[4] += e; state[5] += f; state[6] += g; state[7] += h;
}

}  // namespace

std::string MachineDescription::summary() const {
  char memory[32];
  std::snprintf(memory, sizeof memory, "%.1f GiB",
                static_cast<double>(memory_bytes) / (1024.0 * 1024.0 * 1024.0));
  std::ostringstream out;
  out << (hostname.empty() ? "unknown host" : hostname) << ": " << cpu_model << ", "
      << logical_cores << " logical cores, " << (memory_bytes > 0 ? memory : "unknown memory")
      << ", " << operating_system;
  return out.str();
}

MachineDescription describe_machine() {
  MachineDescription machine;
  char hostname[256] = {};
  if (::gethostname(hostname, sizeof hostname - 1) == 0) machine.hostname = hostname;

  machine.cpu_model = proc_field("/proc/cpuinfo", "model name");
  if (machine.cpu_model.empty()) machine.cpu_model = proc_field("/proc/cpuinfo", "Model");  // ARM
  if (machine.cpu_model.empty()) machine.cpu_model = "unknown CPU";

  const long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
  machine.logical_cores = cores > 0 ? static_cast<int>(cores) : 0;

  // "MemTotal:       16314148 kB"
  const std::string memory = proc_field("/proc/meminfo", "MemTotal");
  unsigned long long kibibytes = 0;
  if (std::sscanf(memory.c_str(), "%llu", &kibibytes) == 1) machine.memory_bytes = kibibytes * 1024;

  struct utsname name {};
  if (::uname(&name) == 0) {
    machine.operating_system =
        std::string(name.sysname) + " " + name.release + " " + name.machine;
  } else {
    machine.operating_system = "unknown OS";
  }
  return machine;
}

std::string sha256_hex(std::string_view bytes) {
  std::array<std::uint32_t, 8> state = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t full_blocks = bytes.size() / 64;
  for (std::size_t i = 0; i < full_blocks; ++i) compress(state, data + 64 * i);

  // Padding: 0x80, zeros, then the message length in bits as a 64-bit big-endian number.
  std::array<unsigned char, 128> tail{};
  const std::size_t rest = bytes.size() - 64 * full_blocks;
  for (std::size_t i = 0; i < rest; ++i) tail[i] = data[64 * full_blocks + i];
  tail[rest] = 0x80;
  const std::size_t tail_size = rest + 1 + 8 <= 64 ? 64 : 128;
  const std::uint64_t bit_length = static_cast<std::uint64_t>(bytes.size()) * 8;
  for (int i = 0; i < 8; ++i) {
    tail[tail_size - 1 - i] = static_cast<unsigned char>(bit_length >> (8 * i));
  }
  compress(state, tail.data());
  if (tail_size == 128) compress(state, tail.data() + 64);

  std::string hex;
  hex.reserve(64);
  char word[9];
  for (const std::uint32_t value : state) {
    std::snprintf(word, sizeof word, "%08x", value);
    hex += word;
  }
  return hex;
}

}  // namespace tandem::report
