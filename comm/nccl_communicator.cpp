// NCCL backend. Compiled and linked only: see the status note in nccl_communicator.hpp.

#include "comm/nccl_communicator.hpp"

#include <cuda_runtime.h>
#include <nccl.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <utility>

#include "comm/checks.hpp"
#include "comm/launch.hpp"

#if NCCL_VERSION_CODE < 21800
#error "the NCCL backend needs NCCL 2.18 or newer (ncclCommSplit, non-blocking communicators)"
#endif

namespace tandem::comm {
namespace {

using detail::ErrorContext;
using detail::poll_until_done;

ncclDataType_t nccl_type(DataType type) {
  switch (type) {
    case DataType::Float32: return ncclFloat32;
    case DataType::Float64: return ncclFloat64;
    case DataType::Int32: return ncclInt32;
    case DataType::Int64: return ncclInt64;
    case DataType::UInt8: return ncclUint8;
  }
  throw CommError("unknown DataType value " + std::to_string(static_cast<int>(type)));
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return ncclSum;
    case ReduceOp::Average: return ncclAvg;
    case ReduceOp::Max: return ncclMax;
    case ReduceOp::Min: return ncclMin;
  }
  throw CommError("unknown ReduceOp value " + std::to_string(static_cast<int>(op)));
}

ncclConfig_t non_blocking_config() {
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  return config;
}

// Everything a communicator owns; shared with its requests, which may outlive it.
struct NcclState {
  std::mutex mutex;  // one caller at a time
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  int device = 0;
  float* scratch = nullptr;  // one float on the device, for barrier()
  ErrorContext context;
  std::atomic<double> timeout_seconds{kDefaultTimeoutSeconds};
  std::string broken;  // set once the communicator was aborted

  NcclState() = default;
  NcclState(const NcclState&) = delete;
  NcclState& operator=(const NcclState&) = delete;

  ~NcclState() {
    cudaSetDevice(device);
    if (comm != nullptr) {
      try {
        synchronise("destroying the communicator");
        settle(ncclCommFinalize(comm), "destroying the communicator");
      } catch (const std::exception& error) {
        spdlog::error("{}", error.what());
      }
      if (comm != nullptr) {
        ncclCommDestroy(comm);
      }
    }
    if (scratch != nullptr) {
      cudaFree(scratch);
    }
    if (stream != nullptr) {
      cudaStreamDestroy(stream);
    }
  }

  void use_device() const { cudaSetDevice(device); }

  void check_usable(std::string_view operation) const {
    if (!broken.empty()) {
      context.fail(operation, "this communicator is unusable after an earlier error (" + broken +
                                  ")");
    }
  }

  void check_cuda(cudaError_t error, std::string_view operation) const {
    if (error != cudaSuccess) {
      context.fail(operation, std::string("CUDA error: ") + cudaGetErrorString(error));
    }
  }

  // Aborts the NCCL communicator (releasing kernels stuck in a collective) and remembers why.
  void abort(const std::string& reason) {
    if (comm != nullptr) {
      ncclCommAbort(comm);
      comm = nullptr;
    }
    broken = reason;
  }

  [[noreturn]] void time_out(std::string_view operation) {
    try {
      context.time_out(operation, timeout_seconds.load());
    } catch (const CommTimeout& timeout) {
      abort(timeout.what());
      throw;
    }
  }

  [[noreturn]] void fail_nccl(ncclResult_t result, std::string_view operation) {
    std::string detail = std::string("NCCL error: ") + ncclGetErrorString(result);
    if (comm != nullptr) {
      const char* last = ncclGetLastError(comm);
      if (last != nullptr && *last != '\0') {
        detail += std::string(" (") + last + ")";
      }
    }
    abort(detail);
    context.fail(operation, detail);
  }

  // A non-blocking communicator may still be working on a call when it returns: poll until it is
  // done (the NCCL rule before issuing anything else on the communicator).
  void settle(ncclResult_t result, std::string_view operation) {
    if (result == ncclInProgress) {
      const bool done = poll_until_done(
          [&] {
            ncclCommGetAsyncError(comm, &result);
            return result != ncclInProgress;
          },
          timeout_seconds.load());
      if (!done) {
        time_out(operation);
      }
    }
    if (result != ncclSuccess) {
      fail_nccl(result, operation);
    }
  }

