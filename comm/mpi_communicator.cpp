#include "comm/mpi_communicator.hpp"

#include <mpi.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

#include "comm/checks.hpp"

namespace tandem::comm {
namespace {

using detail::ErrorContext;
using detail::poll_until_done;

bool mpi_initialised() {
  int flag = 0;
  MPI_Initialized(&flag);
  return flag != 0;
}

bool mpi_finalised() {
  int flag = 0;
  MPI_Finalized(&flag);
  return flag != 0;
}

std::string mpi_error_string(int code) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) {
    return "MPI error code " + std::to_string(code);
  }
  return std::string(text, static_cast<std::size_t>(length));
}

std::string thread_level_name(int level) {
  switch (level) {
    case MPI_THREAD_SINGLE: return "MPI_THREAD_SINGLE";
    case MPI_THREAD_FUNNELED: return "MPI_THREAD_FUNNELED";
    case MPI_THREAD_SERIALIZED: return "MPI_THREAD_SERIALIZED";
    case MPI_THREAD_MULTIPLE: return "MPI_THREAD_MULTIPLE";
    default: return "thread level " + std::to_string(level);
  }
}

MPI_Datatype mpi_type(DataType type) {
  switch (type) {
    case DataType::Float32: return MPI_FLOAT;
    case DataType::Float64: return MPI_DOUBLE;
    case DataType::Int32: return MPI_INT32_T;
    case DataType::Int64: return MPI_INT64_T;
    case DataType::UInt8: return MPI_UINT8_T;
  }
  throw CommError("unknown DataType value " + std::to_string(static_cast<int>(type)));
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Average: return MPI_SUM;  // Average: Sum, then divide by size()
    case ReduceOp::Max: return MPI_MAX;
    case ReduceOp::Min: return MPI_MIN;
  }
  throw CommError("unknown ReduceOp value " + std::to_string(static_cast<int>(op)));
}

// ---------------------------------------------------------------------------------------------
// The process-wide MPI runtime, owned jointly by every communicator and request of this backend.
// ---------------------------------------------------------------------------------------------

bool g_initialised_by_tandem = false;  // guarded by g_runtime_mutex

void finalise_at_exit() {
  // Communicators still alive at exit (a leaked world, a static one) must not keep mpirun from
  // seeing a clean exit. Their destructors check MPI_Finalized and skip MPI calls afterwards.
  if (mpi_initialised() && !mpi_finalised()) {
    MPI_Finalize();
  }
}

class MpiRuntime {
 public:
  MpiRuntime(bool owns, int thread_level) : owns_(owns), thread_level_(thread_level) {
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank_);
  }
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

  ~MpiRuntime() {
    if (owns_ && !mpi_finalised()) {
      MPI_Finalize();
    }
  }

  static std::shared_ptr<MpiRuntime> acquire();

  int world_rank() const { return world_rank_; }
  bool serialised() const { return thread_level_ < MPI_THREAD_MULTIPLE; }

  // Held around every MPI call when the library is not thread-safe (an empty lock otherwise).
  std::unique_lock<std::mutex> lock() {
    if (serialised()) {
      return std::unique_lock<std::mutex>(mutex_);
    }
    return {};
  }

 private:
  bool owns_;
  int thread_level_;
  int world_rank_ = 0;
  std::mutex mutex_;
};

std::mutex g_runtime_mutex;
std::weak_ptr<MpiRuntime> g_runtime;

std::shared_ptr<MpiRuntime> MpiRuntime::acquire() {
  std::lock_guard guard(g_runtime_mutex);
  if (auto runtime = g_runtime.lock()) {
    return runtime;
  }
  if (mpi_finalised()) {
    throw CommError("MPI has already been finalised in this process and cannot be initialised "
                    "again: create the world communicator once and keep it for the whole run");
  }
  bool owns = false;
  int provided = MPI_THREAD_SINGLE;
  if (!mpi_initialised()) {
    const int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
    if (rc != MPI_SUCCESS) {
      throw CommError("MPI_Init_thread failed: " + mpi_error_string(rc));
    }
    owns = true;
    g_initialised_by_tandem = true;
    std::atexit(finalise_at_exit);
  } else {
    MPI_Query_thread(&provided);
    owns = g_initialised_by_tandem;
  }
  auto runtime = std::make_shared<MpiRuntime>(owns, provided);
  g_runtime = runtime;
  return runtime;
}

