#pragma once
// The data behind the timeline, without Qt: a trace's records split into lanes (one per rank
// and stream, ordered by rank then stream), each lane's ops sorted by start with the running
// maximum of their ends, so the view finds what is visible in a time window by binary search
// and never walks ops off screen.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "report/trace_record.hpp"

namespace tandem::gui {

struct TimelineLane {
  int rank = 0;
  int rank_class = 0;
  strategy::Stream stream = strategy::Stream::Compute;
  std::vector<std::uint32_t> ops;  // indices into the records, sorted by start
  std::vector<double> max_end_s;   // max_end_s[i] = max end of ops[0..i]
  double busy_s = 0;               // summed duration of the lane's ops
};

class TimelineModel {
 public:
  using Records = std::vector<report::TraceRecord>;

  TimelineModel() = default;
  explicit TimelineModel(std::shared_ptr<const Records> records);

  bool empty() const { return lanes_.empty(); }
  const std::vector<TimelineLane>& lanes() const { return lanes_; }
  const report::TraceRecord& record(std::uint32_t index) const { return (*records_)[index]; }
  std::size_t recordCount() const { return records_ ? records_->size() : 0; }
  std::size_t opCount() const { return op_count_; }  // records drawn (markers left out)
  double beginS() const { return begin_s_; }
  double endS() const { return end_s_; }

  // Position in lane.ops of the first op that ends at or after t.
  std::size_t firstEndingAtOrAfter(const TimelineLane& lane, double t) const;
  // Position in lane.ops of the first op that starts after t.
  std::size_t firstStartingAfter(const TimelineLane& lane, double t) const;
  // The op of a lane under time t, or the nearest within tolerance_s.
  std::optional<std::uint32_t> opAt(std::size_t lane, double t, double tolerance_s) const;
  // The lane an op was placed in.
  std::optional<std::size_t> laneOf(std::uint32_t index) const;

 private:
  std::shared_ptr<const Records> records_;
  std::vector<TimelineLane> lanes_;
  std::vector<std::uint32_t> lane_of_record_;
  std::size_t op_count_ = 0;
  double begin_s_ = 0;
  double end_s_ = 0;
};

// "qkv-fwd L3 mb1"
std::string op_label(const report::TraceRecord& record);
// Several lines: the op, where it ran, when, how long, bytes, FLOPs and the rate achieved.
std::string op_details(const report::TraceRecord& record);

}  // namespace tandem::gui