  // Polls `event` until the GPU passed it, watching for asynchronous NCCL errors.
  void wait_event(cudaEvent_t event, std::string_view operation) {
    use_device();
    cudaError_t status = cudaSuccess;
    ncclResult_t nccl_status = ncclSuccess;
    const bool done = poll_until_done(
        [&] {
          status = cudaEventQuery(event);
          if (status != cudaErrorNotReady) {
            return true;
          }
          if (comm != nullptr) {
            ncclCommGetAsyncError(comm, &nccl_status);
          }
          return nccl_status != ncclSuccess && nccl_status != ncclInProgress;
        },
        timeout_seconds.load());
    if (!done) {
      time_out(operation);
    }
    if (nccl_status != ncclSuccess && nccl_status != ncclInProgress) {
      fail_nccl(nccl_status, operation);
    }
    check_cuda(status, operation);
  }

  // Waits until everything enqueued on the stream so far has finished.
  void synchronise(std::string_view operation) {
    cudaEvent_t event = nullptr;
    check_cuda(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), operation);
    try {
      check_cuda(cudaEventRecord(event, stream), operation);
      wait_event(event, operation);
    } catch (...) {
      cudaEventDestroy(event);
      throw;
    }
    cudaEventDestroy(event);
  }
};

class NcclRequest final : public Request {
 public:
  NcclRequest(std::shared_ptr<NcclState> state, cudaEvent_t event, std::string operation)
      : state_(std::move(state)), event_(event), operation_(std::move(operation)) {}
  NcclRequest(const NcclRequest&) = delete;
  NcclRequest& operator=(const NcclRequest&) = delete;

  ~NcclRequest() override {
    if (!done_) {
      try {
        wait();
      } catch (const std::exception& error) {
        spdlog::error("{} (while destroying an unfinished request)", error.what());
      }
    }
    cudaEventDestroy(event_);
  }

  bool test() override {
    if (done_) {
      return true;
    }
    std::lock_guard guard(state_->mutex);
    state_->use_device();
    const cudaError_t status = cudaEventQuery(event_);
    if (status == cudaErrorNotReady) {
      return false;
    }
    done_ = true;
    state_->check_cuda(status, operation_);
    return true;
  }

  void wait() override {
    if (done_) {
      return;
    }
    std::lock_guard guard(state_->mutex);
    if (!state_->broken.empty()) {
      // The communicator was aborted: the work either finished or never will.
      state_->use_device();
      if (cudaEventQuery(event_) == cudaSuccess) {
        done_ = true;
        return;
      }
      done_ = true;  // nothing left to wait for
      state_->check_usable(operation_);
    }
    state_->wait_event(event_, operation_);
    done_ = true;
  }

 private:
  std::shared_ptr<NcclState> state_;
  cudaEvent_t event_;
  std::string operation_;
  bool done_ = false;
};

class NcclCommunicatorImpl final : public NcclCommunicator {
 public:
  explicit NcclCommunicatorImpl(std::shared_ptr<NcclState> state) : state_(std::move(state)) {}

  int rank() const override { return state_->context.rank; }
  int size() const override { return state_->context.size; }
  std::string backend() const override { return "nccl"; }
  void* cuda_stream() const override { return state_->stream; }
  int cuda_device() const override { return state_->device; }

  void set_timeout_seconds(double seconds) override {
    detail::check_timeout_value(seconds);
    state_->timeout_seconds = seconds;
  }
  double timeout_seconds() const override { return state_->timeout_seconds.load(); }

  void all_reduce(void* buffer, std::size_t count, DataType type, ReduceOp op) override {
    run(detail::kAllReduce, check_all_reduce(buffer, count, type, op), /*blocking=*/true);
  }
  RequestPtr all_reduce_async(void* buffer, std::size_t count, DataType type,
                              ReduceOp op) override {
    return run(detail::kAllReduce, check_all_reduce(buffer, count, type, op), false);
  }