// What a communicator shares with the requests it creates (which may outlive it).
struct GroupState {
  std::shared_ptr<MpiRuntime> runtime;
  ErrorContext context;
  std::atomic<double> timeout_seconds{kDefaultTimeoutSeconds};
};

// Runs after the MPI requests complete: scaling for Average, count checks for receives.
using Completion = std::function<void(const std::vector<MPI_Status>&)>;

class MpiRequest final : public Request {
 public:
  MpiRequest(std::shared_ptr<GroupState> group, std::string operation)
      : group_(std::move(group)), operation_(std::move(operation)) {}
  MpiRequest(const MpiRequest&) = delete;
  MpiRequest& operator=(const MpiRequest&) = delete;

  ~MpiRequest() override {
    if (done_ || abandoned_ || mpi_finalised()) {
      return;
    }
    if (timed_out_) {
      // Waiting again would only repeat the timeout (and delay the error being reported).
      spdlog::error("rank {}: {} was abandoned unfinished after its wait timed out; its buffer "
                    "stays registered with MPI (end the run with abort_mpi_world)",
                    group_->context.world_rank, operation_);
      return;
    }
    try {
      wait();
    } catch (const std::exception& error) {
      // A destructor cannot throw: leave the transfer registered with MPI (its buffer must stay
      // alive) and say so. The run is broken; the caller should abort.
      spdlog::error("{} (while destroying an unfinished request; the transfer was abandoned)",
                    error.what());
    }
  }

  std::vector<MPI_Request>& handles() { return handles_; }
  void set_completion(Completion completion) { completion_ = std::move(completion); }

  bool test() override {
    if (done_) {
      return true;
    }
    int flag = 0;
    statuses_.resize(handles_.size());
    int rc = MPI_SUCCESS;
    {
      auto lock = group_->runtime->lock();
      rc = MPI_Testall(static_cast<int>(handles_.size()), handles_.data(), &flag,
                       statuses_.data());
    }
    if (rc != MPI_SUCCESS) {
      done_ = true;  // MPI has completed (with an error) what it could; do not wait again
      fail_from_status(rc);
    }
    if (flag == 0) {
      return false;
    }
    done_ = true;
    if (completion_) {
      completion_(statuses_);
    }
    return true;
  }

  void wait() override {
    if (done_) {
      return;
    }
    const double timeout = group_->timeout_seconds.load();
    if (timeout == 0 && !group_->runtime->serialised()) {
      statuses_.resize(handles_.size());
      const int rc = MPI_Waitall(static_cast<int>(handles_.size()), handles_.data(),
                                 statuses_.data());
      done_ = true;
      if (rc != MPI_SUCCESS) {
        fail_from_status(rc);
      }
      if (completion_) {
        completion_(statuses_);
      }
      return;
    }
    if (!poll_until_done([this] { return test(); }, timeout)) {
      timed_out_ = true;
      group_->context.time_out(operation_, timeout);
    }
  }

  // The destructor will not wait (the transfer stays registered with MPI).
  void abandon() { abandoned_ = true; }

 private:
  [[noreturn]] void fail_from_status(int rc) {
    int code = rc;
    if (rc == MPI_ERR_IN_STATUS) {
      for (const MPI_Status& status : statuses_) {
        if (status.MPI_ERROR != MPI_SUCCESS && status.MPI_ERROR != MPI_ERR_PENDING) {
          code = status.MPI_ERROR;
          break;
        }
      }
    }
    int error_class = MPI_SUCCESS;
    MPI_Error_class(code, &error_class);
    if (error_class == MPI_ERR_TRUNCATE) {
      group_->context.fail(operation_, "the matching send sent more than this recv expects (" +
                                           mpi_error_string(code) + ")");
    }
    group_->context.fail(operation_, "MPI error: " + mpi_error_string(code));
  }

  std::shared_ptr<GroupState> group_;
  std::string operation_;
  std::vector<MPI_Request> handles_;
  std::vector<MPI_Status> statuses_;
  Completion completion_;
  bool done_ = false;
  bool abandoned_ = false;
  bool timed_out_ = false;  // a wait gave up; the destructor will not wait again
};

// ---------------------------------------------------------------------------------------------
// The communicator
// ---------------------------------------------------------------------------------------------

