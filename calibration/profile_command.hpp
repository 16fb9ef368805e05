#pragma once
// `engine profile`: runs the microbenchmarks (calibration/microbenchmarks.hpp) on this machine and
// records them in the run store as a run of kind 'profile' with the machine's description. The
// engine's command line registers the subcommand with add_profile_options and calls run_profile.
//
//   engine profile --db runs.db [--quick] [--threads 1,2] [--ranks 2] [--json]
//
// With --ranks N > 1 (the default when the machine has 2 cores or more and mpirun is on PATH) it
// also starts `engine profile --only-communication --emit-records` on N ranks itself, the way
// validate starts its 2-rank runs (calibration/process.hpp: mpirun_prefix), for the collectives
// and send/recv: a profile measured over another MPI transport does not describe the runs it
// predicts. It does so after each repeat of the calibration set and keeps each case's fastest
// launch, all in its own profile run. Run under mpirun by hand, it measures the collectives over
// whatever transport that mpirun chose.
//
// Compute microbenchmarks run on world rank 0 only (the other ranks wait), communication ones
// on every rank; rank 0 writes the store and prints. On one process it then trains a small
// calibration set of GPT configurations for a few steps (`engine train --db`, named
// "profile-..."): their per-op traces are the in-situ measurements `tandem-calibrate fit`
// prefers for the compute model (an op inside a training step runs on colder caches and
// between other threads' work than the same kernel repeated alone). The validation matrix of
// `tandem-calibrate validate` uses other shapes. Exit codes: 0 ok, 1 failure, 2 bad input.

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "comm/communicator.hpp"
#include "report/run_store.hpp"

namespace tandem::calibration {

struct ProfileArguments {
  std::string db;                 // "" = $TANDEM_DB or ~/.local/share/tandem/runs.db
  std::string name = "engine profile";
  bool quick = false;
  std::vector<int> threads;       // kernel thread counts ("" = 1 and the physical cores)
  bool skip_compute = false;      // only the communication microbenchmarks
  bool training_runs = true;      // the calibration set of short engine train runs (one process only)
  int ranks = -1;                 // communication microbenchmarks over this many ranks started by
                                  // engine profile itself (-1: 2 when there are 2+ cores and an mpirun)
  bool emit_records = false;      // print the communication records as JSON, store nothing (--ranks' ranks)
  double min_seconds = 0;         // per case (0 = the default: 0.03 s, quick 0.005 s)
  bool json = false;
  bool quiet = false;
};

void add_profile_options(CLI::App& command, ProfileArguments& arguments);

// Merges one launch of the communication microbenchmarks into `kept`: per case (op, parameters,
// size) the launch with the shortest median, with the extremes and the repeats of all launches
// (a shared machine only slows a case down, and one launch lasts about a second, often inside one
// slow spell).
void keep_fastest(std::vector<report::Microbenchmark>& kept, const std::vector<report::Microbenchmark>& launch);
int run_profile(const ProfileArguments& arguments, comm::Communicator& world);

}  // namespace tandem::calibration
