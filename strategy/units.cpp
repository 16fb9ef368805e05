#include "strategy/units.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <utility>
#include <vector>

namespace tandem::strategy {
namespace {

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// Splits "25MB" into 25 and "MB". Returns false when there is no leading number.
bool split_number(std::string_view text, double& number, std::string_view& unit) {
  text = trim(text);
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, number, std::chars_format::general);
  if (ec != std::errc() || ptr == begin) return false;
  unit = trim(std::string_view(ptr, static_cast<std::size_t>(end - ptr)));
  return std::isfinite(number);
}

struct UnitScale {
  std::string_view name;
  double scale;
};

double lookup(std::string_view text, std::string_view unit, const UnitScale* table,
              std::size_t size, const char* expected, double number) {
  for (std::size_t i = 0; i < size; ++i) {
    if (table[i].name == unit) return number * table[i].scale;
  }
  throw UnitError(std::string("'") + std::string(text) + "' is not " + expected);
}

constexpr double kKi = 1024.0;
constexpr std::array<UnitScale, 10> kByteUnits{{
    {"B", 1.0},
    {"kB", 1e3},
    {"KB", 1e3},
    {"MB", 1e6},
    {"GB", 1e9},
    {"TB", 1e12},
    {"KiB", kKi},
    {"MiB", kKi * kKi},
    {"GiB", kKi * kKi * kKi},
    {"TiB", kKi * kKi * kKi * kKi},
}};

constexpr std::array<UnitScale, 16> kBandwidthUnits{{
    {"B/s", 1.0},       {"kB/s", 1e3},         {"MB/s", 1e6},          {"GB/s", 1e9},
    {"TB/s", 1e12},     {"GiB/s", kKi * kKi * kKi}, {"MiB/s", kKi * kKi}, {"bps", 1.0 / 8},
    {"kbps", 1e3 / 8},  {"Mbps", 1e6 / 8},     {"Gbps", 1e9 / 8},      {"Tbps", 1e12 / 8},
    {"Kb/s", 1e3 / 8},  {"Mb/s", 1e6 / 8},     {"Gb/s", 1e9 / 8},      {"Tb/s", 1e12 / 8},
}};

constexpr std::array<UnitScale, 4> kDurationUnits{{
    {"ns", 1e-9},
    {"us", 1e-6},
    {"ms", 1e-3},
    {"s", 1.0},
}};

constexpr std::array<UnitScale, 6> kFlopUnits{{
    {"FLOP/s", 1.0},
    {"kFLOP/s", 1e3},
    {"MFLOP/s", 1e6},
    {"GFLOP/s", 1e9},
    {"TFLOP/s", 1e12},
    {"PFLOP/s", 1e15},
}};

double parse_with(std::string_view text, const UnitScale* table, std::size_t size,
                  const char* expected) {
  double number = 0;
  std::string_view unit;
  if (!split_number(text, number, unit) || unit.empty()) {
    throw UnitError(std::string("'") + std::string(text) + "' is not " + expected);
  }
  if (number < 0) {
    throw UnitError(std::string("'") + std::string(text) + "' is negative; expected " + expected);
  }
  return lookup(text, unit, table, size, expected, number);
}

std::string format_number(double value, const char* suffix) {
  char buffer[64];
  const double magnitude = std::fabs(value);
  if (magnitude >= 100 || value == std::floor(value))
    std::snprintf(buffer, sizeof buffer, "%.0f %s", value, suffix);
  else if (magnitude >= 10)
    std::snprintf(buffer, sizeof buffer, "%.1f %s", value, suffix);
  else
    std::snprintf(buffer, sizeof buffer, "%.2f %s", value, suffix);
  return buffer;
}

// Largest unit in which the value is a whole number (so the text parses back exactly).
std::string exact_text(double value, const std::vector<std::pair<const char*, double>>& units) {
  for (const auto& [name, scale] : units) {
    const double scaled = value / scale;
    if (scaled >= 1 && std::fabs(scaled - std::round(scaled)) < 1e-9 * scaled) {
      char buffer[64];
      std::snprintf(buffer, sizeof buffer, "%.0f%s", std::round(scaled), name);
      return buffer;
    }
  }
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.17g%s", value / units.back().second,
                units.back().first);
  return buffer;
}

}  // namespace