class MpiCommunicator final : public Communicator {
 public:
  // Takes ownership of `comm` (a communicator this backend created and will free).
  MpiCommunicator(std::shared_ptr<MpiRuntime> runtime, MPI_Comm comm, double timeout_seconds)
      : comm_(comm), group_(std::make_shared<GroupState>()) {
    group_->runtime = std::move(runtime);
    group_->timeout_seconds = timeout_seconds;
    auto lock = group_->runtime->lock();
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    int* tag_upper_bound = nullptr;
    int found = 0;
    MPI_Comm_get_attr(comm_, MPI_TAG_UB, &tag_upper_bound, &found);
    if (found != 0 && tag_upper_bound != nullptr) {
      tag_upper_bound_ = *tag_upper_bound;
    }
    group_->context = ErrorContext{group_->runtime->world_rank(), rank_, size_};
  }

  ~MpiCommunicator() override {
    if (mpi_finalised()) {
      return;
    }
    // Give transfers abandoned by a timed-out blocking call a last chance to finish (a late
    // peer), then leave them registered with MPI.
    const double timeout = group_->timeout_seconds.load();
    const double drain_seconds = timeout > 0 ? std::min(1.0, timeout) : 1.0;
    for (auto& orphan : orphans_) {
      if (!poll_until_done([&] { return test_quietly(*orphan); }, drain_seconds)) {
        orphan->abandon();
      }
    }
    orphans_.clear();
    auto lock = group_->runtime->lock();
    MPI_Comm_free(&comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }

  void set_timeout_seconds(double seconds) override {
    detail::check_timeout_value(seconds);
    group_->timeout_seconds = seconds;
  }
  double timeout_seconds() const override { return group_->timeout_seconds.load(); }

  // ---- all-reduce ----

  void all_reduce(void* buffer, std::size_t count, DataType type, ReduceOp op) override {
    check_all_reduce(buffer, count, type, op);
    if (direct()) {
      check(MPI_Allreduce(MPI_IN_PLACE, buffer, static_cast<int>(count), mpi_type(type),
                          mpi_op(op), comm_),
            detail::kAllReduce);
      finish_average(buffer, count, type, op);
      return;
    }
    finish(start_all_reduce(buffer, count, type, op));
  }

  RequestPtr all_reduce_async(void* buffer, std::size_t count, DataType type,
                              ReduceOp op) override {
    check_all_reduce(buffer, count, type, op);
    return start_all_reduce(buffer, count, type, op);
  }

  // ---- reduce-scatter ----

  void reduce_scatter(const void* input, void* output, std::size_t count, DataType type,
                      ReduceOp op) override {
    check_reduce_scatter(input, output, count, type, op);
    if (direct()) {
      check(MPI_Reduce_scatter_block(input, output, static_cast<int>(count), mpi_type(type),
                                     mpi_op(op), comm_),
            detail::kReduceScatter);
      finish_average(output, count, type, op);
      return;
    }
    finish(start_reduce_scatter(input, output, count, type, op));
  }

  RequestPtr reduce_scatter_async(const void* input, void* output, std::size_t count,
                                  DataType type, ReduceOp op) override {
    check_reduce_scatter(input, output, count, type, op);
    return start_reduce_scatter(input, output, count, type, op);
  }

  // ---- all-gather ----

  void all_gather(const void* input, void* output, std::size_t count, DataType type) override {
    const void* send = check_all_gather(input, output, count, type);
    if (direct()) {
      check(MPI_Allgather(send, static_cast<int>(count), mpi_type(type), output,
                          static_cast<int>(count), mpi_type(type), comm_),
            detail::kAllGather);
      return;
    }
    finish(start_all_gather(send, output, count, type));
  }

  RequestPtr all_gather_async(const void* input, void* output, std::size_t count,
                              DataType type) override {
    const void* send = check_all_gather(input, output, count, type);
    return start_all_gather(send, output, count, type);
  }

  // ---- all-to-all ----

  void all_to_all(const void* input, void* output, std::size_t count, DataType type) override {
    check_all_to_all(input, output, count, type);
    if (direct()) {
      check(MPI_Alltoall(input, static_cast<int>(count), mpi_type(type), output,
                         static_cast<int>(count), mpi_type(type), comm_),
            detail::kAllToAll);
      return;
    }
    finish(start_all_to_all(input, output, count, type));
  }

  RequestPtr all_to_all_async(const void* input, void* output, std::size_t count,
                              DataType type) override {
    check_all_to_all(input, output, count, type);
    return start_all_to_all(input, output, count, type);
  }

  // ---- broadcast, barrier ----

  void broadcast(void* buffer, std::size_t count, DataType type, int root) override {
    const auto operation = detail::kBroadcast;
    check_usable(operation);
    size_of(type);
    detail::check_rank(context(), operation, root, "root");
    detail::check_buffer(context(), operation, buffer, count, "buffer");
    check_count(operation, count);
    if (direct()) {
      check(MPI_Bcast(buffer, static_cast<int>(count), mpi_type(type), root, comm_), operation);
      return;
    }
    auto request = make_request(std::string(operation));
    {
      auto lock = runtime().lock();
      check(MPI_Ibcast(buffer, static_cast<int>(count), mpi_type(type), root, comm_,
                       add_handle(*request)),
            operation);
    }
    finish(std::move(request));
  }

  void barrier() override {
    check_usable(detail::kBarrier);
    if (direct()) {
      check(MPI_Barrier(comm_), detail::kBarrier);
      return;
    }
    finish(start_barrier(std::string(detail::kBarrier)));
  }

  // ---- point to point ----

  void send(const void* buffer, std::size_t count, DataType type, int peer, int tag) override {
    const std::string operation = detail::send_name(peer, tag);
    check_point_to_point(operation, buffer, count, type, peer, tag);
    if (direct()) {
      check(MPI_Send(buffer, static_cast<int>(count), mpi_type(type), peer, tag, comm_),
            operation);
      return;
    }
    finish(start_send(operation, buffer, count, type, peer, tag));
  }

  void recv(void* buffer, std::size_t count, DataType type, int peer, int tag) override {
    const std::string operation = detail::recv_name(peer, tag);
    check_point_to_point(operation, buffer, count, type, peer, tag);
    if (direct()) {
      MPI_Status status;
      const int rc =
          MPI_Recv(buffer, static_cast<int>(count), mpi_type(type), peer, tag, comm_, &status);
      int error_class = MPI_SUCCESS;
      MPI_Error_class(rc, &error_class);
      if (error_class == MPI_ERR_TRUNCATE) {
        context().fail(operation, "the matching send sent more than this recv expects (" +
                                      mpi_error_string(rc) + ")");
      }
      check(rc, operation);
      check_received_count(operation, status, count, type);
      return;
    }
    finish(start_recv(operation, buffer, count, type, peer, tag));
  }

  RequestPtr send_async(const void* buffer, std::size_t count, DataType type, int peer,
                        int tag) override {
    const std::string operation = detail::send_name(peer, tag);
    check_point_to_point(operation, buffer, count, type, peer, tag);
    return start_send(operation, buffer, count, type, peer, tag);
  }

  RequestPtr recv_async(void* buffer, std::size_t count, DataType type, int peer,
                        int tag) override {
    const std::string operation = detail::recv_name(peer, tag);
    check_point_to_point(operation, buffer, count, type, peer, tag);
    return start_recv(operation, buffer, count, type, peer, tag);
  }

  void send_recv(const void* send_buffer, std::size_t send_count, int send_peer,
                 void* recv_buffer, std::size_t recv_count, int recv_peer, DataType type,
                 int tag) override {
    const std::string operation =
        detail::send_name(send_peer, tag) + " and " + detail::recv_name(recv_peer, tag);
    check_point_to_point(operation, send_buffer, send_count, type, send_peer, tag);
    check_point_to_point(operation, recv_buffer, recv_count, type, recv_peer, tag);
    detail::check_disjoint(context(), operation, send_buffer, send_count * size_of(type),
                           recv_buffer, recv_count * size_of(type));
    const MPI_Datatype datatype = mpi_type(type);
    if (direct()) {
      MPI_Status status;
      check(MPI_Sendrecv(send_buffer, static_cast<int>(send_count), datatype, send_peer, tag,
                         recv_buffer, static_cast<int>(recv_count), datatype, recv_peer, tag,
                         comm_, &status),
            operation);
      check_received_count(operation, status, recv_count, type);
      return;
    }
    auto request = make_request(operation);
    {
      auto lock = runtime().lock();
      check(MPI_Irecv(recv_buffer, static_cast<int>(recv_count), datatype, recv_peer, tag, comm_,
                      add_handle(*request)),
            operation);
      check(MPI_Isend(send_buffer, static_cast<int>(send_count), datatype, send_peer, tag, comm_,
                      add_handle(*request)),
            operation);
    }
    request->set_completion([this_group = group_, operation, recv_count,
                             type](const std::vector<MPI_Status>& statuses) {
      check_received_count(this_group->context, operation, statuses.front(), recv_count, type);
    });
    finish(std::move(request));
  }

  // ---- split ----

  std::unique_ptr<Communicator> split(int color, int key) override {
    check_usable(detail::kSplit);
    detail::check_color(context(), color);
    // MPI_Comm_split blocks without a timeout: meet in a bounded barrier first, so a missing
    // peer shows up as CommTimeout here instead of a hang inside MPI_Comm_split.
    if (!direct()) {
      finish(start_barrier("split (meeting the other ranks)"));
    }
    MPI_Comm new_comm = MPI_COMM_NULL;
    {
      auto lock = runtime().lock();
      check(MPI_Comm_split(comm_, color == kNoGroup ? MPI_UNDEFINED : color, key, &new_comm),
            detail::kSplit);
    }
    if (new_comm == MPI_COMM_NULL) {
      return nullptr;
    }
    return std::make_unique<MpiCommunicator>(group_->runtime, new_comm, timeout_seconds());
  }

 private:
  const ErrorContext& context() const { return group_->context; }
  MpiRuntime& runtime() const { return *group_->runtime; }

  // Blocking calls go straight to MPI's blocking functions when nothing needs polling.
  bool direct() const { return group_->timeout_seconds.load() == 0 && !runtime().serialised(); }

  void check(int rc, std::string_view operation) const {
    if (rc != MPI_SUCCESS) {
      context().fail(operation, "MPI error: " + mpi_error_string(rc));
    }
  }

  void check_usable(std::string_view operation) {
    std::lock_guard guard(mutex_);
    if (!broken_.empty()) {
      context().fail(operation, "this communicator is unusable after an earlier timeout (" +
                                    broken_ + ")");
    }
  }

  void check_count(std::string_view operation, std::size_t count) const {
    if (count > static_cast<std::size_t>(INT_MAX)) {
      context().fail(operation, "count " + std::to_string(count) +
                                    " exceeds the MPI limit of " + std::to_string(INT_MAX) +
                                    " elements per call; split the transfer");
    }
  }

  static void check_received_count(const ErrorContext& context, std::string_view operation,
                                   const MPI_Status& status, std::size_t count, DataType type) {
    int received = 0;
    MPI_Get_count(&status, mpi_type(type), &received);
    if (received == MPI_UNDEFINED || static_cast<std::size_t>(received) != count) {
      context.fail(operation, "the recv expects " + std::to_string(count) + " " +
                                  std::string(to_string(type)) + " but the message held " +
                                  (received == MPI_UNDEFINED ? std::string("a different type")
                                                             : std::to_string(received)));
    }
  }
  void check_received_count(std::string_view operation, const MPI_Status& status,
                            std::size_t count, DataType type) const {
    check_received_count(context(), operation, status, count, type);
  }

  void check_all_reduce(const void* buffer, std::size_t count, DataType type, ReduceOp op) {
    const auto operation = detail::kAllReduce;
    check_usable(operation);
    detail::check_reduction(context(), operation, type, op);
    detail::check_buffer(context(), operation, buffer, count, "buffer");
    check_count(operation, count);
  }

  void check_reduce_scatter(const void* input, void* output, std::size_t count, DataType type,
                            ReduceOp op) {
    const auto operation = detail::kReduceScatter;
    check_usable(operation);
    detail::check_reduction(context(), operation, type, op);
    detail::check_buffer(context(), operation, input, count, "input");
    detail::check_buffer(context(), operation, output, count, "output");
    check_count(operation, count);
    const std::size_t bytes = count * size_of(type);
    detail::check_disjoint(context(), operation, input, bytes * static_cast<std::size_t>(size_),
                           output, bytes);
  }

  // Returns what to pass as MPI's send buffer (MPI_IN_PLACE for the in-place form).
  const void* check_all_gather(const void* input, void* output, std::size_t count,
                               DataType type) {
    const auto operation = detail::kAllGather;
    check_usable(operation);
    detail::check_buffer(context(), operation, input, count, "input");
    detail::check_buffer(context(), operation, output, count, "output");
    check_count(operation, count);
    if (detail::is_in_place_all_gather(input, output, count, type, rank_)) {
      return MPI_IN_PLACE;
    }
    const std::size_t bytes = count * size_of(type);
    detail::check_disjoint(context(), operation, input, bytes, output,
                           bytes * static_cast<std::size_t>(size_));
    return input;
  }

  void check_all_to_all(const void* input, void* output, std::size_t count, DataType type) {
    const auto operation = detail::kAllToAll;
    check_usable(operation);
    detail::check_buffer(context(), operation, input, count, "input");
    detail::check_buffer(context(), operation, output, count, "output");
    check_count(operation, count);
    const std::size_t bytes = count * size_of(type) * static_cast<std::size_t>(size_);
    detail::check_disjoint(context(), operation, input, bytes, output, bytes);
  }

  void check_point_to_point(const std::string& operation, const void* buffer, std::size_t count,
                            DataType type, int peer, int tag) {
    check_usable(operation);
    size_of(type);
    detail::check_rank(context(), operation, peer, "peer");
    detail::check_tag(context(), operation, tag);
    detail::check_buffer(context(), operation, buffer, count, "buffer");
    check_count(operation, count);
    if (tag > tag_upper_bound_) {
      context().fail(operation, "tag " + std::to_string(tag) + " exceeds this MPI's limit of " +
                                    std::to_string(tag_upper_bound_));
    }
  }

  std::unique_ptr<MpiRequest> make_request(std::string operation) const {
    return std::make_unique<MpiRequest>(group_, std::move(operation));
  }

  static MPI_Request* add_handle(MpiRequest& request) {
    request.handles().push_back(MPI_REQUEST_NULL);
    return &request.handles().back();
  }

  void finish_average(void* buffer, std::size_t count, DataType type, ReduceOp op) const {
    if (op == ReduceOp::Average) {
      detail::divide_in_place(buffer, count, type, size_);
    }
  }

  Completion average_completion(void* buffer, std::size_t count, DataType type,
                                ReduceOp op) const {
    if (op != ReduceOp::Average) {
      return {};
    }
    return [buffer, count, type, divisor = size_](const std::vector<MPI_Status>&) {
      detail::divide_in_place(buffer, count, type, divisor);
    };
  }

  std::unique_ptr<MpiRequest> start_all_reduce(void* buffer, std::size_t count, DataType type,
                                               ReduceOp op) {
    auto request = make_request(std::string(detail::kAllReduce));
    {
      auto lock = runtime().lock();
      check(MPI_Iallreduce(MPI_IN_PLACE, buffer, static_cast<int>(count), mpi_type(type),
                           mpi_op(op), comm_, add_handle(*request)),
            detail::kAllReduce);
    }
    request->set_completion(average_completion(buffer, count, type, op));
    return request;
  }

  std::unique_ptr<MpiRequest> start_reduce_scatter(const void* input, void* output,
                                                   std::size_t count, DataType type,
                                                   ReduceOp op) {
    auto request = make_request(std::string(detail::kReduceScatter));
    {
      auto lock = runtime().lock();
      check(MPI_Ireduce_scatter_block(input, output, static_cast<int>(count), mpi_type(type),
                                      mpi_op(op), comm_, add_handle(*request)),
            detail::kReduceScatter);
    }
    request->set_completion(average_completion(output, count, type, op));
    return request;
  }

  std::unique_ptr<MpiRequest> start_all_gather(const void* send, void* output, std::size_t count,
                                               DataType type) {
    auto request = make_request(std::string(detail::kAllGather));
    auto lock = runtime().lock();
    check(MPI_Iallgather(send, static_cast<int>(count), mpi_type(type), output,
                         static_cast<int>(count), mpi_type(type), comm_, add_handle(*request)),
          detail::kAllGather);
    return request;
  }

  std::unique_ptr<MpiRequest> start_all_to_all(const void* input, void* output,
                                               std::size_t count, DataType type) {
    auto request = make_request(std::string(detail::kAllToAll));
    auto lock = runtime().lock();
    check(MPI_Ialltoall(input, static_cast<int>(count), mpi_type(type), output,
                        static_cast<int>(count), mpi_type(type), comm_, add_handle(*request)),
          detail::kAllToAll);
    return request;
  }

  std::unique_ptr<MpiRequest> start_barrier(std::string operation) {
    auto request = make_request(operation);
    auto lock = runtime().lock();
    check(MPI_Ibarrier(comm_, add_handle(*request)), operation);
    return request;
  }

  std::unique_ptr<MpiRequest> start_send(const std::string& operation, const void* buffer,
                                         std::size_t count, DataType type, int peer, int tag) {
    auto request = make_request(operation);
    auto lock = runtime().lock();
    check(MPI_Isend(buffer, static_cast<int>(count), mpi_type(type), peer, tag, comm_,
                    add_handle(*request)),
          operation);
    return request;
  }

  std::unique_ptr<MpiRequest> start_recv(const std::string& operation, void* buffer,
                                         std::size_t count, DataType type, int peer, int tag) {
    auto request = make_request(operation);
    {
      auto lock = runtime().lock();
      check(MPI_Irecv(buffer, static_cast<int>(count), mpi_type(type), peer, tag, comm_,
                      add_handle(*request)),
            operation);
    }
    request->set_completion([group = group_, operation, count,
                             type](const std::vector<MPI_Status>& statuses) {
      check_received_count(group->context, operation, statuses.front(), count, type);
    });
    return request;
  }

  // Waits for a blocking call's request. On timeout the communicator becomes unusable and the
  // transfer is kept (not waited for again) until the communicator is destroyed.
  void finish(std::unique_ptr<MpiRequest> request) {
    try {
      request->wait();
    } catch (const CommTimeout& timeout) {
      std::lock_guard guard(mutex_);
      broken_ = timeout.what();
      orphans_.push_back(std::move(request));
      throw;
    }
  }

  static bool test_quietly(MpiRequest& request) {
    try {
      return request.test();
    } catch (const CommError&) {
      return true;  // completed with an error: nothing left in flight
    }
  }

  MPI_Comm comm_;
  std::shared_ptr<GroupState> group_;
  int rank_ = 0;
  int size_ = 1;
  int tag_upper_bound_ = 32767;  // the MPI standard's guaranteed minimum
  std::mutex mutex_;  // guards broken_ and orphans_
  std::string broken_;
  std::vector<std::unique_ptr<MpiRequest>> orphans_;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_world_communicator() {
  const double timeout = timeout_seconds_from_environment();  // reject a bad value before MPI_Init
  std::shared_ptr<MpiRuntime> runtime = MpiRuntime::acquire();
  MPI_Comm world = MPI_COMM_NULL;
  {
    auto lock = runtime->lock();
    const int rc = MPI_Comm_dup(MPI_COMM_WORLD, &world);
    if (rc != MPI_SUCCESS) {
      throw CommError("rank " + std::to_string(runtime->world_rank()) +
                      ": duplicating MPI_COMM_WORLD failed: " + mpi_error_string(rc));
    }
  }
  return std::make_unique<MpiCommunicator>(std::move(runtime), world, timeout);
}

std::unique_ptr<Communicator> make_world_communicator() {
  if (detect_mpi_launch().launched) {
    return make_mpi_world_communicator();
  }
  return make_single_process_communicator();
}

MpiRuntimeInfo mpi_runtime_info() {
  if (!mpi_initialised() || mpi_finalised()) {
    throw CommError("MPI is not initialised: create the world communicator first "
                    "(make_mpi_world_communicator)");
  }
  MpiRuntimeInfo info;
  {
    std::lock_guard guard(g_runtime_mutex);
    info.initialised_by_tandem = g_initialised_by_tandem;
  }
  MPI_Query_thread(&info.thread_level);
  info.thread_level_name = thread_level_name(info.thread_level);
  info.calls_serialised = info.thread_level < MPI_THREAD_MULTIPLE;
  char version[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  MPI_Get_library_version(version, &length);
  std::string text(version, static_cast<std::size_t>(std::max(length, 0)));
  info.library_version = text.substr(0, text.find_first_of("\r\n"));
  while (!info.library_version.empty() &&
         (info.library_version.back() == ',' || info.library_version.back() == ' ')) {
    info.library_version.pop_back();
  }
  return info;
}

void abort_mpi_world(int exit_code) {
  if (mpi_initialised() && !mpi_finalised()) {
    MPI_Abort(MPI_COMM_WORLD, exit_code);
  }
  std::_Exit(exit_code);
}

}  // namespace tandem::comm
