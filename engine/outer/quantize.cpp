#include "engine/outer/quantize.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>

namespace tandem::engine::outer {
namespace {

constexpr std::size_t kBlock = static_cast<std::size_t>(strategy::kQuantizationBlock);
constexpr float kFp8Max = 448.0f;
constexpr float kInt4Max = 7.0f;

std::size_t blocks_of(std::size_t count) { return (count + kBlock - 1) / kBlock; }

float largest_of(OuterQuantization quantization) {
  return quantization == OuterQuantization::Fp8 ? kFp8Max : kInt4Max;
}

}  // namespace

std::uint8_t e4m3_from_float(float value) {
  std::uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  const std::uint8_t sign = static_cast<std::uint8_t>((bits >> 31) << 7);
  const float magnitude = std::fabs(value);
  if (!(magnitude < kFp8Max)) return sign | 0x7E;  // saturate (and NaN) to 448
  if (magnitude < 0x1p-6f) {
    // Subnormals: multiples of 2^-9; the code is the multiple (8 is the smallest normal, 2^-6).
    return sign | static_cast<std::uint8_t>(std::nearbyint(magnitude * 512.0f));
  }
  int exponent = static_cast<int>((bits >> 23) & 0xFF) - 127;  // -6 .. 8
  std::uint32_t mantissa = (bits & 0x7FFFFF) >> 20;
  const std::uint32_t rest = bits & 0xFFFFF;
  constexpr std::uint32_t kHalf = 0x80000;
  if (rest > kHalf || (rest == kHalf && (mantissa & 1))) {
    if (++mantissa == 8) {
      mantissa = 0;
      ++exponent;
    }
  }
  const int code = std::min(((exponent + 7) << 3) | static_cast<int>(mantissa), 0x7E);
  return sign | static_cast<std::uint8_t>(code);
}

float e4m3_to_float(std::uint8_t code) {
  const int exponent = (code >> 3) & 0xF;
  const int mantissa = code & 7;
  const float magnitude = exponent == 0 ? std::ldexp(static_cast<float>(mantissa), -9)
                                        : std::ldexp(1.0f + static_cast<float>(mantissa) / 8.0f, exponent - 7);
  return (code & 0x80) ? -magnitude : magnitude;
}

std::size_t encoded_size(std::size_t count, OuterQuantization quantization) {
  switch (quantization) {
    case OuterQuantization::None: return 4 * count;
    case OuterQuantization::Fp8: return 4 * blocks_of(count) + count;
    case OuterQuantization::Int4: return 4 * blocks_of(count) + (count + 1) / 2;
  }
  return 4 * count;
}

void encode(std::span<const float> values, OuterQuantization quantization, std::span<std::uint8_t> out) {
  const std::size_t n = values.size();
  assert(out.size() == encoded_size(n, quantization));
  if (quantization == OuterQuantization::None) {
    if (n > 0) std::memcpy(out.data(), values.data(), 4 * n);
    return;
  }
  const std::size_t blocks = blocks_of(n);
  std::uint8_t* payload = out.data() + 4 * blocks;
  if (quantization == OuterQuantization::Int4) std::fill(payload, payload + (n + 1) / 2, std::uint8_t{0});
  const float largest = largest_of(quantization);
  for (std::size_t b = 0; b < blocks; ++b) {
    const std::size_t begin = b * kBlock, end = std::min(n, begin + kBlock);
    float absmax = 0;
    for (std::size_t i = begin; i < end; ++i) absmax = std::max(absmax, std::fabs(values[i]));
    const float scale = absmax / largest;
    std::memcpy(out.data() + 4 * b, &scale, 4);
    for (std::size_t i = begin; i < end; ++i) {
      const float scaled = scale > 0 ? values[i] / scale : 0.0f;
      if (quantization == OuterQuantization::Fp8) {
        payload[i] = e4m3_from_float(scaled);
      } else {
        const float level = std::clamp(std::nearbyint(scaled), -kInt4Max, kInt4Max);
        const auto nibble = static_cast<std::uint8_t>(static_cast<int>(level) + 8);
        payload[i / 2] |= static_cast<std::uint8_t>(i % 2 == 0 ? nibble : nibble << 4);
      }
    }
  }
}

void decode(std::span<const std::uint8_t> encoded, OuterQuantization quantization, std::span<float> out) {
  const std::size_t n = out.size();
  assert(encoded.size() == encoded_size(n, quantization));
  if (quantization == OuterQuantization::None) {
    if (n > 0) std::memcpy(out.data(), encoded.data(), 4 * n);
    return;
  }
  const std::size_t blocks = blocks_of(n);
  const std::uint8_t* payload = encoded.data() + 4 * blocks;
  for (std::size_t b = 0; b < blocks; ++b) {
    float scale = 0;
    std::memcpy(&scale, encoded.data() + 4 * b, 4);
    const std::size_t begin = b * kBlock, end = std::min(n, begin + kBlock);
    for (std::size_t i = begin; i < end; ++i) {
      if (quantization == OuterQuantization::Fp8) {
        out[i] = e4m3_to_float(payload[i]) * scale;
      } else {
        const int nibble = i % 2 == 0 ? (payload[i / 2] & 0xF) : (payload[i / 2] >> 4);
        out[i] = static_cast<float>(nibble - 8) * scale;
      }
    }
  }
}

}  // namespace tandem::engine::outer
