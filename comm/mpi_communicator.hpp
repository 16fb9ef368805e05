#pragma once
// The MPI backend: CPU processes started by mpirun, host buffers.
//
// Initialisation and threading. make_mpi_world_communicator() initialises MPI if nobody has
// (MPI_Init_thread asking for MPI_THREAD_MULTIPLE, so different engine streams may drive
// different communicators from different threads at once). If the library provides less than
// MULTIPLE, every MPI call this backend makes is serialised through one process-wide mutex;
// waits poll, so a waiting thread never holds that mutex while it sleeps. If MPI was already
// initialised by someone else, that initialisation is used as it is (and not finalised here).
//
// Finalisation. The world communicator and every communicator split from it (directly or not)
// share ownership of the MPI runtime: MPI_Finalize runs when the last of them is destroyed, so
// sub-communicators are always freed first, whatever order the caller destroys them in. MPI can
// be initialised only once per process: create the world once and keep it for the whole run
// (creating a second world while the first is alive returns another handle on the same world;
// creating one after the first was destroyed throws CommError). If the process exits with a
// world still alive, an atexit handler finalises MPI (so mpirun does not report an unclean exit).
//
// The world communicator is a duplicate of MPI_COMM_WORLD (so the engine's messages never match
// another library's), with MPI_ERRORS_RETURN: MPI errors become CommError naming the operation,
// the group size and the rank. Counts above INT_MAX elements (MPI 3's int counts) throw CommError.
// Average is a Sum followed by a division by size() (Float32/Float64 only).
//
// Timeouts. Every wait polls (MPI_Testall, yielding the CPU, and after one second of waiting
// sleeping 1 ms between polls) and gives up after timeout_seconds(), throwing CommTimeout:
//   "rank 3: all-reduce on a group of 4 ranks did not complete within 600 s — a peer may have
//    died (the limit is TANDEM_COMM_TIMEOUT_S)"
// The limit comes from TANDEM_COMM_TIMEOUT_S (default 600 s; 0 disables it, and then blocking
// calls use MPI's blocking functions directly, which OpenMPI runs with its tuned algorithms rather
// than the non-blocking ones polling needs). set_timeout_seconds changes it per communicator;
// split() copies it. After a blocking call times out its communicator is unusable (every later
// call throws CommError) and the timed-out transfer stays registered with MPI: keep its buffer
// alive, report the error and end the run with abort_mpi_world(). A Request whose wait() timed
// out stays valid and can be waited on again; destroying it then does not wait a second time
// (it logs that the transfer was abandoned, and its buffer must stay alive). split() first meets the other ranks in a barrier
// bounded by the timeout, then calls MPI_Comm_split.
//
// Progress. OpenMPI moves non-blocking operations forward only inside MPI calls: an async
// operation overlapped with computation advances when test() or wait() is called on any request
// (so call test() between compute chunks for real overlap).
//
// Launching (Open MPI 4, what the tests use; see tandem_add_mpi_test in cmake/TandemHelpers.cmake):
//   mpirun -np 4 --oversubscribe --bind-to none --mca pml ob1 --mca btl self,vader
//          --mca btl_vader_single_copy_mechanism none [--allow-run-as-root] ./engine ...
// (one command line).
// --oversubscribe/--bind-to none let more ranks than cores share a small machine; the MCA settings
// use shared memory between local processes and avoid the cross-process memory attach (CMA) that
// containers often forbid. --allow-run-as-root (or OMPI_ALLOW_RUN_AS_ROOT=1 and
// OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1) is needed only when running as root.

#include <memory>
#include <string>

#include "comm/communicator.hpp"
#include "comm/launch.hpp"

namespace tandem::comm {

// The world: every process mpirun started, ranked as MPI_COMM_WORLD. Throws CommError when MPI
// cannot be initialised or TANDEM_COMM_TIMEOUT_S is invalid.
std::unique_ptr<Communicator> make_mpi_world_communicator();

// The backend the launch asks for: MPI when an MPI launcher started this process (any world
// size), otherwise a single-process communicator (MPI is then never initialised).
std::unique_ptr<Communicator> make_world_communicator();

struct MpiRuntimeInfo {
  bool initialised_by_tandem = false;  // false: someone else called MPI_Init and will finalise
  int thread_level = 0;                // MPI_THREAD_SINGLE .. MPI_THREAD_MULTIPLE as provided
  std::string thread_level_name;       // "MPI_THREAD_MULTIPLE", ...
  bool calls_serialised = false;       // thread level < MULTIPLE: calls go through one mutex
  std::string library_version;         // MPI_Get_library_version, first line (for provenance)
};
// Throws CommError unless MPI is initialised (create the world communicator first).
MpiRuntimeInfo mpi_runtime_info();

// Ends every process of the run (MPI_Abort on MPI_COMM_WORLD) with exit_code; used after a
// CommTimeout, when peers may be stuck in a collective that will never complete. Without an
// initialised MPI it just exits this process.
[[noreturn]] void abort_mpi_world(int exit_code);

}  // namespace tandem::comm
