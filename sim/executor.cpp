#include "sim/executor.hpp"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <limits>
#include <set>
#include <stdexcept>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include <simgrid/s4u.hpp>
#include <spdlog/spdlog.h>

#include "sim/collective_folding.hpp"
#include "sim/compute_cost.hpp"
#include "sim/platform.hpp"
#include "sim/topology.hpp"
#include "strategy/collective_plan.hpp"
#include "strategy/pipeline_schedule.hpp"

namespace tandem::sim {
namespace {

namespace s4u = simgrid::s4u;
using strategy::CollectiveAlgorithm;
using strategy::CollectiveKind;
using strategy::GroupKind;
using strategy::Op;
using strategy::OpCode;
using strategy::OpType;
using strategy::PeerKind;
using strategy::Stream;
using strategy::Transfer;

constexpr std::uint8_t kPending = 0;
constexpr std::uint8_t kRunning = 1;
constexpr std::uint8_t kDone = 2;

std::uint64_t bits_of(double value) {
  std::uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

// Everything the executor needs to run one collective (or ring-attention exchange) op.
struct CollectivePrep {
  int category = 0;                // traffic category (exclusivity analysis)
  std::vector<int> participants;   // actor indices, ascending
  CollectiveKind kind = CollectiveKind::AllReduce;
  CollectiveAlgorithm algorithm = CollectiveAlgorithm::Ring;
  FoldedPlan plan;
  double bytes = 0;
  std::vector<int> footprint;      // every link its folded flows cross
};

// The flows of one pipeline send (the representative's and, folded, its node's class mates').
struct SendPrep {
  int category = 0;
  std::vector<Transfer> transfers;
  double min_duration_s = 0;  // node.p2p_bandwidth: its longest stream between two nodes over the cap
};

struct Instance {
  const CollectivePrep* prep = nullptr;
  std::vector<std::pair<int, std::uint32_t>> arrivals;  // (actor, op id)
  double start = 0;
  bool clean_start = false;         // its links carried nothing else when it started
  std::uint64_t generation = 0;     // sum of its links' acquisition counters after it acquired them
  bool replay = false;
};

struct MessageState {
  bool arrived = false;
  double transfer_start = 0;
  double arrival = 0;
  std::uint32_t waiting_op = UINT32_MAX;  // receiver op blocked on it
  // cpu backend: a send posted before its receive, waiting for it (rendezvous)
  std::uint32_t deferred_send = UINT32_MAX;
  int sender_actor = -1;
};

struct Note {
  std::uint32_t op = 0;
  bool receiver_ready = false;  // to a sender: the receive of its deferred send is posted
};

constexpr bool is_pipeline_send(OpCode code) {
  return code == OpCode::PpSendActivation || code == OpCode::PpSendGradient;
}
constexpr bool is_pipeline_transfer(OpCode code) {
  return is_pipeline_send(code) || code == OpCode::PpRecvActivation || code == OpCode::PpRecvGradient;
}

// Open MPI's shared-memory transport sends a message up to this size eagerly (btl_vader's
// eager limit); a larger one goes by rendezvous.
constexpr double kMpiEagerLimitBytes = 4096;

class Executor;

// One simulated rank: its program, timings and event loop.
class RankActor {
 public:
  RankActor(Executor& executor, int index, int rank, int class_id, const std::vector<Op>& ops)
      : executor_(executor), index_(index), rank_(rank), class_id_(class_id), ops_(ops) {}

  void prepare(const ComputeCostModel& cost);
  void run();

  int index() const { return index_; }
  int rank() const { return rank_; }
  int class_id() const { return class_id_; }
  const std::vector<Op>& ops() const { return ops_; }
  double start(std::uint32_t op) const { return start_[op]; }
  double end(std::uint32_t op) const { return end_[op]; }
  double duration(std::uint32_t op) const { return duration_[op]; }
  double transfer_start(std::uint32_t op) const { return transfer_start_[op]; }
  bool finished() const { return finished_; }
  std::uint32_t step_end_op() const { return step_end_; }
  s4u::Mailbox* mailbox() const { return mailbox_; }

  std::vector<const CollectivePrep*> collective_prep;  // per op
  std::vector<const SendPrep*> send_prep;              // per op
  std::vector<int> occurrence;                          // per op: index among ops with the same prep
  std::vector<std::uint64_t> message_key;               // per send/recv op
  std::vector<int> receiver_actor;                      // per send op

  void complete_from_note(std::uint32_t op);
  void receiver_ready(std::uint32_t send);

 private:
  enum class Kind : std::uint8_t { ComputeBatch, CollectiveFlow, CollectiveTail, SendFlow, SendTail, SendStart };
  struct Pending {
    Kind kind;
    std::uint32_t op = 0;
    std::size_t batch_end = 0;  // ComputeBatch: stream index past the batch
    Instance* instance = nullptr;
  };
  struct RunningCollective {
    Instance* instance = nullptr;
    std::uint32_t op = 0;
    std::size_t phase = 0;
    int outstanding = 0;
    double phase_start = 0;
  };

  bool deps_done(const Op& op) const;
  bool holds_compute(const Op& op) const;
  bool try_start(Stream stream);
  void start_compute_batch();
  void start_collective(std::uint32_t op);
  void drive(Instance* instance, std::uint32_t op);
  void start_phase(RunningCollective& running);
  void finish_collective(Instance* instance, std::uint32_t op);
  void start_send(std::uint32_t op);
  void start_send_transfer(std::uint32_t op);
  void complete_send(std::uint32_t op, double now);
  void start_recv(std::uint32_t op);
  void finish(std::uint32_t op, double end);
  void add_activity(s4u::ActivityPtr activity, Pending pending);
  void add_timer(double seconds, Pending pending);
  void handle(const Pending& pending);

  Executor& executor_;
  int index_;
  int rank_;
  int class_id_;
  const std::vector<Op>& ops_;
  std::vector<double> duration_, start_, end_, transfer_start_;
  std::vector<std::uint8_t> state_, trigger_;
  std::vector<std::vector<std::uint32_t>> stream_ops_;
  std::vector<std::size_t> head_;
  std::uint32_t step_end_ = 0;
  bool finished_ = false;
  s4u::Mailbox* mailbox_ = nullptr;
  s4u::CommPtr note_comm_;
  Note* note_ = nullptr;
  std::vector<s4u::ActivityPtr> activities_;
  std::vector<Pending> pending_;
  std::unordered_map<Instance*, RunningCollective> running_;
  std::unordered_map<std::uint32_t, int> send_outstanding_;
  std::size_t batch_begin_ = 0;
  double batch_start_time_ = 0;
  // The cpu backend's collectives advance only inside MPI calls, which its runner makes between
  // ops and while it waits (Open MPI's non-blocking collectives have no progress thread): a
  // collective starts only when the rank's compute stream is idle and holds it until it ends.
  // Measured: a TP input-gradient all-reduce posted before a weight-gradient GEMM ended after it
  // (910 us against 263 us alone). Pipeline sends do not hold it. But a send larger than the
  // eager limit posted before its receive waits for the receiver (rendezvous), and once the
  // receiver is in its receive, the data moves at the sender's next MPI call: the end of the
  // compute op it is running (measured: a PP 2 activation receive posted while the sender ran a
  // 400 us GEMM ended 13 us after that GEMM; one posted before the send ended 42 us after it).
  bool serialize_communication_ = false;
  // cpu backend: the engine runs the program in order on one thread. A pipeline send or receive
  // is posted once the compute op or pipeline send before it in the program is released, and a
  // compute op after a send waits for it: a send whose receiver waits copies its data before
  // MPI_Isend returns (a rank's next receive was posted 38 us after its 98 KB send, when that
  // send ended). A send is released when it ends, or when it returns without its receiver.
  static constexpr std::uint32_t kNoOp = UINT32_MAX;
  std::vector<std::uint32_t> posted_after_;
  std::vector<std::uint8_t> released_;
  bool computing_ = false;
  int communicating_ = 0;  // collectives of this rank in flight
};

class Executor {
 public:
  Executor(const strategy::Scenario& scenario, const ExecutorOptions& options)
      : scenario_(scenario), options_(options), topology_(scenario.cluster) {}

  ExecutionResult run();

  // Shared state the actors use (SimGrid runs actors one at a time: no locking).
  const ExecutorOptions& options() const { return options_; }
  SimPlatform& platform() { return *platform_; }
  const ClusterTopology& topology() const { return topology_; }
  std::vector<std::unique_ptr<RankActor>>& actors() { return actors_; }
  std::unordered_map<std::uint64_t, MessageState>& messages() { return messages_; }
  Instance* instance(const CollectivePrep* prep, int occurrence) {
    auto& slot = instances_[{prep, occurrence}];
    if (!slot) {
      slot = std::make_unique<Instance>();
      slot->prep = prep;
    }
    return slot.get();
  }
  double* cached_duration(const CollectivePrep* prep) {
    auto it = cache_.find(cache_key(prep));
    return it == cache_.end() ? nullptr : &it->second;
  }
  void store_duration(const CollectivePrep* prep, double seconds) { cache_.emplace(cache_key(prep), seconds); }
  void count_op_done() {
    ++ops_done_;
    if (options_.progress && ops_done_ >= next_progress_) {
      next_progress_ += std::max<std::size_t>(1, ops_total_ / 100);
      options_.progress(static_cast<double>(ops_done_) / static_cast<double>(std::max<std::size_t>(1, ops_total_)));
    }
  }
  ExecutorStatistics& statistics() { return statistics_; }

  // Link occupancy, for replaying cached collective durations only when nothing else shares
  // their links: `busy` counts current users, `acquisitions` every acquisition ever.
  bool links_idle(const std::vector<int>& links) const {
    for (int link : links)
      if (link_busy_[static_cast<std::size_t>(link)] != 0) return false;
    return true;
  }
  std::uint64_t acquire(const std::vector<int>& links) {
    std::uint64_t generation = 0;
    for (int link : links) {
      ++link_busy_[static_cast<std::size_t>(link)];
      generation += ++link_acquisitions_[static_cast<std::size_t>(link)];
    }
    return generation;
  }
  // Releases the links; true when nobody else acquired any of them since `generation`.
  bool release(const std::vector<int>& links, std::uint64_t generation) {
    std::uint64_t now = 0;
    for (int link : links) {
      --link_busy_[static_cast<std::size_t>(link)];
      now += link_acquisitions_[static_cast<std::size_t>(link)];
    }
    return now == generation;
  }
  void acquire_route(int source, int destination) {
    const Route route = topology_.route(source, destination);
    for (int i = 0; i < route.link_count; ++i) {
      ++link_busy_[static_cast<std::size_t>(route.links[i])];
      ++link_acquisitions_[static_cast<std::size_t>(route.links[i])];
    }
  }
  void release_route(int source, int destination) {
    const Route route = topology_.route(source, destination);
    for (int i = 0; i < route.link_count; ++i) --link_busy_[static_cast<std::size_t>(route.links[i])];
  }
  int actor_of_rank(int rank) const { return program_.class_of_rank[static_cast<std::size_t>(rank)]; }
  const strategy::Program& program() const { return program_; }

 private:
  std::string cache_key(const CollectivePrep* prep) const {
    return std::to_string(prep->category) + "/" + std::to_string(static_cast<int>(prep->kind)) + "/" +
           std::to_string(static_cast<int>(prep->algorithm)) + "/" + std::to_string(bits_of(prep->bytes));
  }
  void prepare_collectives();
  const CollectivePrep* prepare_collective(RankActor& actor, const Op& op);
  const SendPrep* prepare_send(RankActor& actor, const Op& op);
  int category_of(const std::string& name) {
    auto [it, inserted] = categories_.emplace(name, static_cast<int>(categories_.size()));
    return it->second;
  }
  const std::vector<std::pair<std::vector<int>, std::vector<int>>>& groups_of_kind(GroupKind kind);
  std::vector<int> classes_of(const std::vector<int>& ranks) const {
    std::vector<int> classes;
    for (int rank : ranks) classes.push_back(program_.class_of_rank[static_cast<std::size_t>(rank)]);
    std::sort(classes.begin(), classes.end());
    classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
    return classes;
  }
  int peer_of(int rank, PeerKind peer) const;
  std::uint64_t message_key(int receiver_actor, bool gradient, int micro_batch, int global_chunk, int layer,
                            int occurrence) const {
    std::uint64_t key = static_cast<std::uint64_t>(receiver_actor);
    key = key * 4 + (gradient ? 1 : 0);
    key = key * 1000003ull + static_cast<std::uint64_t>(micro_batch + 1);
    key = key * 100003ull + static_cast<std::uint64_t>(global_chunk + 1);
    key = key * 100003ull + static_cast<std::uint64_t>(layer + 1);
    key = key * 1009ull + static_cast<std::uint64_t>(occurrence);
    return key;
  }
  void compute_breakdown(ExecutionResult& result, double inner_end);
  void compute_wan_traffic(ExecutionResult& result);

  const strategy::Scenario& scenario_;
  ExecutorOptions options_;
  ClusterTopology topology_;
  strategy::Program program_;
  std::unique_ptr<SimPlatform> platform_;
  std::vector<std::unique_ptr<RankActor>> actors_;
  std::map<std::string, std::unique_ptr<CollectivePrep>> collective_preps_;
  std::map<std::string, std::unique_ptr<SendPrep>> send_preps_;
  std::map<std::string, int> categories_;
  std::map<GroupKind, std::vector<std::pair<std::vector<int>, std::vector<int>>>> groups_;  // (ranks, classes)
  std::map<std::pair<const CollectivePrep*, int>, std::unique_ptr<Instance>> instances_;
  std::unordered_map<std::string, double> cache_;
  std::unordered_map<std::uint64_t, MessageState> messages_;
  std::set<int> used_gpus_;
  std::vector<int> link_busy_;
  std::vector<std::uint64_t> link_acquisitions_;
  ExecutorStatistics statistics_;
  std::size_t ops_total_ = 0;
  std::size_t ops_done_ = 0;
  std::size_t next_progress_ = 0;
};

// ---- RankActor ------------------------------------------------------------------------------

void RankActor::prepare(const ComputeCostModel& cost) {
  const std::size_t n = ops_.size();
  duration_.assign(n, 0);
  start_.assign(n, 0);
  end_.assign(n, 0);
  transfer_start_.assign(n, 0);
  state_.assign(n, kPending);
  trigger_.assign(n, 0);
  stream_ops_.assign(strategy::kStreamCount, {});
  head_.assign(strategy::kStreamCount, 0);
  serialize_communication_ = cost.profile().backend == "cpu";
  posted_after_.assign(n, kNoOp);
  released_.assign(n, 0);
  std::uint32_t last_compute = kNoOp;
  std::uint32_t last_send = kNoOp;  // a pipeline send after last_compute
  for (const Op& op : ops_) {
    duration_[op.id] = cost.op_time(op);
    stream_ops_[static_cast<std::size_t>(op.stream)].push_back(op.id);
    if (op.code == OpCode::StepEnd) step_end_ = op.id;
    for (std::uint32_t dep : op.deps)
      if (ops_[dep].stream != op.stream) trigger_[dep] = 1;
    if (serialize_communication_) {
      if (op.type == OpType::Compute) {
        posted_after_[op.id] = last_send;
        last_compute = op.id;
        last_send = kNoOp;
      } else if (is_pipeline_transfer(op.code)) {
        posted_after_[op.id] = last_send != kNoOp ? last_send : last_compute;
        if (last_send == kNoOp && last_compute != kNoOp) trigger_[last_compute] = 1;
        if (is_pipeline_send(op.code)) last_send = op.id;
      }
    }
  }
  collective_prep.assign(n, nullptr);
  send_prep.assign(n, nullptr);
  occurrence.assign(n, 0);
  message_key.assign(n, 0);
  receiver_actor.assign(n, -1);
  mailbox_ = s4u::Mailbox::by_name("tandem-rank-" + std::to_string(index_));
}

bool RankActor::holds_compute(const Op& op) const {
  // Collectives, and send/recv pairs the program runs as collectives (context parallelism).
  return op.type == OpType::Collective || (op.type == OpType::SendRecv && collective_prep[op.id] != nullptr);
}

bool RankActor::deps_done(const Op& op) const {
  for (std::uint32_t dep : op.deps)
    if (state_[dep] != kDone) return false;
  return true;
}

void RankActor::add_activity(s4u::ActivityPtr activity, Pending pending) {
  activities_.push_back(std::move(activity));
  pending_.push_back(pending);
}

void RankActor::add_timer(double seconds, Pending pending) {
  s4u::ExecPtr exec = s4u::Exec::init();
  exec->set_host(executor_.platform().clock_host());
  exec->set_flops_amount(std::max(0.0, seconds) * SimPlatform::kClockSpeed);
  exec->start();
  add_activity(exec, pending);
}

void RankActor::finish(std::uint32_t op, double end) {
  if (state_[op] == kDone) return;
  if (serialize_communication_ && holds_compute(ops_[op])) --communicating_;
  state_[op] = kDone;
  released_[op] = 1;
  end_[op] = end;
  executor_.count_op_done();
}

bool RankActor::try_start(Stream stream) {
  auto& list = stream_ops_[static_cast<std::size_t>(stream)];
  std::size_t& head = head_[static_cast<std::size_t>(stream)];
  bool started = false;
  while (head < list.size()) {
    const std::uint32_t id = list[head];
    if (state_[id] == kDone) {
      ++head;
      continue;
    }
    if (state_[id] == kRunning) return started;
    const Op& op = ops_[id];
    if (!deps_done(op)) return started;
    if (posted_after_[id] != kNoOp && !released_[posted_after_[id]]) return started;
    if (serialize_communication_) {
      if (op.type == OpType::Compute && communicating_ > 0) return started;
      if (holds_compute(op)) {
        if (computing_) return started;
        ++communicating_;
      }
    }
    const double now = s4u::Engine::get_clock();
    start_[id] = now;
    started = true;
    switch (op.type) {
      case OpType::Marker:
        finish(id, now);
        if (op.code == OpCode::StepEnd) finished_ = true;
        ++head;
        continue;
      case OpType::Compute:
        start_compute_batch();
        return true;
      case OpType::Collective:
        state_[id] = kRunning;
        start_collective(id);
        break;
      case OpType::SendRecv:
        state_[id] = kRunning;
        if (collective_prep[id] != nullptr)
          start_collective(id);
        else if (is_pipeline_send(op.code)) {
          start_send(id);
          if (serialize_communication_) {
            // MPI_Isend: the stream's next op (a receive) is posted while the send is in flight.
            ++head;
            continue;
          }
        } else {
          start_recv(id);
        }
        break;
    }
    if (state_[id] == kDone) {
      ++head;
      continue;
    }
    return true;
  }
  return started;
}

void RankActor::start_compute_batch() {
  auto& list = stream_ops_[static_cast<std::size_t>(Stream::Compute)];
  const std::size_t begin = head_[static_cast<std::size_t>(Stream::Compute)];
  std::size_t end = begin;
  double total = 0;
  constexpr std::size_t kMaxBatch = 512;
  while (end < list.size() && end - begin < kMaxBatch) {
    const Op& op = ops_[list[end]];
    if (op.type != OpType::Compute) break;
    bool ready = true;
    for (std::uint32_t dep : op.deps)
      if (ops_[dep].stream != Stream::Compute && state_[dep] != kDone) ready = false;
    if (end > begin && posted_after_[op.id] != kNoOp && !released_[posted_after_[op.id]]) ready = false;
    if (!ready) break;
    state_[op.id] = kRunning;
    total += duration_[op.id];
    ++end;
    if (trigger_[op.id]) break;
  }
  assert(end > begin);
  batch_begin_ = begin;
  batch_start_time_ = s4u::Engine::get_clock();
  computing_ = true;
  ++executor_.statistics().compute_executions;
  add_timer(total, {Kind::ComputeBatch, list[begin], end, nullptr});
}

void RankActor::start_collective(std::uint32_t op) {
  const CollectivePrep* prep = collective_prep[op];
  Instance* instance = executor_.instance(prep, occurrence[op]);
  instance->arrivals.emplace_back(index_, op);
  if (instance->arrivals.size() < prep->participants.size()) return;  // wait for the others
  drive(instance, op);
}

void RankActor::drive(Instance* instance, std::uint32_t op) {
  const CollectivePrep* prep = instance->prep;
  instance->start = s4u::Engine::get_clock();
  instance->clean_start = executor_.links_idle(prep->footprint);
  instance->replay = false;
  if (instance->clean_start) {
    if (const double* cached = executor_.cached_duration(prep)) {
      // Simulated before with its links to itself, and they are free now: same duration.
      ++executor_.statistics().collectives_cached;
      instance->replay = true;
      instance->generation = executor_.acquire(prep->footprint);
      running_[instance] = {instance, op, prep->plan.phases.size(), 0, 0};
      add_timer(*cached, {Kind::CollectiveTail, op, 0, instance});
      return;
    }
  }
  ++executor_.statistics().collectives_simulated;
  instance->generation = executor_.acquire(prep->footprint);
  RunningCollective& running = running_[instance];
  running = {instance, op, 0, 0, 0};
  start_phase(running);
}

void RankActor::start_phase(RunningCollective& running) {
  const FoldedPlan& plan = running.instance->prep->plan;
  while (running.phase < plan.phases.size()) {
    const FoldedPhase& phase = plan.phases[running.phase];
    running.outstanding = 0;
    running.phase_start = s4u::Engine::get_clock();
    for (const Transfer& transfer : phase.transfers) {
      const double bytes = std::ceil(transfer.bytes * phase.repeat);
      s4u::Host* from = executor_.platform().host(transfer.source);
      s4u::Host* to = executor_.platform().host(transfer.destination);
      add_activity(s4u::Comm::sendto_async(from, to, static_cast<std::uint64_t>(std::max(1.0, bytes))),
                   {Kind::CollectiveFlow, running.op, 0, running.instance});
      ++running.outstanding;
      ++executor_.statistics().flows;
    }
    if (running.outstanding > 0) return;
    ++running.phase;
  }
  finish_collective(running.instance, running.op);
}

void RankActor::finish_collective(Instance* instance, std::uint32_t op) {
  const double now = s4u::Engine::get_clock();
  const CollectivePrep* prep = instance->prep;
  const bool undisturbed = executor_.release(prep->footprint, instance->generation);
  if (instance->replay) {
    if (!undisturbed) ++executor_.statistics().replays_overlapped;
  } else if (instance->clean_start && undisturbed && executor_.cached_duration(prep) == nullptr) {
    executor_.store_duration(prep, now - instance->start);
  }
  running_.erase(instance);
  for (const auto& [actor, actor_op] : instance->arrivals) {
    if (actor == index_) {
      finish(actor_op, now);
    } else {
      auto* note = new Note{actor_op};
      executor_.actors()[static_cast<std::size_t>(actor)]->mailbox()->put_init(note, 0)->detach();
    }
  }
  (void)op;
}

void RankActor::complete_from_note(std::uint32_t op) { finish(op, s4u::Engine::get_clock()); }

void RankActor::start_send(std::uint32_t op) {
  if (serialize_communication_) {
    double bytes = 0;
    for (const Transfer& transfer : send_prep[op]->transfers) bytes += transfer.bytes;
    MessageState& message = executor_.messages()[message_key[op]];
    if (bytes > kMpiEagerLimitBytes && message.waiting_op == UINT32_MAX) {
      message.deferred_send = op;  // the receiver's start_recv calls receiver_ready
      message.sender_actor = index_;
      released_[op] = 1;  // MPI_Isend returned: the program goes on
      return;
    }
  }
  start_send_transfer(op);
}

void RankActor::receiver_ready(std::uint32_t send) {
  if (!computing_) {
    start_send_transfer(send);
    return;
  }
  // The end of the compute op in progress within the running batch.
  const auto& list = stream_ops_[static_cast<std::size_t>(Stream::Compute)];
  const double now = s4u::Engine::get_clock();
  double end = batch_start_time_;
  for (std::size_t i = batch_begin_; i < list.size() && end <= now; ++i) end += duration_[list[i]];
  add_timer(end - now, {Kind::SendStart, send, 0, nullptr});
}

void RankActor::start_send_transfer(std::uint32_t op) {
  const SendPrep* prep = send_prep[op];
  transfer_start_[op] = s4u::Engine::get_clock();
  int& outstanding = send_outstanding_[op];
  outstanding = 0;
  for (const Transfer& transfer : prep->transfers) {
    s4u::Host* from = executor_.platform().host(transfer.source);
    s4u::Host* to = executor_.platform().host(transfer.destination);
    add_activity(s4u::Comm::sendto_async(from, to, static_cast<std::uint64_t>(std::max(1.0, std::ceil(transfer.bytes)))),
                 {Kind::SendFlow, op, 0, nullptr});
    executor_.acquire_route(transfer.source, transfer.destination);
    ++outstanding;
    ++executor_.statistics().flows;
  }
}

void RankActor::complete_send(std::uint32_t op, double now) {
  finish(op, now);
  MessageState& message = executor_.messages()[message_key[op]];
  message.arrived = true;
  message.arrival = now;
  message.transfer_start = transfer_start_[op];
  if (message.waiting_op != UINT32_MAX) {
    auto* note = new Note{message.waiting_op};
    executor_.actors()[static_cast<std::size_t>(receiver_actor[op])]->mailbox()->put_init(note, 0)->detach();
    message.waiting_op = UINT32_MAX;
  }
}

void RankActor::start_recv(std::uint32_t op) {
  MessageState& message = executor_.messages()[message_key[op]];
  if (message.arrived) {
    transfer_start_[op] = message.transfer_start;
    finish(op, s4u::Engine::get_clock());
    return;
  }
  message.waiting_op = op;
  if (message.deferred_send != UINT32_MAX) {
    const std::uint32_t send = message.deferred_send;
    message.deferred_send = UINT32_MAX;
    if (message.sender_actor == index_) {
      receiver_ready(send);
    } else {
      auto* note = new Note{send, true};
      executor_.actors()[static_cast<std::size_t>(message.sender_actor)]->mailbox()->put_init(note, 0)->detach();
    }
  }
}

void RankActor::handle(const Pending& pending) {
  const double now = s4u::Engine::get_clock();
  switch (pending.kind) {
    case Kind::ComputeBatch: {
      auto& list = stream_ops_[static_cast<std::size_t>(Stream::Compute)];
      double t = batch_start_time_;
      for (std::size_t i = batch_begin_; i < pending.batch_end; ++i) {
        const std::uint32_t id = list[i];
        start_[id] = t;
        t += duration_[id];
        finish(id, i + 1 == pending.batch_end ? now : t);
      }
      head_[static_cast<std::size_t>(Stream::Compute)] = pending.batch_end;
      computing_ = false;
      break;
    }
    case Kind::CollectiveFlow: {
      RunningCollective& running = running_[pending.instance];
      if (--running.outstanding > 0) break;
      const FoldedPhase& phase = running.instance->prep->plan.phases[running.phase];
      // The repeated steps' latencies the single long flow did not pay, the pipelined hops,
      // the collective's fixed latency, and a reduction slower than the transfers.
      double tail = phase.tail_latency_s();
      // Reductions run pipelined with the transfers; a reduction engine slower than the links
      // sets the phase's pace instead.
      const double reduction_bandwidth = executor_.topology().group(0).profile.reduction_bandwidth_bytes_per_s;
      if (reduction_bandwidth > 0 && phase.reduce_bytes_per_rank > 0) {
        const double reduction = phase.repeat * phase.reduce_bytes_per_rank / reduction_bandwidth;
        tail = std::max(tail, reduction - (now - running.phase_start));
      }
      if (tail > 0) {
        add_timer(tail, {Kind::CollectiveTail, running.op, 0, running.instance});
      } else {
        ++running.phase;
        start_phase(running);
      }
      break;
    }
    case Kind::CollectiveTail: {
      RunningCollective& running = running_[pending.instance];
      if (running.phase >= running.instance->prep->plan.phases.size()) {
        finish_collective(running.instance, running.op);  // cached replay
      } else {
        ++running.phase;
        start_phase(running);
      }
      break;
    }
    case Kind::SendFlow: {
      int& outstanding = send_outstanding_[pending.op];
      if (--outstanding > 0) break;
      send_outstanding_.erase(pending.op);
      for (const Transfer& transfer : send_prep[pending.op]->transfers)
        executor_.release_route(transfer.source, transfer.destination);
      // A stream between nodes faster than node.p2p_bandwidth waits out the rest of its time.
      const double rest = send_prep[pending.op]->min_duration_s - (now - transfer_start_[pending.op]);
      if (rest > 0) {
        add_timer(rest, {Kind::SendTail, pending.op, 0, nullptr});
        break;
      }
      complete_send(pending.op, now);
      break;
    }
    case Kind::SendTail:
      complete_send(pending.op, now);
      break;
    case Kind::SendStart:
      start_send_transfer(pending.op);
      break;
  }
}

void RankActor::run() {
  note_comm_ = mailbox_->get_async<Note>(&note_);
  std::size_t note_slot = 0;
  while (!finished_) {
    bool progress = true;
    while (progress && !finished_) {
      progress = false;
      for (int s = 0; s < strategy::kStreamCount; ++s) progress = try_start(static_cast<Stream>(s)) || progress;
    }
    if (finished_) break;
    // Wait for the first of: our activities, or a note from another actor.
    activities_.push_back(note_comm_);
    note_slot = activities_.size() - 1;
    const ssize_t index = s4u::Activity::wait_any(activities_);
    activities_.pop_back();
    if (index < 0) throw std::runtime_error("simulation: wait_any failed");
    if (static_cast<std::size_t>(index) == note_slot) {
      Note* note = note_;
      note_comm_ = mailbox_->get_async<Note>(&note_);
      if (note->receiver_ready) {
        receiver_ready(note->op);
        delete note;
        continue;
      }
      const Op& op = ops_[note->op];
      if (op.type == OpType::SendRecv && collective_prep[note->op] == nullptr) {
        const MessageState& message = executor_.messages()[message_key[note->op]];
        transfer_start_[note->op] = message.transfer_start;
      }
      complete_from_note(note->op);
      delete note;
      continue;
    }
    const Pending pending = pending_[static_cast<std::size_t>(index)];
    activities_[static_cast<std::size_t>(index)] = activities_.back();
    activities_.pop_back();
    pending_[static_cast<std::size_t>(index)] = pending_.back();
    pending_.pop_back();
    handle(pending);
  }
  // Leave the pending note receive behind: SimGrid cleans it up at the end of the run.
  note_comm_->cancel();
}

// ---- Executor -------------------------------------------------------------------------------

int Executor::peer_of(int rank, PeerKind peer) const {
  const auto& layout = program_.layout;
  strategy::RankCoordinates c = layout.coordinates(rank);
  switch (peer) {
    case PeerKind::NextStage: c.pp = (c.pp + 1) % layout.pp(); break;
    case PeerKind::PreviousStage: c.pp = (c.pp + layout.pp() - 1) % layout.pp(); break;
    case PeerKind::NextContext: c.cp = (c.cp + 1) % layout.cp(); break;
    case PeerKind::PreviousContext: c.cp = (c.cp + layout.cp() - 1) % layout.cp(); break;
    case PeerKind::None: break;
  }
  return layout.rank_of(c);
}

const std::vector<std::pair<std::vector<int>, std::vector<int>>>& Executor::groups_of_kind(GroupKind kind) {
  auto it = groups_.find(kind);
  if (it != groups_.end()) return it->second;
  auto& groups = groups_[kind];
  for (auto& ranks : program_.layout.all_groups(kind)) {
    std::vector<int> classes = classes_of(ranks);
    groups.emplace_back(std::move(ranks), std::move(classes));
  }
  return groups;
}

const CollectivePrep* Executor::prepare_collective(RankActor& actor, const Op& op) {
  const bool cp_exchange = op.type == OpType::SendRecv;
  const GroupKind kind = cp_exchange ? GroupKind::Context : op.group;
  const std::vector<int> members = program_.layout.group_of(actor.rank(), kind);
  const std::vector<int> participants = classes_of(members);
  std::string participants_text;
  for (int p : participants) participants_text += std::to_string(p) + ",";
  // Folded: the class set identifies the instance; unfolded: the group itself.
  const std::string group_text = options_.fold ? participants_text : std::to_string(members.front()) + "@" + participants_text;
  const CollectiveKind collective = cp_exchange ? CollectiveKind::SendRecv : op.collective;
  const std::string key = std::to_string(static_cast<int>(kind)) + "|" + group_text + "|" +
                          std::to_string(static_cast<int>(collective)) + "|" +
                          std::to_string(static_cast<int>(op.algorithm)) + "|" + std::to_string(bits_of(op.bytes)) +
                          (cp_exchange ? "|cp" : "");
  auto it = collective_preps_.find(key);
  if (it != collective_preps_.end()) return it->second.get();

  auto prep = std::make_unique<CollectivePrep>();
  prep->participants = participants;
  prep->kind = collective;
  prep->bytes = op.bytes;
  prep->category = category_of("collective|" + std::to_string(static_cast<int>(kind)) + "|" + group_text +
                               "|" + std::to_string(static_cast<int>(op.stream)));
  // The groups that run this collective in lockstep with the representative's.
  std::vector<std::vector<int>> groups;
  if (options_.fold) {
    for (const auto& [ranks, classes] : groups_of_kind(kind))
      if (classes == participants) groups.push_back(ranks);
  } else {
    groups.push_back(members);
  }
  if (groups.empty()) groups.push_back(members);
  auto node_of = [this](int rank) { return program_.layout.node_of(rank); };
  FoldOptions fold;
  fold.fold = options_.fold;
  fold.flow_budget = options_.flow_budget;
  fold.preferred_node = program_.layout.node_of(actor.rank());
  auto plans_for = [&](CollectiveAlgorithm algorithm) {
    std::vector<strategy::CollectivePlan> plans;
    for (const auto& group : groups) {
      if (cp_exchange) {
        strategy::CollectivePlan plan;
        plan.kind = CollectiveKind::SendRecv;
        strategy::CollectivePhase phase;
        const int n = static_cast<int>(group.size());
        for (int i = 0; i < n && n > 1; ++i)
          phase.transfers.push_back({group[static_cast<std::size_t>(i)], group[static_cast<std::size_t>((i + 1) % n)], op.bytes});
        if (!phase.transfers.empty()) plan.phases.push_back(phase);
        plans.push_back(std::move(plan));
      } else {
        plans.push_back(strategy::plan_collective(collective, algorithm, group, op.bytes, node_of));
      }
    }
    return fold_plans(topology_, plans, fold);
  };
  if (cp_exchange) {
    prep->algorithm = CollectiveAlgorithm::Ring;
    prep->plan = plans_for(CollectiveAlgorithm::Ring);
  } else {
    std::vector<CollectiveAlgorithm> candidates = strategy::candidate_algorithms(collective, members, node_of);
    if (op.algorithm != CollectiveAlgorithm::Auto) candidates = {op.algorithm};
    double best = std::numeric_limits<double>::infinity();
    for (CollectiveAlgorithm algorithm : candidates) {
      FoldedPlan plan = plans_for(algorithm);
      const double estimate = candidates.size() == 1 ? 0 : estimate_plan_time(topology_, plan);
      if (estimate < best) {
        best = estimate;
        prep->algorithm = algorithm;
        prep->plan = std::move(plan);
      }
    }
  }
  if (!prep->plan.exact) statistics_.folding_exact = false;
  bool reduced = false;
  for (const auto& phase : prep->plan.phases) reduced = reduced || phase.transfers.size() < phase.original_transfers;
  std::string note = std::string(strategy::to_string(op.code)) + " (" + std::string(strategy::to_string(collective)) +
                     ", " + std::string(strategy::to_string(prep->algorithm)) + "): " + prep->plan.description();
  if (reduced && statistics_.folding_notes.size() < 32 &&
      std::find(statistics_.folding_notes.begin(), statistics_.folding_notes.end(), note) == statistics_.folding_notes.end())
    statistics_.folding_notes.push_back(std::move(note));
  for (const auto& phase : prep->plan.phases)
    for (const Transfer& t : phase.transfers) {
      used_gpus_.insert(t.source);
      used_gpus_.insert(t.destination);
    }
  const CollectivePrep* result = prep.get();
  collective_preps_.emplace(key, std::move(prep));
  return result;
}

const SendPrep* Executor::prepare_send(RankActor& actor, const Op& op) {
  const std::string key = std::to_string(actor.index()) + "|" + std::to_string(static_cast<int>(op.peer)) + "|" +
                          std::to_string(bits_of(op.bytes));
  auto it = send_preps_.find(key);
  if (it != send_preps_.end()) return it->second.get();
  auto prep = std::make_unique<SendPrep>();
  prep->category = category_of("pp|" + std::to_string(actor.index()));
  std::vector<int> senders{actor.rank()};
  if (options_.fold) {
    // The class's ranks on the representative's node share its NICs: send their messages too.
    const int node = program_.layout.node_of(actor.rank());
    senders.clear();
    for (int rank : program_.classes[static_cast<std::size_t>(actor.class_id())].ranks)
      if (program_.layout.node_of(rank) == node) senders.push_back(rank);
  }
  for (int sender : senders) {
    const int receiver = peer_of(sender, op.peer);
    prep->transfers.push_back({sender, receiver, op.bytes});
    used_gpus_.insert(sender);
    used_gpus_.insert(receiver);
    if (topology_.node_of(sender) != topology_.node_of(receiver)) {
      const double cap = std::min(p2p_cap_of(topology_, sender), p2p_cap_of(topology_, receiver));
      prep->min_duration_s = std::max(prep->min_duration_s, op.bytes / cap);
    }
  }
  const SendPrep* result = prep.get();
  send_preps_.emplace(key, std::move(prep));
  return result;
}

void Executor::prepare_collectives() {
  const int pp = program_.layout.pp();
  for (auto& actor_ptr : actors_) {
    RankActor& actor = *actor_ptr;
    used_gpus_.insert(actor.rank());
    std::map<const void*, int> occurrences;
    const int stage = program_.layout.coordinates(actor.rank()).pp;
    std::map<std::uint64_t, int> message_occurrences;
    for (const Op& op : actor.ops()) {
      const bool cp_exchange = op.type == OpType::SendRecv &&
                               (op.peer == PeerKind::NextContext || op.peer == PeerKind::PreviousContext);
      if (op.type == OpType::Collective || cp_exchange) {
        const CollectivePrep* prep = prepare_collective(actor, op);
        actor.collective_prep[op.id] = prep;
        actor.occurrence[op.id] = occurrences[prep]++;
      } else if (op.type == OpType::SendRecv) {
        const bool send = is_pipeline_send(op.code);
        const bool gradient = op.code == OpCode::PpSendGradient || op.code == OpCode::PpRecvGradient;
        const int global = strategy::global_chunk(stage, op.chunk, pp);
        int receiver_actor = actor.index();
        int destination_chunk = global;
        if (send) {
          actor.send_prep[op.id] = prepare_send(actor, op);
          receiver_actor = actor_of_rank(peer_of(actor.rank(), op.peer));
          actor.receiver_actor[op.id] = receiver_actor;
          destination_chunk = gradient ? global - 1 : global + 1;
        }
        const std::uint64_t base = message_key(receiver_actor, gradient, op.micro_batch, destination_chunk, -1, 0);
        const int occurrence = message_occurrences[base]++;
        (void)occurrence;
        actor.message_key[op.id] = base;
      }
    }
  }
  // Footprints: the links each collective's folded flows cross.
  for (auto& [key, prep] : collective_preps_) {
    std::set<int> links;
    for (const auto& phase : prep->plan.phases)
      for (const Transfer& t : phase.transfers) {
        const Route route = topology_.route(t.source, t.destination);
        for (int i = 0; i < route.link_count; ++i) links.insert(route.links[i]);
      }
    prep->footprint.assign(links.begin(), links.end());
  }
  link_busy_.assign(topology_.link_count(), 0);
  link_acquisitions_.assign(topology_.link_count(), 0);
}

// The outer synchronisation of one simulated rank (ops with period > 1): see executor.hpp.
OuterTiming outer_timing_of(const RankActor& actor) {
  OuterTiming t;
  double exchange_start = std::numeric_limits<double>::infinity();
  double exchange_end = 0;
  double outer_end = 0;
  for (const Op& op : actor.ops()) {
    if (op.type == OpType::Marker) continue;
    if (op.period <= 1) {
      t.inner_step_s = std::max(t.inner_step_s, actor.end(op.id));
      continue;
    }
    t.present = true;
    t.period = std::max(t.period, static_cast<int>(op.period));
    t.overlap_steps = std::max(t.overlap_steps, static_cast<int>(op.overlap_steps));
    outer_end = std::max(outer_end, actor.end(op.id));
    if (op.type == OpType::Compute) {
      t.update_s += actor.end(op.id) - actor.start(op.id);
    } else {
      exchange_start = std::min(exchange_start, actor.start(op.id));
      exchange_end = std::max(exchange_end, actor.end(op.id));
    }
  }
  if (!t.present) {
    t.inner_step_s = actor.end(actor.step_end_op());
    t.sync_step_s = t.inner_step_s;
    return t;
  }
  if (exchange_end > 0) t.exchange_s = exchange_end - exchange_start;
  if (t.overlap_steps == 0)
    t.exposed_s = std::max(0.0, std::max(outer_end, actor.end(actor.step_end_op())) - t.inner_step_s);
  else
    t.exposed_s = std::max(0.0, exchange_end - t.overlap_steps * t.inner_step_s) + t.update_s;
  t.sync_step_s = t.inner_step_s + t.exposed_s;
  return t;
}

double average_step_of(const OuterTiming& t) { return t.inner_step_s + t.exposed_s / t.period; }

void Executor::compute_breakdown(ExecutionResult& result, double inner_end) {
  const RankActor& actor = *actors_[static_cast<std::size_t>(result.critical_class)];
  const auto& ops = actor.ops();
  Breakdown& b = result.breakdown;
  double cursor = 0;  // end of the previous compute op
  auto attribute_gap = [&](const Op& waiting, double gap_start, double gap_end) {
    if (gap_end <= gap_start) return;
    const double gap = gap_end - gap_start;
    // The dependency that finished last bound the wait.
    std::uint32_t binding = UINT32_MAX;
    double latest = -1;
    for (std::uint32_t dep : waiting.deps) {
      if (ops[dep].stream == Stream::Compute) continue;
      if (actor.end(dep) > latest) {
        latest = actor.end(dep);
        binding = dep;
      }
    }
    if (binding == UINT32_MAX) {
      b.bubble += gap;
      return;
    }
    const Op& dep = ops[binding];
    switch (dep.stream) {
      case Stream::TpComm: b.exposed_tp_comm += gap; break;
      case Stream::CpComm: b.exposed_cp_comm += gap; break;
      case Stream::DpComm: b.exposed_dp_comm += gap; break;
      case Stream::PpComm:
        if (dep.code == OpCode::PpRecvActivation || dep.code == OpCode::PpRecvGradient) {
          const double wire_start = std::max(gap_start, actor.transfer_start(binding));
          const double wire = std::clamp(std::min(gap_end, actor.end(binding)) - wire_start, 0.0, gap);
          b.exposed_pp_comm += wire;
          b.bubble += gap - wire;
        } else {
          b.exposed_pp_comm += gap;
        }
        break;
      case Stream::Compute: b.bubble += gap; break;
    }
  };
  for (const Op& op : ops) {
    if (op.stream != Stream::Compute || op.period > 1) continue;
    if (op.type == OpType::Marker) {
      if (op.code == OpCode::StepEnd) {
        // The inner step ends with its last op of period 1; outer ops are accounted separately.
        Op inner = op;
        inner.deps.clear();
        for (std::uint32_t dep : op.deps)
          if (ops[dep].period <= 1) inner.deps.push_back(dep);
        attribute_gap(inner, cursor, inner_end);
      }
      continue;
    }
    attribute_gap(op, cursor, actor.start(op.id));
    const double busy = actor.end(op.id) - actor.start(op.id);
    if (op.compute_kind == strategy::ComputeKind::Optimizer)
      b.optimizer += busy;
    else
      b.compute += busy;
    cursor = actor.end(op.id);
  }
  b.outer_sync = result.outer.present ? result.outer.exposed_s / result.outer.period : 0;
  // Floating-point residue: the parts must sum to the step time exactly.
  b.compute += result.step_time_s - b.total();
}

void Executor::compute_wan_traffic(ExecutionResult& result) {
  WanTraffic& wan = result.wan;
  wan.present = topology_.has_wan();
  if (!wan.present) return;
  const auto& layout = program_.layout;
  const int sites = topology_.sites();
  // Bytes per WAN link direction: [0, sites) uplinks, [sites, 2 sites) downlinks.
  std::vector<double> inner(2 * static_cast<std::size_t>(sites), 0.0);
  std::vector<double> outer(2 * static_cast<std::size_t>(sites), 0.0);
  auto site_of_rank = [&](int rank) { return topology_.site_of(layout.node_of(rank)); };
  auto count = [&](const strategy::CollectivePlan& plan, std::vector<double>& links) {
    for (const auto& phase : plan.phases)
      for (const Transfer& t : phase.transfers) {
        const int a = site_of_rank(t.source);
        const int b = site_of_rank(t.destination);
        if (a == b) continue;
        links[static_cast<std::size_t>(a)] += t.bytes * phase.repeat;
        links[static_cast<std::size_t>(sites + b)] += t.bytes * phase.repeat;
      }
  };
  auto spans_sites = [&](const std::vector<int>& group) {
    for (int rank : group)
      if (site_of_rank(rank) != site_of_rank(group.front())) return true;
    return false;
  };
  auto node_of = [&](int rank) { return layout.node_of(rank); };
  // One simulated actor per stage tells which algorithm each op's collective ran with.
  std::vector<const RankActor*> actor_of_stage(static_cast<std::size_t>(layout.pp()), nullptr);
  for (const auto& actor : actors_) {
    const int stage = program_.classes[static_cast<std::size_t>(actor->class_id())].pipeline_stage;
    if (actor_of_stage[static_cast<std::size_t>(stage)] == nullptr) actor_of_stage[static_cast<std::size_t>(stage)] = actor.get();
  }
  std::map<std::tuple<int, int, int, std::uint64_t, int>, std::vector<double>> cache;
  for (int stage = 0; stage < layout.pp(); ++stage) {
    const RankActor* actor = actor_of_stage[static_cast<std::size_t>(stage)];
    if (actor == nullptr) continue;
    for (const Op& op : program_.stage_ops[static_cast<std::size_t>(stage)]) {
      const bool send = is_pipeline_send(op.code);
      const bool cp_exchange = op.type == OpType::SendRecv && (op.peer == PeerKind::NextContext || op.peer == PeerKind::PreviousContext);
      if (op.type != OpType::Collective && !send && !cp_exchange) continue;
      std::vector<double>& links = op.period > 1 ? outer : inner;
      const CollectivePrep* prep = actor->collective_prep[op.id];
      const CollectiveAlgorithm algorithm = prep != nullptr ? prep->algorithm : CollectiveAlgorithm::Ring;
      const GroupKind kind = cp_exchange ? GroupKind::Context : op.group;
      const auto key = std::make_tuple(stage, static_cast<int>(send ? 100 + static_cast<int>(op.peer) : static_cast<int>(kind)),
                                       static_cast<int>(algorithm) * 16 + static_cast<int>(op.collective), bits_of(op.bytes),
                                       cp_exchange ? 1 : 0);
      auto [it, inserted] = cache.try_emplace(key);
      if (inserted) {
        it->second.assign(2 * static_cast<std::size_t>(sites), 0.0);
        if (send) {
          strategy::CollectivePlan plan;
          strategy::CollectivePhase phase;
          for (int rank = 0; rank < layout.world_size(); ++rank)
            if (layout.coordinates(rank).pp == stage) phase.transfers.push_back({rank, peer_of(rank, op.peer), op.bytes});
          plan.phases.push_back(std::move(phase));
          count(plan, it->second);
        } else {
          for (const auto& group : layout.all_groups(kind)) {
            // Each instance once: on the stage of its first member (groups spanning stages appear
            // in several stages' programs).
            if (layout.coordinates(group.front()).pp != stage || group.size() < 2 || !spans_sites(group)) continue;
            if (cp_exchange) {
              strategy::CollectivePlan plan;
              strategy::CollectivePhase phase;
              for (std::size_t i = 0; i < group.size(); ++i)
                phase.transfers.push_back({group[i], group[(i + 1) % group.size()], op.bytes});
              plan.phases.push_back(std::move(phase));
              count(plan, it->second);
            } else {
              count(strategy::plan_collective(op.collective, algorithm, group, op.bytes, node_of), it->second);
            }
          }
        }
      }
      for (std::size_t i = 0; i < links.size(); ++i) links[i] += it->second[i];
    }
  }
  auto total = [&](const std::vector<double>& links) {
    double sum = 0;
    for (int site = 0; site < sites; ++site) sum += links[static_cast<std::size_t>(site)];
    return sum;
  };
  wan.inner_bytes_per_step = total(inner);
  wan.inner_busiest_link_bytes = *std::max_element(inner.begin(), inner.end());
  wan.sync_bytes = total(outer);
  wan.sync_busiest_link_bytes = *std::max_element(outer.begin(), outer.end());
  const OuterTiming& t = result.outer;
  const double period = t.present ? t.period : 1;
  wan.bytes_per_step = wan.inner_bytes_per_step + wan.sync_bytes / period;
  // The compute an exchange can hide behind: the inner step without its exposed communication.
  const Breakdown& b = result.breakdown;
  const double window = b.compute + b.optimizer + b.bubble;
  if (window > 0) {
    wan.peak_bandwidth_bytes_per_s =
        std::max(wan.inner_busiest_link_bytes / window,
                 wan.sync_busiest_link_bytes / (std::max(1, t.overlap_steps) * window));
  }
  if (result.step_time_s > 0)
    wan.average_bandwidth_bytes_per_s =
        (wan.inner_busiest_link_bytes + wan.sync_busiest_link_bytes / period) / result.step_time_s;
}

ExecutionResult Executor::run() {
  const auto wall_start = std::chrono::steady_clock::now();
  strategy::ProgramOptions program_options;
  program_options.fold = options_.fold;
  program_ = strategy::build_program(scenario_, program_options);
  auto engine = configure_simgrid(options_.verbose);

  std::vector<ComputeCostModel> costs;
  for (std::size_t g = 0; g < std::max<std::size_t>(1, scenario_.cluster.node_groups.size()); ++g)
    costs.push_back(ComputeCostModel::for_scenario(scenario_, static_cast<int>(g)));
  for (const strategy::RankClass& rank_class : program_.classes) {
    auto actor = std::make_unique<RankActor>(*this, rank_class.id, rank_class.ranks.front(), rank_class.id,
                                             program_.ops_of_class(rank_class.id));
    actor->prepare(costs[static_cast<std::size_t>(rank_class.node_group) % costs.size()]);
    ops_total_ += actor->ops().size();
    actors_.push_back(std::move(actor));
  }
  prepare_collectives();
  platform_ = std::make_unique<SimPlatform>(topology_, std::vector<int>(used_gpus_.begin(), used_gpus_.end()));
  statistics_.hosts = platform_->materialised_gpus();
  statistics_.links = platform_->materialised_links();
  statistics_.simulated_ranks = actors_.size();
  statistics_.ops = ops_total_;
  if (options_.progress) options_.progress(0);

  for (auto& actor : actors_) {
    RankActor* raw = actor.get();
    s4u::Actor::create("rank" + std::to_string(raw->rank()), platform_->control_host(), [raw] { raw->run(); });
  }
  engine->run();

  ExecutionResult result;
  for (const auto& actor : actors_) {
    if (!actor->finished())
      throw std::runtime_error("simulation stalled: rank " + std::to_string(actor->rank()) +
                               " never reached the end of its step (a send/recv or collective was never matched)");
    const strategy::RankClass& rank_class = program_.classes[static_cast<std::size_t>(actor->class_id())];
    ClassTiming timing;
    timing.class_id = actor->class_id();
    timing.rank = actor->rank();
    timing.ranks = static_cast<int>(rank_class.ranks.size());
    timing.pipeline_stage = rank_class.pipeline_stage;
    timing.node_group = rank_class.node_group;
    timing.site = rank_class.site;
    timing.step_end_s = actor->end(actor->step_end_op());
    double flops = 0;
    for (const Op& op : actor->ops())
      if (op.type == OpType::Compute) {
        // Outer ops run once every `period` steps: per step they count 1/period.
        timing.compute_busy_s += (actor->end(op.id) - actor->start(op.id)) / std::max(1, static_cast<int>(op.period));
        flops += op.flops / std::max(1, static_cast<int>(op.period));
      }
    result.executed_flops += flops * static_cast<double>(rank_class.ranks.size());
    const OuterTiming outer = outer_timing_of(*actor);
    if (result.classes.empty() || average_step_of(outer) > result.step_time_s) {
      result.step_time_s = average_step_of(outer);
      result.critical_class = timing.class_id;
      result.outer = outer;
    }
    result.classes.push_back(timing);
  }
  compute_breakdown(result, result.outer.inner_step_s);
  compute_wan_traffic(result);
  if (options_.record_trace) {
    std::size_t total = 0;
    for (const auto& actor : actors_) total += actor->ops().size();
    result.trace.reserve(total);
    for (const auto& actor : actors_)
      for (const Op& op : actor->ops())
        result.trace.push_back(report::record_for(op, actor->rank(), actor->class_id(), actor->start(op.id), actor->end(op.id)));
  }
  statistics_.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  result.statistics = statistics_;
  if (options_.progress) options_.progress(1);
  return result;
}

}  // namespace

ExecutionResult execute_step(const strategy::Scenario& scenario, const ExecutorOptions& options) {
  Executor executor(scenario, options);
  return executor.run();
}

}  // namespace tandem::sim
