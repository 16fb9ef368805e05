// Builds without MPI: the world is one process, and "aborting the world" ends this process.
#include <cstdlib>
#include <stdexcept>

#include "comm/launch.hpp"
#include "comm/mpi_communicator.hpp"

namespace tandem::comm {

std::unique_ptr<Communicator> make_world_communicator() {
  const MpiLaunch launch = detect_mpi_launch();
  if (launch.launched && launch.world_size > 1)
    throw CommError("this engine was built without MPI and cannot join a world of " +
                    std::to_string(launch.world_size) + " processes started by " + launch.launcher);
  return make_single_process_communicator();
}

void abort_mpi_world(int exit_code) { std::_Exit(exit_code); }

}  // namespace tandem::comm