double parse_bytes(std::string_view text) {
  return parse_with(text, kByteUnits.data(), kByteUnits.size(), kBytesExpected);
}

double parse_bandwidth(std::string_view text) {
  return parse_with(text, kBandwidthUnits.data(), kBandwidthUnits.size(), kBandwidthExpected);
}

double parse_duration(std::string_view text) {
  return parse_with(text, kDurationUnits.data(), kDurationUnits.size(), kDurationExpected);
}

double parse_flop_rate(std::string_view text) {
  return parse_with(text, kFlopUnits.data(), kFlopUnits.size(), kFlopRateExpected);
}

double parse_number(std::string_view text) {
  double number = 0;
  std::string_view unit;
  if (!split_number(text, number, unit) || !unit.empty()) {
    throw UnitError(std::string("'") + std::string(text) + "' is not a number");
  }
  return number;
}

std::string format_bytes(double bytes) {
  const double magnitude = std::fabs(bytes);
  if (magnitude >= kKi * kKi * kKi * kKi) return format_number(bytes / (kKi * kKi * kKi * kKi), "TiB");
  if (magnitude >= kKi * kKi * kKi) return format_number(bytes / (kKi * kKi * kKi), "GiB");
  if (magnitude >= kKi * kKi) return format_number(bytes / (kKi * kKi), "MiB");
  if (magnitude >= kKi) return format_number(bytes / kKi, "KiB");
  return format_number(bytes, "B");
}

std::string format_bandwidth(double bytes_per_second) {
  if (bytes_per_second >= 1e12) return format_number(bytes_per_second / 1e12, "TB/s");
  if (bytes_per_second >= 1e9) return format_number(bytes_per_second / 1e9, "GB/s");
  if (bytes_per_second >= 1e6) return format_number(bytes_per_second / 1e6, "MB/s");
  return format_number(bytes_per_second, "B/s");
}

std::string format_duration(double seconds) {
  const double magnitude = std::fabs(seconds);
  if (magnitude >= 86400 * 2) return format_number(seconds / 86400, "days");
  if (magnitude >= 3600 * 2) return format_number(seconds / 3600, "h");
  if (magnitude >= 1) return format_number(seconds, "s");
  if (magnitude >= 1e-3) return format_number(seconds * 1e3, "ms");
  if (magnitude >= 1e-6) return format_number(seconds * 1e6, "us");
  return format_number(seconds * 1e9, "ns");
}

std::string bytes_to_scenario_text(double bytes) {
  if (bytes == 0) return "0B";
  return exact_text(bytes, {{"TiB", kKi * kKi * kKi * kKi},
                            {"TB", 1e12},
                            {"GiB", kKi * kKi * kKi},
                            {"GB", 1e9},
                            {"MiB", kKi * kKi},
                            {"MB", 1e6},
                            {"KiB", kKi},
                            {"kB", 1e3},
                            {"B", 1}});
}

std::string bandwidth_to_scenario_text(double bytes_per_second) {
  if (bytes_per_second == 0) return "0GB/s";
  return exact_text(bytes_per_second, {{"TB/s", 1e12},
                                       {"GB/s", 1e9},
                                       {"Gbps", 1e9 / 8},
                                       {"Mbps", 1e6 / 8},
                                       {"MB/s", 1e6},
                                       {"B/s", 1}});
}

std::string duration_to_scenario_text(double seconds) {
  if (seconds == 0) return "0s";
  return exact_text(seconds, {{"s", 1}, {"ms", 1e-3}, {"us", 1e-6}, {"ns", 1e-9}});
}

}  // namespace tandem::strategy
