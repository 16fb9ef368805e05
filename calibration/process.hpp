#pragma once
// Running a child process (engine train, mpirun) and capturing its output: what validate and
// engine profile's calibration runs use.

#include <filesystem>
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

// An executable on PATH ("" when there is none).
std::filesystem::path find_on_path(const std::string& name);
// mpirun on PATH, else mpiexec ("" when neither is there).
std::filesystem::path find_mpirun();

// The one way Tandem's tools start `ranks` local ranks of a command (validate's 2-rank runs,
// engine profile's communication microbenchmarks), so that the profile is measured on the
// transport the validated runs use: for Open MPI, shared memory through ob1/vader without its
// single-copy mechanism (CMA needs ptrace rights that containers often lack), cores shared
// (--oversubscribe, --bind-to none). The per-byte cost of a 256 KiB all-reduce differed 4.6x
// between this and Open MPI's defaults on the development VM. Returns the argv to prefix the
// command with and adds the environment the launch needs to `environment`.
std::vector<std::string> mpirun_prefix(const std::filesystem::path& mpirun, int ranks,
                                       std::vector<std::string>& environment);

// The Open MPI transport settings this process runs under ("pml=ob1 btl=self,vader ..."; "" when
// not started by Open MPI's mpirun with any of them set): recorded with communication
// microbenchmarks, so a fit can tell which transport they measured.
std::string mpi_transport_settings();
// What mpi_transport_settings() says in ranks started with mpirun_prefix (Open MPI).
std::string tandem_mpi_transport();

}  // namespace tandem::calibration
