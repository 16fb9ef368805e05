// engine: trains GPT models for real by executing the strategy layer's program.
//
//   engine train [scenario.yaml] [options]     (no file: the built-in tiny-cpu scenario)
//   engine sample --checkpoint DIR --prompt TEXT --tokens N [--temperature T --top-k K --seed S]
//   engine profile --db runs.db [--quick]       (calibration/profile_command.hpp)
//   mpirun -np N --oversubscribe [--allow-run-as-root] engine train scenario.yaml
//
// Exit codes: 0 success, 1 failure (I/O, communication), 2 a mistake in the input (scenario,
// strategy, world size, data, checkpoint), 3 training diverged (non-finite loss).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "calibration/profile_command.hpp"
#include "comm/communicator.hpp"
#include "comm/mpi_communicator.hpp"
#include "engine/cli/openmp_spin.hpp"
#include "engine/train/sampler.hpp"
#include "engine/train/trainer.hpp"
#include "report/command_line.hpp"
#include "strategy/scenario.hpp"
#include "tandem/version.hpp"

namespace {

using namespace tandem;

using report::kExitFailure;
using report::kExitBadInput;
constexpr int kExitDiverged = 3;

struct TrainArguments {
  std::string scenario_path;
  std::optional<int> steps, seed, checkpoint_every, eval_every, warmup_steps, eval_batches, threads;
  std::optional<std::string> data, checkpoint_dir, lr, lr_schedule, weight_decay, grad_clip;
  std::vector<std::string> settings;  // key=value
  bool resume = false, json = false, quiet = false, verbose = false, no_db = false;
  std::string db, trace;
};

std::string absolute_unless_synthetic(const std::string& value) {
  if (value == "synthetic") return value;
  return std::filesystem::absolute(value).lexically_normal().string();
}

// The scenario with the command line's overrides applied through the schema (same validation).
strategy::Scenario scenario_with_overrides(const TrainArguments& a, nlohmann::json& overrides, bool say) {
  strategy::Scenario base;
  if (a.scenario_path.empty()) {
    base = strategy::load_builtin_scenario("tiny-cpu");
    if (say) std::fprintf(stderr, "engine train: no scenario file given; using the built-in tiny-cpu scenario\n");
  } else {
    base = strategy::load_scenario(a.scenario_path);
  }
  std::vector<std::pair<std::string, std::string>> settings;
  auto add = [&](const std::string& key, const std::string& value) { settings.emplace_back(key, value); };
  if (a.steps) add("training.steps", std::to_string(*a.steps));
  if (a.seed) add("training.seed", std::to_string(*a.seed));
  if (a.checkpoint_every) add("training.checkpoint_every", std::to_string(*a.checkpoint_every));
  if (a.eval_every) add("training.eval_every", std::to_string(*a.eval_every));
  if (a.eval_batches) add("training.eval_batches", std::to_string(*a.eval_batches));
  if (a.warmup_steps) add("training.warmup_steps", std::to_string(*a.warmup_steps));
  if (a.threads) add("cluster.threads_per_rank", std::to_string(*a.threads));
  if (a.data) add("training.data", absolute_unless_synthetic(*a.data));
  if (a.checkpoint_dir) add("training.checkpoint_dir", std::filesystem::absolute(*a.checkpoint_dir).lexically_normal().string());
  if (a.lr) add("training.lr", *a.lr);
  if (a.lr_schedule) add("training.lr_schedule", *a.lr_schedule);
  if (a.weight_decay) add("training.weight_decay", *a.weight_decay);
  if (a.grad_clip) add("training.grad_clip", *a.grad_clip);
  for (const std::string& setting : a.settings) {
    const auto equals = setting.find('=');
    if (equals == std::string::npos || equals == 0)
      throw strategy::ScenarioError({{"--set", setting, "key=value, e.g. strategy.tp=2"}});
    add(setting.substr(0, equals), setting.substr(equals + 1));
  }
  if (settings.empty()) return base;
  YAML::Node document = YAML::Clone(base.document);
  for (const auto& [key, value] : settings) {
    document = strategy::with_override(document, key, value);
    overrides[key] = value;
  }
  return strategy::scenario_from_document(document, base.base_dir);
}

int run_train(const TrainArguments& a) {
  std::unique_ptr<comm::Communicator> world;
  try {
    world = comm::make_world_communicator();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "engine train: cannot start the communicator: %s\n", error.what());
    return kExitFailure;
  }
  const bool rank0 = world->rank() == 0;
  engine::TrainOptions options;
  options.resume = a.resume;
  options.verbosity = a.quiet ? 0 : (a.verbose ? 2 : 1);
  options.use_database = !a.no_db;
  options.database = a.db;
  options.trace_path = a.trace;
  try {
    nlohmann::json overrides = nlohmann::json::object();
    const strategy::Scenario scenario = scenario_with_overrides(a, overrides, rank0 && !a.quiet);
    options.overrides_json = overrides.dump();
    const engine::TrainResult result = engine::train(scenario, *world, options);
    if (rank0 && a.json) std::cout << engine::result_json(result) << std::endl;
    return 0;
  } catch (const strategy::ScenarioError& error) {
    if (rank0) std::fprintf(stderr, "engine train: %s\n", error.what());
    return kExitBadInput;
  } catch (const engine::UserError& error) {
    if (rank0) std::fprintf(stderr, "engine train: %s\n", error.what());
    return kExitBadInput;
  } catch (const engine::TrainingDiverged& error) {
    if (rank0) std::fprintf(stderr, "engine train: %s\n", error.what());
    return kExitDiverged;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "engine train: rank %d: %s\n", world->rank(), error.what());
    if (world->size() > 1) comm::abort_mpi_world(kExitFailure);
    return kExitFailure;
  }
}

}  // namespace

