#pragma once
// The training loop of `engine train`: data (engine/data), the rank runner, the learning-rate
// schedule, evaluation on held-out data, checkpoints (engine/checkpoint), progress on stderr from
// rank 0, metrics and the per-op trace into the run store (report/run_store.hpp) and a Chrome
// trace.
//
// Every rank calls train() with the same scenario and options; every collective decision (stop on
// a non-finite loss, evaluate, checkpoint) is taken from values every rank shares, so all ranks
// agree. Errors a user can cause throw UserError (exit code 2 in the CLI); a non-finite loss
// throws TrainingDiverged (exit code 3) after reporting the step.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "comm/communicator.hpp"
#include "strategy/scenario.hpp"

namespace tandem::engine {

// A mistake in the input (scenario, strategy, world size, data, checkpoint of another run).
class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class TrainingDiverged : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct TrainOptions {
  bool resume = false;
  int verbosity = 1;  // 0 quiet (errors only), 1 progress and summary, 2 verbose
  bool use_database = true;
  std::filesystem::path database;        // empty: report::default_database_path()
  std::filesystem::path trace_path;      // empty: no Chrome trace
  std::string overrides_json = "{}";     // command-line overrides, for the run store
  bool record_trace = true;              // per-op records (needed by the store and --trace)
};

struct TrainResult {
  int steps = 0;                         // optimizer steps done (including restored ones)
  std::vector<double> losses;            // training loss of steps 1..steps
  std::vector<std::pair<int, double>> validation_losses;  // (step, loss)
  std::optional<double> final_val_loss;
  std::vector<double> step_times_s;      // steps run by this process
  double step_time_s = 0;                // median over this process's steps after the first
  double tokens_per_s = 0;
  double model_flops_per_step = 0;       // 6·N·tokens-style model FLOPs (strategy formula)
  std::optional<double> entropy_nats_per_token;  // synthetic data
  std::optional<double> predicted_step_time_s;   // the scenario's `predicted:` section
  std::optional<int> resumed_from_step;
  std::string run_id;                    // run store id ("" without a store)
  std::string data_description;
  std::string backend;
  int world_size = 1;
  std::string outer_method = "none";     // strategy.outer.method
  // Bytes one worker has sent to the other workers after each step (cumulative, rank 0's view;
  // ring-equivalent: an all-reduce of S bytes over n ranks counts 2 (n-1)/n S): the gradient
  // all-reduce of data parallelism, or the outer exchanges.
  std::vector<double> worker_bytes_sent;
  // Optimizer state this rank allocated (Optimizer::state_bytes after the last step).
  double optimizer_state_bytes = 0;
};

TrainResult train(const strategy::Scenario& scenario, comm::Communicator& world, const TrainOptions& options);

// Checks a scenario against what the engine runs and the world it was started in; throws
// UserError with one line per problem, each naming the key.
void check_trainable(const strategy::Scenario& scenario, int world_size);

// What must match for a checkpoint to be resumed (world size, strategy, model, optimizer).
std::string checkpoint_fingerprint(const strategy::Scenario& scenario, int world_size);

// The JSON object `engine train --json` prints.
std::string result_json(const TrainResult& result);

}  // namespace tandem::engine
