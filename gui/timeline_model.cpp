#include "gui/timeline_model.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <sstream>

#include "strategy/units.hpp"

namespace tandem::gui {
namespace {

bool is_marker(const report::TraceRecord& record) {
  return record.code == strategy::OpCode::StepBegin || record.code == strategy::OpCode::StepEnd;
}

}  // namespace

TimelineModel::TimelineModel(std::shared_ptr<const Records> records) : records_(std::move(records)) {
  if (!records_ || records_->empty()) return;
  const Records& all = *records_;
  std::map<std::pair<int, int>, std::size_t> lane_index;  // (rank, stream) -> lane
  for (const auto& record : all) {
    if (is_marker(record)) continue;
    lane_index.emplace(std::make_pair(record.rank, static_cast<int>(record.stream)), 0);
  }
  lanes_.reserve(lane_index.size());
  for (auto& [key, index] : lane_index) {
    index = lanes_.size();
    TimelineLane lane;
    lane.rank = key.first;
    lane.stream = static_cast<strategy::Stream>(key.second);
    lanes_.push_back(std::move(lane));
  }
  lane_of_record_.assign(all.size(), std::numeric_limits<std::uint32_t>::max());
  begin_s_ = std::numeric_limits<double>::infinity();
  end_s_ = -std::numeric_limits<double>::infinity();
  for (std::uint32_t i = 0; i < all.size(); ++i) {
    const auto& record = all[i];
    if (is_marker(record)) continue;
    const std::size_t lane = lane_index.at({record.rank, static_cast<int>(record.stream)});
    lanes_[lane].ops.push_back(i);
    lanes_[lane].rank_class = record.rank_class;
    lane_of_record_[i] = static_cast<std::uint32_t>(lane);
    begin_s_ = std::min(begin_s_, record.start_s);
    end_s_ = std::max(end_s_, record.end_s);
    ++op_count_;
  }
  if (op_count_ == 0) {
    begin_s_ = end_s_ = 0;
    return;
  }
  for (TimelineLane& lane : lanes_) {
    std::stable_sort(lane.ops.begin(), lane.ops.end(), [&all](std::uint32_t a, std::uint32_t b) {
      return all[a].start_s < all[b].start_s;
    });
    lane.max_end_s.resize(lane.ops.size());
    double running = -std::numeric_limits<double>::infinity();
    for (std::size_t k = 0; k < lane.ops.size(); ++k) {
      const auto& record = all[lane.ops[k]];
      running = std::max(running, record.end_s);
      lane.max_end_s[k] = running;
      lane.busy_s += record.end_s - record.start_s;
    }
  }
}

std::size_t TimelineModel::firstEndingAtOrAfter(const TimelineLane& lane, double t) const {
  return static_cast<std::size_t>(
      std::lower_bound(lane.max_end_s.begin(), lane.max_end_s.end(), t) - lane.max_end_s.begin());
}

std::size_t TimelineModel::firstStartingAfter(const TimelineLane& lane, double t) const {
  const Records& all = *records_;
  return static_cast<std::size_t>(
      std::upper_bound(lane.ops.begin(), lane.ops.end(), t,
                       [&all](double time, std::uint32_t index) { return time < all[index].start_s; }) -
      lane.ops.begin());
}

std::optional<std::uint32_t> TimelineModel::opAt(std::size_t lane_number, double t,
                                                 double tolerance_s) const {
  if (lane_number >= lanes_.size()) return std::nullopt;
  const TimelineLane& lane = lanes_[lane_number];
  if (lane.ops.empty()) return std::nullopt;
  // Candidates: ops that could contain t (start <= t, running max end >= t), scanning back
  // from the last op that starts at or before t, plus the next op for the tolerance.
  const std::size_t after = firstStartingAfter(lane, t);
  std::optional<std::uint32_t> best;
  double best_distance = std::numeric_limits<double>::infinity();
  double best_duration = std::numeric_limits<double>::infinity();
  auto consider = [&](std::size_t k) {
    const auto& record = (*records_)[lane.ops[k]];
    double distance = 0;
    if (t < record.start_s) distance = record.start_s - t;
    else if (t > record.end_s) distance = t - record.end_s;
    // Among ops equally close (several containing t), prefer the shortest.
    const double duration = record.end_s - record.start_s;
    if (distance < best_distance || (distance == best_distance && duration < best_duration)) {
      best_distance = distance;
      best_duration = duration;
      best = lane.ops[k];
    }
  };
  if (after < lane.ops.size()) consider(after);
  for (std::size_t k = after; k-- > 0;) {
    consider(k);
    // Earlier ops cannot reach t once the running maximum of their ends is before it.
    if (k == 0 || lane.max_end_s[k - 1] < t - tolerance_s) break;
  }
  if (best && best_distance <= tolerance_s) return best;
  return std::nullopt;
}

std::optional<std::size_t> TimelineModel::laneOf(std::uint32_t index) const {
  if (index >= lane_of_record_.size() || lane_of_record_[index] == std::numeric_limits<std::uint32_t>::max())
    return std::nullopt;
  return lane_of_record_[index];
}

std::string op_label(const report::TraceRecord& record) {
  std::ostringstream out;
  out << strategy::to_string(record.code);
  if (record.layer >= 0) out << " L" << record.layer;
  if (record.micro_batch >= 0) out << " mb" << record.micro_batch;
  return out.str();
}

std::string op_details(const report::TraceRecord& record) {
  std::ostringstream out;
  const double duration = record.end_s - record.start_s;
  out << op_label(record) << "\n"
      << "rank " << record.rank << " (class " << record.rank_class << "), "
      << strategy::to_string(record.stream) << " stream\n"
      << "op " << record.op_id << ", phase " << strategy::to_string(record.phase) << "\n"
      << "start " << strategy::format_duration(record.start_s) << ", duration "
      << strategy::format_duration(duration);
  if (record.flops > 0) {
    out << "\n" << record.flops / 1e9 << " GFLOP";
    if (duration > 0) out << " at " << record.flops / duration / 1e12 << " TFLOP/s";
  }
  if (record.bytes > 0) {
    out << "\n" << strategy::format_bytes(record.bytes);
    if (duration > 0) out << " at " << strategy::format_bandwidth(record.bytes / duration);
  }
  return out.str();
}

}  // namespace tandem::gui
