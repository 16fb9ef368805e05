#pragma once
// The NCCL backend: GPUs, device buffers (every buffer passed to it is CUDA device memory).
//
// STATUS: compiled and linked in every build that finds CUDA and NCCL, but never run by the
// project's tests: the machines it was written on have no GPU. The only runtime test checks that
// creating it without a usable GPU throws a clear CommError. Treat it as unverified until it has
// run on GPUs; it follows NCCL's documented usage (2.18+ for ncclCommSplit).
//
// Creation is collective over `bootstrap`, a host communicator (MPI, or single-process for one
// GPU) spanning the same ranks: its rank 0 makes an ncclUniqueId and broadcasts it, then every
// rank joins with ncclCommInitRankConfig. Communicators are created non-blocking, so
// initialisation, every call and every wait poll ncclCommGetAsyncError and give up after
// timeout_seconds() (TANDEM_COMM_TIMEOUT_S, as in the MPI backend): the NCCL communicator is then
// aborted (ncclCommAbort, which also releases GPU kernels stuck in the collective), becomes
// unusable, and CommTimeout is thrown.
//
// Streams and ordering. Each communicator enqueues its work on its own CUDA stream
// (cuda_stream()). A blocking call returns once its work on that stream has finished; an async
// call returns a Request backed by a CUDA event recorded after the work. The communicator does
// NOT wait for kernels that produce its input on other streams: make cuda_stream() wait for them
// first (cudaStreamWaitEvent) or synchronise. Sends and receives are grouped (ncclGroupStart/End)
// per call, so send_recv and all_to_all never deadlock. NCCL has no tags: tags are checked
// (>= 0) and otherwise ignored; messages between two ranks match in issue order. A recv whose
// count differs from the send's is not detected (NCCL cannot tell). Average uses ncclAvg.
// One thread at a time per communicator (calls are serialised by a mutex).

#include <memory>

#include "comm/communicator.hpp"

namespace tandem::comm {

class NcclCommunicator : public Communicator {
 public:
  // The cudaStream_t this communicator enqueues on (as void*, so this header needs no CUDA).
  virtual void* cuda_stream() const = 0;
  virtual int cuda_device() const = 0;
};

// cuda_device < 0 picks (the launcher's local rank) modulo (the number of visible devices).
// Throws CommError when no CUDA device is usable, or NCCL initialisation fails or times out.
std::unique_ptr<NcclCommunicator> make_nccl_communicator(Communicator& bootstrap,
                                                         int cuda_device = -1);

}  // namespace tandem::comm
