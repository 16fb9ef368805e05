#pragma once
// Block quantization of an outer exchange (Streaming DiLoCo's `strategy.outer.quantize`).
//
// Values are cut into blocks of strategy::kQuantizationBlock (256) consecutive elements; each
// block carries one fp32 scale = absmax / the format's largest value, then every value is stored
// as value / scale in the format:
//   fp8   E4M3 ("FN": 4 exponent bits, bias 7, 3 mantissa bits, subnormals, largest finite 448,
//         no infinities), round to nearest, ties to even; 1 byte per value.
//   int4  symmetric integers -7..7 (stored +8 in a nibble, low nibble first), round to nearest,
//         ties to even; half a byte per value.
//   none  raw fp32.
// Encoded layout: the block scales (fp32, ceil(n / 256) of them), then the values. Its size is
// strategy::quantized_bytes(n, q), the bytes the twin puts on the wire.
//
// Round-trip error bounds (s = the block's scale, x a value of the block, x' = decode(encode(x))):
//   fp8   |x - x'| <= max(2^-4 |x|, 2^-10 s)   (half a unit in the last place: 3 mantissa bits in
//                                                the normal range, subnormal spacing 2^-9 below 2^-6)
//   int4  |x - x'| <= s / 2 = absmax / 14
// each up to the float rounding of x / s and of the decoded value times s (relative 2^-24).

#include <cstddef>
#include <cstdint>
#include <span>

#include "strategy/outer.hpp"

namespace tandem::engine::outer {

using strategy::OuterQuantization;

// Bytes of the encoding of `count` values.
std::size_t encoded_size(std::size_t count, OuterQuantization quantization);

// `out` must hold encoded_size(values.size(), quantization) bytes.
void encode(std::span<const float> values, OuterQuantization quantization, std::span<std::uint8_t> out);
// `out` receives the count values the encoding holds (out.size() = that count).
void decode(std::span<const std::uint8_t> encoded, OuterQuantization quantization, std::span<float> out);

// One value, for tests: the E4M3 code of v (|v| saturates at 448) and the value of a code.
std::uint8_t e4m3_from_float(float value);
float e4m3_to_float(std::uint8_t code);

}  // namespace tandem::engine::outer