  void reduce_scatter(const void* input, void* output, std::size_t count, DataType type,
                      ReduceOp op) override {
    run(detail::kReduceScatter, check_reduce_scatter(input, output, count, type, op), true);
  }
  RequestPtr reduce_scatter_async(const void* input, void* output, std::size_t count,
                                  DataType type, ReduceOp op) override {
    return run(detail::kReduceScatter, check_reduce_scatter(input, output, count, type, op),
               false);
  }

  void all_gather(const void* input, void* output, std::size_t count, DataType type) override {
    run(detail::kAllGather, check_all_gather(input, output, count, type), true);
  }
  RequestPtr all_gather_async(const void* input, void* output, std::size_t count,
                              DataType type) override {
    return run(detail::kAllGather, check_all_gather(input, output, count, type), false);
  }

  void all_to_all(const void* input, void* output, std::size_t count, DataType type) override {
    run(detail::kAllToAll, check_all_to_all(input, output, count, type), true);
  }
  RequestPtr all_to_all_async(const void* input, void* output, std::size_t count,
                              DataType type) override {
    return run(detail::kAllToAll, check_all_to_all(input, output, count, type), false);
  }

  void broadcast(void* buffer, std::size_t count, DataType type, int root) override {
    const auto operation = detail::kBroadcast;
    size_of(type);
    detail::check_rank(context(), operation, root, "root");
    detail::check_buffer(context(), operation, buffer, count, "buffer");
    run(operation,
        [=, this] {
          return ncclBroadcast(buffer, buffer, count, nccl_type(type), root, state_->comm,
                               state_->stream);
        },
        true);
  }

  void barrier() override {
    run(detail::kBarrier,
        [this] {
          return ncclAllReduce(state_->scratch, state_->scratch, 1, ncclFloat32, ncclSum,
                               state_->comm, state_->stream);
        },
        true);
  }

  void send(const void* buffer, std::size_t count, DataType type, int peer, int tag) override {
    const std::string operation = detail::send_name(peer, tag);
    run(operation, check_send(operation, buffer, count, type, peer, tag), true);
  }
  void recv(void* buffer, std::size_t count, DataType type, int peer, int tag) override {
    const std::string operation = detail::recv_name(peer, tag);
    run(operation, check_recv(operation, buffer, count, type, peer, tag), true);
  }
  RequestPtr send_async(const void* buffer, std::size_t count, DataType type, int peer,
                        int tag) override {
    const std::string operation = detail::send_name(peer, tag);
    return run(operation, check_send(operation, buffer, count, type, peer, tag), false);
  }
  RequestPtr recv_async(void* buffer, std::size_t count, DataType type, int peer,
                        int tag) override {
    const std::string operation = detail::recv_name(peer, tag);
    return run(operation, check_recv(operation, buffer, count, type, peer, tag), false);
  }

  void send_recv(const void* send_buffer, std::size_t send_count, int send_peer,
                 void* recv_buffer, std::size_t recv_count, int recv_peer, DataType type,
                 int tag) override {
    const std::string operation =
        detail::send_name(send_peer, tag) + " and " + detail::recv_name(recv_peer, tag);
    auto enqueue_send = check_send(operation, send_buffer, send_count, type, send_peer, tag);
    auto enqueue_recv = check_recv(operation, recv_buffer, recv_count, type, recv_peer, tag);
    detail::check_disjoint(context(), operation, send_buffer, send_count * size_of(type),
                           recv_buffer, recv_count * size_of(type));
    run(operation,
        [=] {
          ncclResult_t result = ncclGroupStart();
          if (result == ncclSuccess) {
            result = enqueue_send();
          }
          const ncclResult_t received = enqueue_recv();
          const ncclResult_t ended = ncclGroupEnd();
          return result != ncclSuccess ? result : received != ncclSuccess ? received : ended;
        },
        true);
  }

