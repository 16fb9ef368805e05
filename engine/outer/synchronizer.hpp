#pragma once
// The outer methods of `strategy.outer` in the engine: SNOO, DiLoCo, Streaming DiLoCo, NoLoCo
// (../shared/reference/OPTIMIZERS.md; schedule, fragments and groups from strategy/outer.hpp).
//
// Workers are the data-parallel replicas; a worker may itself be tensor or pipeline parallel
// (each of its ranks synchronises its own shard with the same shard of the other workers). The
// inner steps are the runner's ordinary steps, without a gradient all-reduce across workers (the
// program has none); after every inner step the trainer calls after_step(), which does what the
// schedule says at that step:
//   snoo / diloco       every H steps: Delta = global - local, averaged over the workers (fp32
//                       all-reduce), b = mu b + Delta, global -= lr (Delta + mu b), local = global;
//                       the inner optimizer's state is kept.
//   streaming-diloco    every H/F steps one fragment (strategy::fragment_range of the rank's flat
//                       parameters): its Delta's exchange starts (fp32, or fp8 / int4 encoded and
//                       reduced in fp32) and overlaps `delay` inner steps; then the Nesterov step
//                       on that fragment of global and local = (1 - mix) global + mix local.
//   noloco              every H steps: groups of group_size workers from strategy::noloco_groups
//                       (seed, outer step), the mean of the group's fast weights, delta = mu delta
//                       + lr (mean - phi), phi += delta, local = phi. No all-reduce over everyone.
// Each sync's exchange and update are recorded under the program's OuterSync /
// OuterFragmentSync / OuterGroupAverage and OuterStep op ids.
//
// Checkpoints: save_state() holds the outer parameters, the momentum and an exchange in flight
// (finished first: its mean is applied at its own step after a resume, exactly as without one).

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "comm/communicator.hpp"
#include "engine/outer/exchange.hpp"
#include "report/trace_record.hpp"
#include "strategy/program.hpp"
#include "strategy/scenario.hpp"

namespace tandem::engine::outer {

class OuterSynchronizer {
 public:
  // Collective over `world` (every rank constructs one): splits the communicator of this rank's
  // position across the workers. `initial` is this rank's initial parameters (the first global).
  // `ops` is this rank's program (for the trace ids); `now` the run's clock.
  OuterSynchronizer(const strategy::Scenario& scenario, comm::Communicator& world,
                    const strategy::ParallelLayout& layout, std::span<const float> initial,
                    const std::vector<strategy::Op>& ops, int rank_class, std::function<double()> now);
  ~OuterSynchronizer();

  const strategy::OuterSpec& spec() const { return spec_; }
  int workers() const { return workers_count_; }

  // After inner step `step` (counted from 1) with this rank's parameters (host memory, changed in
  // place when a sync applies). Collective over the workers at their sync steps.
  void after_step(std::int64_t step, std::span<float> parameters);

  // Bytes this rank has sent to other workers in outer exchanges (ring-equivalent, see
  // MeanExchange::bytes_sent).
  double bytes_sent() const;
  // The trace records of the syncs since the last call (this rank).
  std::vector<report::TraceRecord> take_records();

  std::vector<std::uint8_t> save_state();
  void load_state(std::span<const std::uint8_t> state);

 private:
  void diloco(std::span<float> parameters);
  void start_fragment(int fragment, std::int64_t apply_step, std::span<const float> parameters);
  void apply_fragment(std::span<float> parameters);
  void noloco(std::int64_t step, std::span<float> parameters);
  void record(const strategy::Op* op, double start, double end);

  strategy::OuterSpec spec_;
  std::uint64_t seed_ = 0;
  int dp_index_ = 0;
  int workers_count_ = 1;
  int rank_ = 0;
  int rank_class_ = 0;
  std::function<double()> now_;
  std::unique_ptr<comm::Communicator> workers_;  // this rank's position in every worker
  std::unique_ptr<MeanExchange> exchange_;
  std::vector<float> global_;    // theta_g (phi for NoLoCo)
  std::vector<float> momentum_;  // b (delta for NoLoCo)
  std::vector<float> scratch_;
  // Streaming DiLoCo: the fragment whose exchange is in flight (or whose mean is held).
  int pending_fragment_ = -1;
  std::int64_t pending_apply_step_ = 0;
  double pending_start_ = 0;
  std::vector<float> pending_mean_;  // held mean (after a checkpoint), else empty
  double bytes_from_checkpoint_ = 0;
  double noloco_bytes_ = 0;
  const strategy::Op* exchange_op_ = nullptr;
  const strategy::Op* update_op_ = nullptr;
  std::vector<report::TraceRecord> records_;
};

}  // namespace tandem::engine::outer
