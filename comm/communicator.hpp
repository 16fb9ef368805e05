#pragma once
// The communication interface the engine uses for every collective and point-to-point transfer.
// Backends: single_process (world of one, used by unit tests and one-rank runs), mpi (CPU
// processes under mpirun), nccl (GPUs). A Communicator spans a group of ranks; `split` makes
// sub-group communicators (tensor-, pipeline-, data-parallel groups).
//
// Buffers are raw pointers with an element count and a DataType so the same interface serves
// host memory (MPI) and device memory (NCCL). All calls are collective over the communicator
// unless they say otherwise. Errors (a dead peer, a mismatched call) throw CommError with a
// message naming the operation and the ranks involved.
//
// Rules every backend enforces the same way (so a program that runs on one backend runs on all):
// - ReduceOp::Average is defined for Float32 and Float64 only (it is a sum divided by size());
//   asking for it on an integer type throws CommError.
// - A null buffer is accepted only with count 0; zero-count calls are valid no-ops that still
//   synchronise like the non-empty call would.
// - Input and output buffers of reduce_scatter / all_gather / all_to_all must not overlap, except
//   the in-place all_gather where input == output + rank()*count (as in NCCL and MPI_IN_PLACE).
// - recv must name exactly the element count and type that the matching send sent.
// - Tags are >= 0. Messages between the same two ranks with the same tag arrive in send order.
// - Every rank issues the collectives of one communicator in the same order. Threads that run
//   concurrently (e.g. the engine's tp-comm and dp-comm streams) each use their own
//   communicator (split one per stream); the MPI backend supports that, see its header.
//
// Extensions to the original interface (existing signatures unchanged):
// - to_string(DataType), to_string(ReduceOp) for messages and logs.
// - CommTimeout, a CommError thrown when a wait gives up (a peer may have died).
// - kNoGroup: a split color meaning "this rank joins no sub-group"; split then returns nullptr.
// - send_recv: send to one peer and receive from another without deadlock (a ring or pair
//   exchange); the default implementation posts both asynchronously and waits for both.
// - all_to_all / all_to_all_async (the program IR has an all-to-all collective).
// - set_timeout_seconds / timeout_seconds: how long a wait may take before CommTimeout; the
//   initial value comes from TANDEM_COMM_TIMEOUT_S (see timeout_seconds_from_environment), and
//   sub-communicators inherit their parent's value when they are split off.
// - timeout_seconds_from_environment(), kDefaultTimeoutSeconds.
// The MPI and NCCL backends live in comm/mpi_communicator.hpp and comm/nccl_communicator.hpp;
// comm/launch.hpp tells whether the process was started by mpirun (to choose a backend).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::comm {

enum class DataType : std::uint8_t { Float32, Float64, Int32, Int64, UInt8 };
enum class ReduceOp : std::uint8_t { Sum, Average, Max, Min };

std::size_t size_of(DataType type);
std::string_view to_string(DataType type);
std::string_view to_string(ReduceOp op);

class CommError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A wait gave up after timeout_seconds(): a peer may have died or skipped the call. After a
// blocking call throws this, its communicator is unusable (every later call throws CommError);
// the run should report the message and abort (for MPI: abort_mpi_world).
class CommTimeout : public CommError {
 public:
  using CommError::CommError;
};

// How long waits may take before CommTimeout when nothing else is configured.
inline constexpr double kDefaultTimeoutSeconds = 600.0;

// Reads TANDEM_COMM_TIMEOUT_S: seconds (a positive decimal number, e.g. "600" or "2.5"), or "0"
// to disable the timeout (waits block indefinitely; the MPI backend then calls MPI's blocking
// functions directly). Unset or empty gives kDefaultTimeoutSeconds. Any other value throws
// CommError naming the variable, the value and what is valid.
double timeout_seconds_from_environment();

// The split color of a rank that joins no sub-group (MPI_UNDEFINED, NCCL_SPLIT_NOCOLOR).
inline constexpr int kNoGroup = -1;

