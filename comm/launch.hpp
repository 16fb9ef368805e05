#pragma once
// Was this process started by an MPI launcher (mpirun / mpiexec / srun --mpi)? Answered from the
// environment the launcher sets, without initialising MPI, so a binary built without MPI can ask
// too. The engine uses it to pick its backend:
//   launched && world_size > 1  -> MPI (make_mpi_world_communicator), or NCCL bootstrapped over it
//   otherwise                   -> make_single_process_communicator()
// (make_world_communicator() in comm/mpi_communicator.hpp does exactly that.)

#include <string>

namespace tandem::comm {

struct MpiLaunch {
  bool launched = false;  // an MPI launcher started this process
  int world_size = 1;     // processes it started (1 when not launched)
  int world_rank = 0;     // this process's rank among them
  int local_rank = 0;     // its rank among the processes on this node (to choose a GPU)
  std::string launcher;   // "Open MPI", "MPICH/Hydra", "MVAPICH", "PMIx", or "" when not launched
};

// Reads OMPI_COMM_WORLD_{SIZE,RANK,LOCAL_RANK} (Open MPI), PMI_{SIZE,RANK} and
// MPI_LOCALRANKID (MPICH, Intel MPI), MV2_COMM_WORLD_{SIZE,RANK,LOCAL_RANK} (MVAPICH) and
// PMIX_RANK (other PMIx launchers; size unknown there, reported as 0).
MpiLaunch detect_mpi_launch();

}  // namespace tandem::comm
