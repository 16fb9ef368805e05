#pragma once
// The subcommands of tandem-calibrate (calibrate_main.cpp parses the arguments; these run them
// and print). Each returns the process exit code.

#include <string>
#include <vector>

#include "report/command_line.hpp"

namespace tandem::calibration {

using report::kExitBadInput;
using report::kExitFailure;

struct CommonOptions {
  bool quiet = false;
  bool verbose = false;
};

struct FitNcclArguments {
  std::vector<std::string> logs;
  std::vector<std::string> held_out;
  std::string gpu;
  std::string out;
  std::string min_size = "1MiB";
  std::string name;
  int jobs = 2;
  bool json = false;
};
int run_fit_nccl(const FitNcclArguments& arguments, const CommonOptions& common);

struct FitArguments {
  std::string db;
  std::string out;
  std::string run;
  std::string base = "cpu";
  std::string name;
  std::string compute_from = "auto";  // auto | microbenchmarks | runs
  int max_runs = 40;                  // newest training runs used as in-situ data
  bool json = false;
};
int run_fit(const FitArguments& arguments, const CommonOptions& common);

struct ValidateArguments {
  std::string profile;
  std::string db;
  std::string engine;
  std::string mpirun;
  int steps = 0;    // 0: 20 (quick 6)
  int repeats = 0;  // 0: 5 (quick 1)
  std::vector<std::string> only;
  bool quick = false;
  bool oversubscribed = false;
  bool reuse = false;  // predict the newest stored runs of each configuration, run nothing
  bool json = false;
};
int run_validate(const ValidateArguments& arguments, const CommonOptions& common);

}  // namespace tandem::calibration
