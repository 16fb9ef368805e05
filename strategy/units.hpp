#pragma once
// Strict parsing and formatting of the units scenario files use (DESIGN.md "Units").
//   bytes:      B, kB/MB/GB/TB (10^3 steps), KiB/MiB/GiB/TiB (2^10 steps)        "25MB", "80GiB"
//   bandwidth:  B/s with the same prefixes ("300GB/s"), bits: bps or b/s ("200Gbps", "200Gb/s")
//   durations:  ns, us, ms, s                                                     "1us", "30ms"
//   FLOP rates: FLOP/s with k/M/G/T/P prefixes                                    "312TFLOP/s"
// A value without its unit is an error: the unit is part of the contract.

#include <stdexcept>
#include <string>
#include <string_view>

namespace tandem::strategy {

// Thrown with a message saying what was expected, e.g. "expected bytes like 25MB or 64MiB".
class UnitError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

double parse_bytes(std::string_view text);      // -> bytes
double parse_bandwidth(std::string_view text);  // -> bytes per second
double parse_duration(std::string_view text);   // -> seconds
double parse_flop_rate(std::string_view text);  // -> FLOP per second
// A plain number ("300e9", "0.1", "1234"); no unit allowed.
double parse_number(std::string_view text);

inline constexpr const char* kBytesExpected = "bytes with a unit, e.g. 25MB, 64MiB, 1GiB, 4096B";
inline constexpr const char* kBandwidthExpected =
    "a bandwidth with a unit, e.g. 300GB/s (bytes) or 200Gbps / 200Gb/s (bits)";
inline constexpr const char* kDurationExpected = "a duration with a unit, e.g. 1us, 30ms, 2s";
inline constexpr const char* kFlopRateExpected = "a FLOP rate with a unit, e.g. 312TFLOP/s";

// Human-readable forms: "25.0 MB", "1.00 GiB" (binary when exact), "300 GB/s", "2.5 ms".
std::string format_bytes(double bytes);
std::string format_bandwidth(double bytes_per_second);
std::string format_duration(double seconds);
// Canonical scenario spellings that parse back to the same value: "26214400B" -> "25MiB".
std::string bytes_to_scenario_text(double bytes);
std::string bandwidth_to_scenario_text(double bytes_per_second);
std::string duration_to_scenario_text(double seconds);

}  // namespace tandem::strategy