// A pending non-blocking operation. wait() blocks until it completes; destroying an unfinished
// request waits for it (a buffer must never be freed under an in-flight transfer). Exception:
// once wait() has thrown CommTimeout, the destructor does not wait again (the run is broken and
// should abort; the buffer must stay alive until it does).
// A request may be waited on or tested from one thread at a time.
class Request {
 public:
  virtual ~Request() = default;
  virtual void wait() = 0;
  virtual bool test() = 0;  // true once complete
};
using RequestPtr = std::unique_ptr<Request>;

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Human-readable backend name: "single-process", "mpi", "nccl".
  virtual std::string backend() const = 0;

  // In place: every rank ends with the reduction of all ranks' `buffer`.
  virtual void all_reduce(void* buffer, std::size_t count, DataType type, ReduceOp op) = 0;
  virtual RequestPtr all_reduce_async(void* buffer, std::size_t count, DataType type,
                                      ReduceOp op) = 0;
  // input holds size()*count elements; rank r receives the reduction of block r into output
  // (count elements).
  virtual void reduce_scatter(const void* input, void* output, std::size_t count, DataType type,
                              ReduceOp op) = 0;
  virtual RequestPtr reduce_scatter_async(const void* input, void* output, std::size_t count,
                                          DataType type, ReduceOp op) = 0;
  // input holds count elements; output receives size()*count elements, rank r's block at r*count.
  virtual void all_gather(const void* input, void* output, std::size_t count, DataType type) = 0;
  virtual RequestPtr all_gather_async(const void* input, void* output, std::size_t count,
                                      DataType type) = 0;
  virtual void broadcast(void* buffer, std::size_t count, DataType type, int root) = 0;

  // Point to point (not collective): `peer` is a rank of this communicator.
  virtual void send(const void* buffer, std::size_t count, DataType type, int peer, int tag) = 0;
  virtual void recv(void* buffer, std::size_t count, DataType type, int peer, int tag) = 0;
  virtual RequestPtr send_async(const void* buffer, std::size_t count, DataType type, int peer,
                                int tag) = 0;
  virtual RequestPtr recv_async(void* buffer, std::size_t count, DataType type, int peer,
                                int tag) = 0;

  virtual void barrier() = 0;

  // Collective over this communicator: ranks passing the same `color` form a new communicator,
  // ordered by `key` (then by rank). Every rank must call it. Colors are >= 0, or kNoGroup for a
  // rank that joins no group (it gets nullptr back).
  virtual std::unique_ptr<Communicator> split(int color, int key) = 0;

  // ---- extensions (see the top of this file) ----

  // Not collective: sends send_count elements to send_peer and receives recv_count elements from
  // recv_peer, both with `tag`, without deadlocking when every rank of a ring or pair does the
  // same. The buffers must not overlap.
  virtual void send_recv(const void* send_buffer, std::size_t send_count, int send_peer,
                         void* recv_buffer, std::size_t recv_count, int recv_peer, DataType type,
                         int tag);

  // input holds size()*count elements, block p going to rank p; output receives size()*count
  // elements, block p coming from rank p. The default throws CommError (not implemented).
  virtual void all_to_all(const void* input, void* output, std::size_t count, DataType type);
  virtual RequestPtr all_to_all_async(const void* input, void* output, std::size_t count,
                                      DataType type);

  // Seconds a wait may take before CommTimeout; 0 means no timeout. Backends that never wait
  // for a peer (single-process) keep the value but never time out.
  virtual void set_timeout_seconds(double seconds);
  virtual double timeout_seconds() const;
};

// A communicator for a world of one process: collectives are identities (reduce_scatter and
// all_gather copy), send/recv to self are matched through an internal queue. A send to self
// completes at once (the message is buffered); a recv, or a wait on a recv request, with no
// matching send already posted throws CommError at once, since nothing else could ever send it.
// Destroying an unmatched recv request cancels it. Host memory only.
std::unique_ptr<Communicator> make_single_process_communicator();

}  // namespace tandem::comm
