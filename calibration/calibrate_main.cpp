// tandem-calibrate: fits the twin's hardware profiles to measurements and checks the twin
// against real runs.
//
//   tandem-calibrate fit-nccl LOG|DIR... --gpu a100-40gb --out net.yaml [--held-out LOG...] [--json]
//   tandem-calibrate fit --db runs.db --out profile.yaml [--json]
//   tandem-calibrate validate [--profile P] [--db runs.db] [--quick] [--json]
//
// Exit codes: 0 success, 1 a failure while running (a simulation or a training run failed, a file
// could not be written), 2 a mistake in the input (the message names the argument).
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>

#include "calibration/commands.hpp"
#include "tandem/version.hpp"

int main(int argc, char** argv) {
  using namespace tandem::calibration;
  CLI::App app{
      "tandem-calibrate: fit the twin's hardware profiles to measurements (nccl-tests logs, engine "
      "profile microbenchmarks) and validate the twin against real engine train runs."};
  app.set_version_flag("--version", std::string("tandem-calibrate (Tandem) ") + tandem::kVersion + " (git " +
                                         tandem::kGitRevision + ")");
  app.require_subcommand(1);
  bool quiet = false;
  bool verbose = false;
  auto* quiet_flag = app.add_flag("--quiet,-q", quiet, "only errors on stderr");
  app.add_flag("--verbose,-v", verbose, "debug logging")->excludes(quiet_flag);

  FitNcclArguments nccl;
  CLI::App* fit_nccl = app.add_subcommand(
      "fit-nccl", "fit a GPU profile's network parameters (NVLink and NIC efficiency and latency) to raw "
                  "nccl-tests logs");
  fit_nccl->add_option("logs", nccl.logs, "nccl-tests output files, or folders searched for *.log")->required();
  fit_nccl->add_option("--gpu", nccl.gpu, "base hardware profile: a built-in name or a profile YAML")->required();
  fit_nccl->add_option("--out,-o", nccl.out, "where to write the fitted profile (usable as cluster.gpu)")->required();
  fit_nccl->add_option("--held-out", nccl.held_out,
                       "logs (or folders) predicted with the fitted profile but not fitted");
  fit_nccl->add_option("--min-size", nccl.min_size, "fit and score sizes at or above this (default 1MiB)");
  fit_nccl->add_option("--name", nccl.name, "name of the written profile (default: <gpu>-fitted)");
  fit_nccl->add_option("--jobs,-j", nccl.jobs, "twin simulations in parallel (default 2)")->check(CLI::PositiveNumber);
  fit_nccl->add_flag("--json", nccl.json, "print only JSON on stdout");

  FitArguments fit;
  CLI::App* fit_command = app.add_subcommand(
      "fit", "fit the compute model (GEMM efficiency curve, memory bandwidth, per-op overheads) and the "
             "communication parameters to the microbenchmarks of `engine profile`");
  fit_command->add_option("--db", fit.db, "run store holding the microbenchmarks (default $TANDEM_DB or "
                                          "~/.local/share/tandem/runs.db)");
  fit_command->add_option("--out,-o", fit.out, "where to write the fitted profile")->required();
  fit_command->add_option("--run", fit.run, "only this profile run's microbenchmarks (default: the newest "
                                            "profile run, plus its collectives run if separate)");
  fit_command->add_option("--base", fit.base, "profile whose other numbers the fit keeps (default: cpu)");
  fit_command->add_option("--name", fit.name, "name of the written profile (default: cpu-fitted)");
  fit_command->add_option("--compute-from", fit.compute_from,
                          "what the compute parameters are fitted to: auto (the per-op traces of stored training runs "
                          "when there are any, else the microbenchmarks), microbenchmarks, runs")
      ->check(CLI::IsMember({"auto", "microbenchmarks", "runs"}));
  fit_command->add_option("--max-runs", fit.max_runs, "newest training runs whose per-op traces are used (default 40)")
      ->check(CLI::NonNegativeNumber);
  fit_command->add_flag("--json", fit.json, "print only JSON on stdout");

  ValidateArguments validate;
  CLI::App* validate_command = app.add_subcommand(
      "validate", "run engine train on a held-out matrix of configurations, predict each with the twin and "
                  "report the error");
  validate_command->add_option("--profile,-p", validate.profile,
                               "the profile to predict with (default: the built-in cpu profile)");
  validate_command->add_option("--db", validate.db, "run store for the training runs and the report "
                                                    "(default $TANDEM_DB or ~/.local/share/tandem/runs.db)");
  validate_command->add_option("--engine", validate.engine, "the engine executable (default: next to this one, "
                                                            "else on PATH)");
  validate_command->add_option("--mpirun", validate.mpirun, "mpirun for multi-rank runs (default: on PATH)");
  validate_command->add_option("--steps", validate.steps, "training steps per run (default 20, quick 6; the first 2 are "
                                                          "not timed)");
  validate_command->add_option("--repeats", validate.repeats, "runs per configuration (default 5, as engine profile runs its calibration set; quick 1); the fastest run is the measurement");
  validate_command->add_option("--config", validate.only, "only the configurations whose name contains this "
                                                          "(repeatable)");
  validate_command->add_flag("--quick", validate.quick, "a tiny matrix (3 configurations, 1 repeat): a smoke test");
  validate_command->add_flag("--oversubscribed", validate.oversubscribed,
                             "also run 4 ranks on this machine (reported separately)");
  validate_command->add_flag("--reuse", validate.reuse,
                             "run nothing: predict the configurations' newest runs already in --db (the last --repeats "
                             "of each), to compare profiles or twin versions on the same measurements");
  validate_command->add_flag("--json", validate.json, "print only JSON on stdout");

  if (const auto exit_code = tandem::report::parse_command_line(app, argc, argv)) return *exit_code;
  tandem::report::log_to_stderr("tandem-calibrate", quiet, verbose);
  const CommonOptions common{quiet, verbose};

  if (fit_nccl->parsed()) return run_fit_nccl(nccl, common);
  if (fit_command->parsed()) return run_fit(fit, common);
  if (validate_command->parsed()) return run_validate(validate, common);
  return kExitBadInput;
}