  std::unique_ptr<Communicator> split(int color, int key) override {
    std::lock_guard guard(state_->mutex);
    state_->check_usable(detail::kSplit);
    detail::check_color(context(), color);
    state_->use_device();
    ncclConfig_t config = non_blocking_config();
    ncclComm_t new_comm = nullptr;
    state_->settle(ncclCommSplit(state_->comm, color == kNoGroup ? NCCL_SPLIT_NOCOLOR : color,
                                 key, &new_comm, &config),
                   detail::kSplit);
    if (new_comm == nullptr) {
      return nullptr;
    }
    auto child = std::make_shared<NcclState>();
    child->device = state_->device;
    child->timeout_seconds = state_->timeout_seconds.load();
    child->comm = new_comm;
    int rank = 0;
    int size = 1;
    child->settle(ncclCommUserRank(new_comm, &rank), detail::kSplit);
    child->settle(ncclCommCount(new_comm, &size), detail::kSplit);
    child->context = ErrorContext{state_->context.world_rank, rank, size};
    finish_setup(*child);
    return std::make_unique<NcclCommunicatorImpl>(std::move(child));
  }

  // Creates the stream and the barrier scratch of a freshly initialised communicator.
  static void finish_setup(NcclState& state) {
    state.check_cuda(cudaStreamCreateWithFlags(&state.stream, cudaStreamNonBlocking),
                     "creating the communicator's CUDA stream");
    state.check_cuda(cudaMalloc(reinterpret_cast<void**>(&state.scratch), sizeof(float)),
                     "allocating the barrier scratch");
  }

 private:
  using Enqueue = std::function<ncclResult_t()>;

  const ErrorContext& context() const { return state_->context; }

  // Enqueues work on the stream, then waits for it (blocking) or returns a request for it.
  RequestPtr run(std::string_view operation, const Enqueue& enqueue, bool blocking) {
    std::lock_guard guard(state_->mutex);
    state_->check_usable(operation);
    state_->use_device();
    state_->settle(enqueue(), operation);
    cudaEvent_t event = nullptr;
    state_->check_cuda(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), operation);
    const cudaError_t recorded = cudaEventRecord(event, state_->stream);
    if (recorded != cudaSuccess) {
      cudaEventDestroy(event);
      state_->check_cuda(recorded, operation);
    }
    if (!blocking) {
      return std::make_unique<NcclRequest>(state_, event, std::string(operation));
    }
    try {
      state_->wait_event(event, operation);
    } catch (...) {
      cudaEventDestroy(event);
      throw;
    }
    cudaEventDestroy(event);
    return nullptr;
  }

  Enqueue check_all_reduce(void* buffer, std::size_t count, DataType type, ReduceOp op) const {
    detail::check_reduction(context(), detail::kAllReduce, type, op);
    detail::check_buffer(context(), detail::kAllReduce, buffer, count, "buffer");
    return [=, this] {
      return ncclAllReduce(buffer, buffer, count, nccl_type(type), nccl_op(op), state_->comm,
                           state_->stream);
    };
  }

  Enqueue check_reduce_scatter(const void* input, void* output, std::size_t count, DataType type,
                               ReduceOp op) const {
    const auto operation = detail::kReduceScatter;
    detail::check_reduction(context(), operation, type, op);
    detail::check_buffer(context(), operation, input, count, "input");
    detail::check_buffer(context(), operation, output, count, "output");
    const std::size_t bytes = count * size_of(type);
    detail::check_disjoint(context(), operation, input, bytes * static_cast<std::size_t>(size()),
                           output, bytes);
    return [=, this] {
      return ncclReduceScatter(input, output, count, nccl_type(type), nccl_op(op), state_->comm,
                               state_->stream);
    };
  }

  Enqueue check_all_gather(const void* input, void* output, std::size_t count,
                           DataType type) const {
    const auto operation = detail::kAllGather;
    detail::check_buffer(context(), operation, input, count, "input");
    detail::check_buffer(context(), operation, output, count, "output");
    if (!detail::is_in_place_all_gather(input, output, count, type, rank())) {
      const std::size_t bytes = count * size_of(type);
      detail::check_disjoint(context(), operation, input, bytes, output,
                             bytes * static_cast<std::size_t>(size()));
    }
    return [=, this] {
      return ncclAllGather(input, output, count, nccl_type(type), state_->comm, state_->stream);
    };
  }

  Enqueue check_all_to_all(const void* input, void* output, std::size_t count,
                           DataType type) const {
    const auto operation = detail::kAllToAll;
    detail::check_buffer(context(), operation, input, count, "input");
    detail::check_buffer(context(), operation, output, count, "output");
    const std::size_t block = count * size_of(type);
    const std::size_t bytes = block * static_cast<std::size_t>(size());
    detail::check_disjoint(context(), operation, input, bytes, output, bytes);
    return [=, this] {
      const auto* in = static_cast<const unsigned char*>(input);
      auto* out = static_cast<unsigned char*>(output);
      ncclResult_t result = ncclGroupStart();
      for (int peer = 0; peer < size() && result == ncclSuccess; ++peer) {
        const std::size_t offset = block * static_cast<std::size_t>(peer);
        result = ncclSend(in + offset, count, nccl_type(type), peer, state_->comm, state_->stream);
        if (result == ncclSuccess) {
          result =
              ncclRecv(out + offset, count, nccl_type(type), peer, state_->comm, state_->stream);
        }
      }
      const ncclResult_t ended = ncclGroupEnd();
      return result != ncclSuccess ? result : ended;
    };
  }

  void check_point_to_point(const std::string& operation, const void* buffer, std::size_t count,
                            DataType type, int peer, int tag) const {
    size_of(type);
    detail::check_rank(context(), operation, peer, "peer");
    detail::check_tag(context(), operation, tag);
    detail::check_buffer(context(), operation, buffer, count, "buffer");
  }

  Enqueue check_send(const std::string& operation, const void* buffer, std::size_t count,
                     DataType type, int peer, int tag) const {
    check_point_to_point(operation, buffer, count, type, peer, tag);
    return [=, this] {
      return ncclSend(buffer, count, nccl_type(type), peer, state_->comm, state_->stream);
    };
  }

  Enqueue check_recv(const std::string& operation, void* buffer, std::size_t count,
                     DataType type, int peer, int tag) const {
    check_point_to_point(operation, buffer, count, type, peer, tag);
    return [=, this] {
      return ncclRecv(buffer, count, nccl_type(type), peer, state_->comm, state_->stream);
    };
  }

  std::shared_ptr<NcclState> state_;
};

}  // namespace

