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

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace tandem::comm {

enum class DataType : std::uint8_t { Float32, Float64, Int32, Int64, UInt8 };
enum class ReduceOp : std::uint8_t { Sum, Average, Max, Min };

std::size_t size_of(DataType type);

class CommError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A pending non-blocking operation. wait() blocks until it completes; destroying an unfinished
// request waits for it (a buffer must never be freed under an in-flight transfer).
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
  // ordered by `key` (then by rank). Every rank must call it.
  virtual std::unique_ptr<Communicator> split(int color, int key) = 0;
};

// A communicator for a world of one process: collectives are identities (reduce_scatter and
// all_gather copy), send/recv to self are matched through an internal queue.
std::unique_ptr<Communicator> make_single_process_communicator();

}  // namespace tandem::comm
