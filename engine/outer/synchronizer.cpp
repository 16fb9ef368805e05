#include "engine/outer/synchronizer.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "engine/optim/state_io.hpp"
#include "engine/outer/outer_update.hpp"
#include "strategy/outer.hpp"

namespace tandem::engine::outer {

using strategy::OpCode;
using strategy::OuterMethod;

namespace {

constexpr std::uint64_t kMagic = 0x5245544F55444E54ull;  // "TNDOUTER"
constexpr std::uint64_t kVersion = 1;

}  // namespace

OuterSynchronizer::OuterSynchronizer(const strategy::Scenario& scenario, comm::Communicator& world,
                                     const strategy::ParallelLayout& layout, std::span<const float> initial,
                                     const std::vector<strategy::Op>& ops, int rank_class, std::function<double()> now)
    : spec_(scenario.strategy->outer),
      seed_(scenario.training.seed),
      rank_(world.rank()),
      rank_class_(rank_class),
      now_(std::move(now)) {
  const strategy::RankCoordinates c = layout.coordinates(world.rank());
  dp_index_ = c.dp;
  workers_count_ = layout.dp();
  // The same position (tp, cp, pp) in every worker, ordered by worker.
  const int position = c.tp + layout.tp() * (c.cp + layout.cp() * c.pp);
  workers_ = world.split(position, c.dp);
  if (workers_ == nullptr || workers_->size() != workers_count_)
    throw std::logic_error("outer: the workers' communicator does not have dp ranks");
  exchange_ = std::make_unique<MeanExchange>(*workers_, spec_.method == OuterMethod::StreamingDiLoCo
                                                            ? spec_.quantize
                                                            : strategy::OuterQuantization::None);
  global_.assign(initial.begin(), initial.end());
  momentum_.assign(initial.size(), 0.0f);
  for (const strategy::Op& op : ops) {
    if (op.code == OpCode::OuterSync || op.code == OpCode::OuterFragmentSync || op.code == OpCode::OuterGroupAverage)
      exchange_op_ = &op;
    if (op.code == OpCode::OuterStep) update_op_ = &op;
  }
}

OuterSynchronizer::~OuterSynchronizer() = default;

double OuterSynchronizer::bytes_sent() const {
  return bytes_from_checkpoint_ + exchange_->bytes_sent() + noloco_bytes_;
}

std::vector<report::TraceRecord> OuterSynchronizer::take_records() {
  std::vector<report::TraceRecord> out;
  out.swap(records_);
  return out;
}

void OuterSynchronizer::record(const strategy::Op* op, double start, double end) {
  if (op != nullptr) records_.push_back(report::record_for(*op, rank_, rank_class_, start, end));
}

void OuterSynchronizer::after_step(std::int64_t step, std::span<float> parameters) {
  if (!spec_.enabled()) return;
  if (parameters.size() != global_.size())
    throw std::logic_error("outer: " + std::to_string(parameters.size()) + " parameters, expected " +
                           std::to_string(global_.size()));
  switch (spec_.method) {
    case OuterMethod::None:
      return;
    case OuterMethod::Snoo:
    case OuterMethod::DiLoCo:
      if (step % spec_.inner_steps == 0) diloco(parameters);
      return;
    case OuterMethod::StreamingDiLoCo: {
      if (exchange_->active()) exchange_->progress();  // let the transfer advance between steps
      if (pending_fragment_ >= 0 && pending_apply_step_ == step) apply_fragment(parameters);
      const int fragment = strategy::fragment_starting_after(spec_, step);
      if (fragment >= 0) {
        start_fragment(fragment, step + spec_.delay, parameters);
        if (spec_.delay == 0) apply_fragment(parameters);
      }
      return;
    }
    case OuterMethod::NoLoCo:
      if (step % spec_.inner_steps == 0) noloco(step, parameters);
      return;
  }
}

void OuterSynchronizer::diloco(std::span<float> parameters) {
  const double start = now_();
  if (workers_count_ == 1) {
    nesterov_outer_step_local(global_, momentum_, parameters, spec_.outer_lr, spec_.momentum);
  } else {
    scratch_.resize(global_.size());
    for (std::size_t i = 0; i < global_.size(); ++i) scratch_[i] = global_[i] - parameters[i];
    exchange_->start(scratch_);
    const std::span<const float> mean = exchange_->finish();
    const double exchanged = now_();
    record(exchange_op_, start, exchanged);
    nesterov_outer_step(global_, momentum_, mean, spec_.outer_lr, spec_.momentum);
    std::copy(global_.begin(), global_.end(), parameters.begin());
    record(update_op_, exchanged, now_());
    return;
  }
  std::copy(global_.begin(), global_.end(), parameters.begin());
  record(update_op_, start, now_());
}

void OuterSynchronizer::start_fragment(int fragment, std::int64_t apply_step, std::span<const float> parameters) {
  if (pending_fragment_ >= 0)
    throw std::logic_error("outer: fragment " + std::to_string(fragment) + " starts while fragment " +
                           std::to_string(pending_fragment_) + " is still in flight");
  const auto [begin, end] = strategy::fragment_range(static_cast<std::int64_t>(global_.size()), spec_.fragments, fragment);
  scratch_.resize(static_cast<std::size_t>(end - begin));
  for (std::int64_t i = begin; i < end; ++i)
    scratch_[static_cast<std::size_t>(i - begin)] = global_[static_cast<std::size_t>(i)] - parameters[static_cast<std::size_t>(i)];
  pending_start_ = now_();
  exchange_->start(scratch_);
  pending_fragment_ = fragment;
  pending_apply_step_ = apply_step;
  pending_mean_.clear();
}

void OuterSynchronizer::apply_fragment(std::span<float> parameters) {
  const auto [begin, end] =
      strategy::fragment_range(static_cast<std::int64_t>(global_.size()), spec_.fragments, pending_fragment_);
  std::span<const float> mean = pending_mean_;
  if (pending_mean_.empty()) mean = exchange_->finish();
  const double exchanged = now_();
  record(exchange_op_, pending_start_, exchanged);
  const auto b = static_cast<std::size_t>(begin);
  const auto n = static_cast<std::size_t>(end - begin);
  std::span<float> global(global_.data() + b, n);
  nesterov_outer_step(global, std::span<float>(momentum_.data() + b, n), mean, spec_.outer_lr, spec_.momentum);
  mix_into_local(parameters.subspan(b, n), global, spec_.mix);
  record(update_op_, exchanged, now_());
  pending_fragment_ = -1;
  pending_mean_.clear();
}

void OuterSynchronizer::noloco(std::int64_t step, std::span<float> parameters) {
  const double start = now_();
  const std::int64_t outer_step = step / spec_.inner_steps - 1;
  const std::vector<int> groups = strategy::noloco_groups(seed_, outer_step, workers_count_, spec_.group_size);
  std::unique_ptr<comm::Communicator> group = workers_->split(groups[static_cast<std::size_t>(dp_index_)], dp_index_);
  MeanExchange exchange(*group, strategy::OuterQuantization::None);
  exchange.start(parameters);
  const std::span<const float> mean = exchange.finish();
  noloco_bytes_ += exchange.bytes_sent();
  const double exchanged = now_();
  record(exchange_op_, start, exchanged);
  noloco_outer_step(global_, momentum_, mean, spec_.outer_lr, spec_.momentum);
  std::copy(global_.begin(), global_.end(), parameters.begin());
  record(update_op_, exchanged, now_());
}

std::vector<std::uint8_t> OuterSynchronizer::save_state() {
  if (pending_fragment_ >= 0 && pending_mean_.empty()) {
    const std::span<const float> mean = exchange_->finish();
    pending_mean_.assign(mean.begin(), mean.end());
  }
  std::vector<std::uint8_t> out;
  optim::StateWriter writer(out);
  writer.u64(kMagic);
  writer.u64(kVersion);
  writer.string(std::string(strategy::to_string(spec_.method)));
  writer.floats(global_);
  writer.floats(momentum_);
  writer.i64(pending_fragment_);
  writer.i64(pending_apply_step_);
  writer.floats(pending_mean_);
  writer.f64(bytes_sent());
  return out;
}

void OuterSynchronizer::load_state(std::span<const std::uint8_t> state) {
  optim::StateReader reader(state);
  if (reader.u64() != kMagic || reader.u64() != kVersion)
    throw std::runtime_error("outer state: not an outer-method state (or another version)");
  const std::string method = reader.string();
  if (method != strategy::to_string(spec_.method))
    throw std::runtime_error("outer state: saved by strategy.outer.method " + method + ", this run uses " +
                             std::string(strategy::to_string(spec_.method)));
  std::vector<float> global = reader.floats();
  std::vector<float> momentum = reader.floats();
  if (global.size() != global_.size() || momentum.size() != momentum_.size())
    throw std::runtime_error("outer state: holds " + std::to_string(global.size()) + " parameters, this rank has " +
                             std::to_string(global_.size()));
  global_ = std::move(global);
  momentum_ = std::move(momentum);
  pending_fragment_ = static_cast<int>(reader.i64());
  pending_apply_step_ = reader.i64();
  pending_mean_ = reader.floats();
  bytes_from_checkpoint_ = reader.f64() - exchange_->bytes_sent() - noloco_bytes_;
  pending_start_ = now_();
}

}  // namespace tandem::engine::outer
