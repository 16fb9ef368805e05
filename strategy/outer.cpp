#include "strategy/outer.hpp"

#include <cassert>
#include <cmath>
#include <numeric>

namespace tandem::strategy {

int OuterSpec::sync_period() const {
  switch (method) {
    case OuterMethod::None: return 1;
    case OuterMethod::StreamingDiLoCo: return inner_steps / fragments;
    default: return inner_steps;
  }
}

OuterDefaults outer_defaults(OuterMethod method) {
  switch (method) {
    case OuterMethod::None: return {1, 1.0, 0.0};
    case OuterMethod::Snoo: return {28, 0.68, 0.37};
    case OuterMethod::DiLoCo: return {500, 0.7, 0.9};
    case OuterMethod::StreamingDiLoCo: return {100, 0.7, 0.9};
    case OuterMethod::NoLoCo: return {50, 0.7, 0.5};
  }
  return {};
}

std::string_view to_string(OuterMethod method) {
  switch (method) {
    case OuterMethod::None: return "none";
    case OuterMethod::Snoo: return "snoo";
    case OuterMethod::DiLoCo: return "diloco";
    case OuterMethod::StreamingDiLoCo: return "streaming-diloco";
    case OuterMethod::NoLoCo: return "noloco";
  }
  return "?";
}

std::string_view to_string(OuterQuantization quantization) {
  switch (quantization) {
    case OuterQuantization::None: return "none";
    case OuterQuantization::Fp8: return "fp8";
    case OuterQuantization::Int4: return "int4";
  }
  return "?";
}

double quantized_bytes(double elements, OuterQuantization quantization) {
  const double scales = 4.0 * std::ceil(elements / kQuantizationBlock);
  switch (quantization) {
    case OuterQuantization::None: return 4.0 * elements;
    case OuterQuantization::Fp8: return elements + scales;
    case OuterQuantization::Int4: return std::ceil(elements / 2) + scales;
  }
  return 4.0 * elements;
}

std::pair<std::int64_t, std::int64_t> fragment_range(std::int64_t elements, int fragments, int fragment) {
  assert(fragments >= 1 && fragment >= 0 && fragment < fragments);
  return {elements * fragment / fragments, elements * (fragment + 1) / fragments};
}

int fragment_starting_after(const OuterSpec& outer, std::int64_t step) {
  if (!outer.enabled() || step < 1) return -1;
  const int period = outer.sync_period();
  if (period < 1 || step % period != 0) return -1;
  if (outer.method != OuterMethod::StreamingDiLoCo) return 0;
  return static_cast<int>((step / period - 1) % outer.fragments);
}

namespace {

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

std::vector<int> noloco_groups(std::uint64_t seed, std::int64_t outer_step, int workers, int group_size) {
  assert(workers >= 1 && group_size >= 1 && workers % group_size == 0);
  std::vector<int> order(static_cast<std::size_t>(workers));
  std::iota(order.begin(), order.end(), 0);
  std::uint64_t state = seed ^ (0xD1B54A32D192ED03ull * static_cast<std::uint64_t>(outer_step + 1));
  splitmix64(state);
  // Fisher-Yates; the bound is reduced with a multiply-shift (no modulo bias worth noting for
  // worker counts far below 2^32, and identical on every platform).
  for (int i = workers - 1; i > 0; --i) {
    const std::uint64_t r = splitmix64(state) >> 32;
    const int j = static_cast<int>((r * static_cast<std::uint64_t>(i + 1)) >> 32);
    std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
  }
  std::vector<int> group(static_cast<std::size_t>(workers), 0);
  for (int position = 0; position < workers; ++position)
    group[static_cast<std::size_t>(order[static_cast<std::size_t>(position)])] = position / group_size;
  return group;
}

}  // namespace tandem::strategy
