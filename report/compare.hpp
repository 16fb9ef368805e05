#pragma once
// Run-to-run comparison: what changed between two scenarios, how two results differ, and how a
// prediction (the twin's trace) lines up with a measurement (the engine's), op by op.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "report/trace_record.hpp"

namespace tandem::report {

// Input that is not valid YAML/JSON, or traces that come from different programs.
class CompareError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// --- scenarios ---

// One key whose value differs. Keys are dotted paths through nested maps ("strategy.tp");
// sequences are compared whole and shown in YAML flow style ("[1, 2]"). nullopt: the key is
// absent on that side. Scalars are equal when their text is, or when both are numbers of equal
// value ("8" and "8.0").
struct ScenarioDifference {
  std::string key;
  std::optional<std::string> value_a;
  std::optional<std::string> value_b;
};

// The differences, sorted by key. Throws CompareError naming the side ("scenario A") and the
// line for text that is not valid YAML.
std::vector<ScenarioDifference> diff_scenarios(std::string_view yaml_a, std::string_view yaml_b);

// --- results ---

// One numeric field of two result JSON documents. Keys are dotted paths through objects, with
// [i] for array elements ("memory.per_stage[2].peak_bytes"); booleans count as 0/1.
struct ResultDifference {
  std::string key;
  std::optional<double> value_a;   // nullopt: absent (or not a number) on that side
  std::optional<double> value_b;
  std::optional<double> absolute;  // b - a, when both are present
  std::optional<double> relative;  // (b - a) / |a|, when both are present and a != 0
  bool changed() const { return !value_a || !value_b || *value_a != *value_b; }
};

// Every numeric field present on either side, sorted by key (unchanged ones included: filter
// with changed()). Throws CompareError for text that is not valid JSON.
std::vector<ResultDifference> diff_results(std::string_view json_a, std::string_view json_b);

// --- traces ---

enum class AlignBy : std::uint8_t {
  RankClass,  // one entry per (rank class, op id): the twin folds ranks into classes
  Rank,       // one entry per (rank, op id): flat runs at validation scale
};

// How the durations of the records that share a key (several ranks of a class, several engine
// steps) are combined into one number.
enum class Aggregate : std::uint8_t { Median, Mean, Min };

struct OpAlignment {
  int group = 0;  // rank class or rank, per AlignBy
  std::uint32_t op_id = 0;
  strategy::OpCode code = strategy::OpCode::StepBegin;
  strategy::Stream stream = strategy::Stream::Compute;
  strategy::Phase phase = strategy::Phase::None;
  std::int32_t layer = -1;
  std::int32_t micro_batch = -1;
  double predicted_s = 0;
  double measured_s = 0;
  std::size_t predicted_samples = 0;  // records aggregated on each side
  std::size_t measured_samples = 0;
  // (predicted - measured) / measured: +0.25 means the twin says 25 % slower than reality.
  // nullopt when the measured duration is 0 (markers).
  std::optional<double> relative_error;
};

struct OpKey {
  int group = 0;
  std::uint32_t op_id = 0;
  friend bool operator==(const OpKey&, const OpKey&) = default;
  friend auto operator<=>(const OpKey&, const OpKey&) = default;
};

struct TraceAlignment {
  std::vector<OpAlignment> ops;          // sorted by (group, op_id)
  std::vector<OpKey> only_predicted;     // in the prediction but never measured
  std::vector<OpKey> only_measured;
};

struct AlignOptions {
  AlignBy by = AlignBy::RankClass;
  Aggregate aggregate = Aggregate::Median;
};

// Pairs the records of a prediction and a measurement by (rank class or rank, op id). Throws
// CompareError when the same key has different op codes on the two sides (the traces come from
// different programs).
TraceAlignment align_traces(std::span<const TraceRecord> predicted,
                            std::span<const TraceRecord> measured,
                            const AlignOptions& options = {});

// The n ops with the largest |relative error|, worst first; ops measured shorter than
// min_measured_s (and markers, whose relative error is undefined) are skipped. Ties keep
// (group, op_id) order.
std::vector<OpAlignment> worst_ops(const TraceAlignment& alignment, std::size_t n,
                                   double min_measured_s = 0);

}  // namespace tandem::report