std::unique_ptr<NcclCommunicator> make_nccl_communicator(Communicator& bootstrap,
                                                         int cuda_device) {
  const MpiLaunch launch = detect_mpi_launch();
  auto state = std::make_shared<NcclState>();
  state->context = ErrorContext{launch.launched ? launch.world_rank : bootstrap.rank(),
                                bootstrap.rank(), bootstrap.size()};
  state->timeout_seconds = bootstrap.timeout_seconds();
  const std::string_view operation = "NCCL initialisation";

  int device_count = 0;
  const cudaError_t counted = cudaGetDeviceCount(&device_count);
  if (counted != cudaSuccess || device_count == 0) {
    state->context.fail(operation, std::string("no usable CUDA device (cudaGetDeviceCount: ") +
                                       cudaGetErrorString(counted) + ", " +
                                       std::to_string(device_count) + " devices)");
  }
  state->device = cuda_device >= 0 ? cuda_device : launch.local_rank % device_count;
  if (state->device >= device_count) {
    state->context.fail(operation, "CUDA device " + std::to_string(state->device) +
                                       " does not exist (" + std::to_string(device_count) +
                                       " visible)");
  }
  state->check_cuda(cudaSetDevice(state->device), operation);

  ncclUniqueId id{};
  if (bootstrap.rank() == 0) {
    const ncclResult_t made = ncclGetUniqueId(&id);
    if (made != ncclSuccess) {
      state->context.fail(operation,
                          std::string("ncclGetUniqueId: ") + ncclGetErrorString(made));
    }
  }
  bootstrap.broadcast(&id, sizeof(id), DataType::UInt8, 0);

  ncclConfig_t config = non_blocking_config();
  ncclComm_t comm = nullptr;
  const ncclResult_t started =
      ncclCommInitRankConfig(&comm, bootstrap.size(), id, bootstrap.rank(), &config);
  state->comm = comm;
  state->settle(started, operation);
  NcclCommunicatorImpl::finish_setup(*state);
  return std::make_unique<NcclCommunicatorImpl>(std::move(state));
}

}  // namespace tandem::comm
