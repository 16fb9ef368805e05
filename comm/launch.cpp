#include "comm/launch.hpp"

#include <cstdlib>
#include <string>

namespace tandem::comm {
namespace {

// The integer value of environment variable `name`, or `fallback` if it is unset or not a number.
int environment_int(const char* name, int fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') {
    return fallback;
  }
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < 0 || value > 1'000'000'000) {
    return fallback;
  }
  return static_cast<int>(value);
}

bool has_environment(const char* name) {
  const char* text = std::getenv(name);
  return text != nullptr && *text != '\0';
}

}  // namespace

MpiLaunch detect_mpi_launch() {
  MpiLaunch launch;
  struct Convention {
    const char* launcher;
    const char* size;
    const char* rank;
    const char* local_rank;
  };
  static constexpr Convention kConventions[] = {
      {"Open MPI", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_RANK"},
      {"MVAPICH", "MV2_COMM_WORLD_SIZE", "MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_LOCAL_RANK"},
      {"MPICH/Hydra", "PMI_SIZE", "PMI_RANK", "MPI_LOCALRANKID"},
  };
  for (const Convention& convention : kConventions) {
    if (has_environment(convention.size)) {
      launch.launched = true;
      launch.launcher = convention.launcher;
      launch.world_size = environment_int(convention.size, 1);
      launch.world_rank = environment_int(convention.rank, 0);
      launch.local_rank = environment_int(convention.local_rank, 0);
      return launch;
    }
  }
  if (has_environment("PMIX_RANK")) {
    launch.launched = true;
    launch.launcher = "PMIx";
    launch.world_size = 0;
    launch.world_rank = environment_int("PMIX_RANK", 0);
  }
  return launch;
}

}  // namespace tandem::comm
