#pragma once
// Running a child process (engine train, mpirun) and capturing its output: what validate and
// engine profile's calibration runs use.

#include <string>
#include <vector>

namespace tandem::calibration {

struct ProcessResult {
  int exit_code = -1;
  std::string out;
  std::string err;
  bool timed_out = false;
};

// Runs argv (argv[0] a path) with `extra_environment` ("KEY=value") added to this process's,
// capturing stdout and stderr; the child gets its own process group, which is killed after
// timeout_s. Throws std::runtime_error when the process cannot be started.
ProcessResult run_process(const std::vector<std::string>& argv, const std::vector<std::string>& extra_environment,
                          double timeout_s);

}  // namespace tandem::calibration