int main(int argc, char** argv) {
  engine::use_short_openmp_spin(argv);
  CLI::App app{"engine: trains GPT models for real, executing the same per-rank program the twin simulates"};
  app.require_subcommand(0, 1);
  bool version = false;
  app.add_flag("--version", version, "print the version and exit");

  TrainArguments t;
  CLI::App* train = app.add_subcommand("train", "train a model: engine train [scenario.yaml] (default: built-in tiny-cpu)");
  train->add_option("scenario", t.scenario_path, "scenario YAML (the same file simrun reads)")->check(CLI::ExistingFile);
  train->add_option("--steps", t.steps, "training.steps");
  train->add_option("--data", t.data, "training.data: synthetic, a text file or an llm.c .bin shard");
  train->add_option("--seed", t.seed, "training.seed");
  train->add_option("--lr", t.lr, "training.lr (peak learning rate)");
  train->add_option("--lr-schedule", t.lr_schedule, "training.lr_schedule: constant, cosine or linear");
  train->add_option("--warmup-steps", t.warmup_steps, "training.warmup_steps");
  train->add_option("--weight-decay", t.weight_decay, "training.weight_decay");
  train->add_option("--grad-clip", t.grad_clip, "training.grad_clip (0 = off)");
  train->add_option("--checkpoint-dir", t.checkpoint_dir, "training.checkpoint_dir");
  train->add_option("--checkpoint-every", t.checkpoint_every, "training.checkpoint_every (0 = never)");
  train->add_option("--eval-every", t.eval_every, "training.eval_every (0 = only at the end)");
  train->add_option("--eval-batches", t.eval_batches, "training.eval_batches");
  train->add_option("--threads", t.threads, "cluster.threads_per_rank");
  train->add_option("--set", t.settings, "any scenario key: --set strategy.tp=2 (repeatable)");
  train->add_flag("--resume", t.resume, "continue from the newest good checkpoint in training.checkpoint_dir");
  train->add_flag("--json", t.json, "print one JSON object with the results on stdout");
  train->add_option("--db", t.db, "run store (SQLite) for metrics and the per-op trace (default: $TANDEM_DB or "
                                   "~/.local/share/tandem/runs.db)");
  train->add_flag("--no-db", t.no_db, "do not record the run in a run store");
  train->add_option("--trace", t.trace, "write a Chrome trace (Perfetto) of every step's ops");
  train->add_flag("-q,--quiet", t.quiet, "no progress lines or summary");
  train->add_flag("-v,--verbose", t.verbose, "also the gradient norm and checkpoint notices");

  engine::SampleOptions s;
  CLI::App* sample = app.add_subcommand("sample", "generate text from a trained model's newest checkpoint");
  sample->add_option("--checkpoint", s.checkpoint_dir, "checkpoint directory (training.checkpoint_dir)")->required();
  sample->add_option("--prompt", s.prompt, "prompt: text for byte-level models, token ids otherwise");
  sample->add_option("--tokens", s.tokens, "tokens to generate")->check(CLI::Range(0, 1 << 20));
  sample->add_option("--temperature", s.temperature, "softmax temperature (0: most likely token)")->check(CLI::NonNegativeNumber);
  sample->add_option("--top-k", s.top_k, "sample among the k most likely tokens (0: all)")->check(CLI::NonNegativeNumber);
  sample->add_option("--seed", s.seed, "seed of the sampler");
  sample->add_option("--threads", s.threads, "kernel threads");

  calibration::ProfileArguments p;
  CLI::App* profile = app.add_subcommand(
      "profile", "microbenchmark this machine (kernels; collectives under mpirun) into the run store for tandem-calibrate fit");
  calibration::add_profile_options(*profile, p);

  if (const auto exit_code = report::parse_command_line(app, argc, argv)) return *exit_code;
  if (version) {
    std::printf("engine (Tandem) %s, git %s\n", tandem::kVersion, tandem::kGitRevision);
    return 0;
  }
  if (train->parsed()) {
    if (t.quiet && t.verbose) {
      std::fprintf(stderr, "engine train: --quiet and --verbose: choose one\n");
      return kExitBadInput;
    }
    return run_train(t);
  }
  if (profile->parsed()) {
    try {
      return calibration::run_profile(p, *comm::make_world_communicator());
    } catch (const std::exception& error) {
      std::fprintf(stderr, "engine profile: %s\n", error.what());
      return kExitFailure;
    }
  }
  if (sample->parsed()) {
    try {
      const engine::SampleResult result = engine::sample(s);
      std::fwrite(result.text.data(), 1, result.text.size(), stdout);
      std::fputc('\n', stdout);
      return 0;
    } catch (const engine::UserError& error) {
      std::fprintf(stderr, "engine sample: %s\n", error.what());
      return kExitBadInput;
    } catch (const strategy::ScenarioError& error) {
      std::fprintf(stderr, "engine sample: the checkpoint's scenario: %s\n", error.what());
      return kExitBadInput;
    } catch (const std::exception& error) {
      std::fprintf(stderr, "engine sample: %s\n", error.what());
      return kExitFailure;
    }
  }
  std::printf("%s", app.help().c_str());
  return 0;
}
