#include "engine/train/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "engine/backend/backend.hpp"
#include "engine/checkpoint/checkpoint.hpp"
#include "engine/data/token_dataset.hpp"
#include "engine/outer/synchronizer.hpp"
#include "engine/runner/runner.hpp"
#include "engine/train/lr_schedule.hpp"
#include "kernels/cpu/threading.hpp"
#include "report/chrome_trace.hpp"
#include "report/machine.hpp"
#include "report/run_info.hpp"
#include "report/run_store.hpp"
#include "strategy/embedded_files.hpp"
#include "strategy/engine_support.hpp"
#include "strategy/collective_plan.hpp"
#include "strategy/model_formulas.hpp"
#include "strategy/optimizer_catalog.hpp"

#if defined(TANDEM_ENGINE_HAVE_NCCL)
#include "comm/nccl_communicator.hpp"
#endif

namespace tandem::engine {
namespace {

static_assert(std::is_trivially_copyable_v<report::TraceRecord>);

constexpr int kTraceTag = 7001;

// Rank 0 receives every rank's records of a step (collective over `world`).
std::vector<report::TraceRecord> gather_trace(comm::Communicator& world, const std::vector<report::TraceRecord>& local) {
  const int size = world.size();
  std::vector<std::int64_t> counts(static_cast<std::size_t>(size));
  std::int64_t mine = static_cast<std::int64_t>(local.size());
  world.all_gather(&mine, counts.data(), 1, comm::DataType::Int64);
  std::vector<report::TraceRecord> all;
  if (world.rank() == 0) {
    all = local;
    for (int r = 1; r < size; ++r) {
      const auto n = static_cast<std::size_t>(counts[static_cast<std::size_t>(r)]);
      if (n == 0) continue;
      std::vector<report::TraceRecord> part(n);
      world.recv(part.data(), n * sizeof(report::TraceRecord), comm::DataType::UInt8, r, kTraceTag);
      all.insert(all.end(), part.begin(), part.end());
    }
  } else if (!local.empty()) {
    world.send(local.data(), local.size() * sizeof(report::TraceRecord), comm::DataType::UInt8, 0, kTraceTag);
  }
  return all;
}

double median_after_first(const std::vector<double>& times) {
  std::vector<double> tail(times.size() > 1 ? times.begin() + 1 : times.begin(), times.end());
  if (tail.empty()) return 0;
  std::sort(tail.begin(), tail.end());
  const std::size_t n = tail.size();
  return n % 2 == 1 ? tail[n / 2] : 0.5 * (tail[n / 2 - 1] + tail[n / 2]);
}

std::string data_format_name(data::DataFormat format) {
  switch (format) {
    case data::DataFormat::Synthetic: return "synthetic";
    case data::DataFormat::Text: return "text";
    case data::DataFormat::LlmcShard: return "llmc-shard";
  }
  return "unknown";
}

std::vector<std::uint8_t> bytes_of(const std::string& text) { return {text.begin(), text.end()}; }

// Bytes this rank sends to the other workers in one step: the program's data-parallel
// collectives, ring-equivalent (nccl-tests' bus-bandwidth factor times the size).
double data_parallel_bytes_per_step(const std::vector<strategy::Op>& ops, const strategy::StrategySpec& s) {
  double total = 0;
  for (const strategy::Op& op : ops) {
    if (op.type != strategy::OpType::Collective || strategy::is_outer_op(op.code)) continue;
    int ranks = 0;
    if (op.group == strategy::GroupKind::Data) ranks = s.dp;
    else if (op.group == strategy::GroupKind::DataContext) ranks = s.dp * s.cp;
    if (ranks > 1) total += op.bytes * strategy::bus_bandwidth_factor(op.collective, ranks);
  }
  return total;
}

}  // namespace

void check_trainable(const strategy::Scenario& scenario, int world_size) {
  std::vector<std::string> problems;
  if (scenario.is_collective() || !scenario.model || !scenario.strategy) {
    problems.push_back("scenario: a collective what-if, not a model + strategy (engine train trains a model)");
  } else {
    for (const strategy::ValidationError& error : strategy::engine_unsupported(scenario))
      problems.push_back(error.path + ": " + error.value + " is not supported by the engine; supported: " +
                         error.expected);
    const int gpus = scenario.cluster.gpus();
    if (gpus != world_size)
      problems.push_back("cluster.nodes x cluster.gpus_per_node: " + std::to_string(scenario.cluster.nodes) + " x " +
                         std::to_string(scenario.cluster.gpus_per_node) + " = " + std::to_string(gpus) +
                         " ranks, but the engine was started with " + std::to_string(world_size) +
                         (world_size == 1 ? " process" : " processes") + " (run it under mpirun -np " +
                         std::to_string(gpus) + ", or set nodes x gpus_per_node = " + std::to_string(world_size) + ")");
  }
  if (problems.empty()) return;
  std::string message = "cannot train this scenario:";
  for (const std::string& problem : problems) message += "\n  " + problem;
  throw UserError(message);
}

std::string checkpoint_fingerprint(const strategy::Scenario& scenario, int world_size) {
  const strategy::ModelSpec& m = *scenario.model;
  const strategy::StrategySpec& s = *scenario.strategy;
  std::ostringstream f;
  f << "world=" << world_size << " tp=" << s.tp << " pp=" << s.pp << " dp=" << s.dp << " cp=" << s.cp
    << " zero=" << s.zero << " sp=" << (s.sequence_parallel ? 1 : 0) << " micro_batch=" << s.micro_batch
    << " global_batch=" << s.global_batch << " schedule=" << strategy::to_string(s.schedule)
    << " grad_bucket=" << s.grad_bucket_bytes << " optimizer=" << s.optimizer;
  if (s.outer.enabled())
    f << " outer=" << strategy::to_string(s.outer.method) << " H=" << s.outer.inner_steps << " outer_lr=" << s.outer.outer_lr
      << " momentum=" << s.outer.momentum << " fragments=" << s.outer.fragments << " delay=" << s.outer.delay
      << " mix=" << s.outer.mix << " quantize=" << strategy::to_string(s.outer.quantize)
      << " group_size=" << s.outer.group_size;
  for (const auto& [key, value] : s.optimizer_args) f << " " << key << "=" << value;
  f << " | layers=" << m.layers << " hidden=" << m.hidden << " heads=" << m.heads << " kv_heads=" << m.kv_heads
    << " ffn=" << m.ffn_hidden << " vocab=" << m.vocab << " seq_len=" << m.seq_len
    << " activation=" << strategy::to_string(m.activation) << " norm=" << strategy::to_string(m.norm)
    << " position=" << strategy::to_string(m.position) << " tied=" << (m.tied_embeddings ? 1 : 0);
  return f.str();
}

std::string result_json(const TrainResult& r) {
  nlohmann::json j;
  j["steps"] = r.steps;
  j["losses"] = r.losses;
  j["final_val_loss"] = r.final_val_loss ? nlohmann::json(*r.final_val_loss) : nlohmann::json(nullptr);
  nlohmann::json validation = nlohmann::json::array();
  for (const auto& [step, loss] : r.validation_losses) validation.push_back({{"step", step}, {"loss", loss}});
  j["validation_losses"] = validation;
  j["step_time_s"] = r.step_time_s;
  j["tokens_per_s"] = r.tokens_per_s;
  j["model_flops_per_step"] = r.model_flops_per_step;
  j["achieved_flops_per_s"] = r.step_time_s > 0 ? r.model_flops_per_step / r.step_time_s : 0.0;
  if (r.entropy_nats_per_token) j["entropy_nats_per_token"] = *r.entropy_nats_per_token;
  if (r.predicted_step_time_s) j["predicted_step_time_s"] = *r.predicted_step_time_s;
  j["resumed_from_step"] = r.resumed_from_step ? nlohmann::json(*r.resumed_from_step) : nlohmann::json(nullptr);
  j["run_id"] = r.run_id;
  j["data"] = r.data_description;
  j["backend"] = r.backend;
  j["world_size"] = r.world_size;
  j["outer_method"] = r.outer_method;
  j["worker_bytes_sent"] = r.worker_bytes_sent;
  j["optimizer_state_bytes"] = r.optimizer_state_bytes;
  return j.dump();
}

TrainResult train(const strategy::Scenario& scenario, comm::Communicator& world, const TrainOptions& options) {
  check_trainable(scenario, world.size());
  const strategy::ModelSpec& model = *scenario.model;
  const strategy::StrategySpec& strategy_spec = *scenario.strategy;
  const strategy::TrainingSpec& training = scenario.training;
  const bool rank0 = world.rank() == 0;
  const bool progress = rank0 && options.verbosity >= 1;
  auto say = [&](const std::string& line) {
    if (progress) std::fprintf(stderr, "%s\n", line.c_str());
  };
  auto warn = [&](const std::string& line) {
    if (rank0) std::fprintf(stderr, "warning: %s\n", line.c_str());
  };

  if (scenario.cluster.is_cpu()) {
    kernels::cpu::set_kernel_threads(scenario.cluster.threads_per_rank);
    const int ranks_here = std::min(world.size(), scenario.cluster.gpus_per_node);
    const unsigned cores = std::thread::hardware_concurrency();
    if (cores > 0 && scenario.cluster.threads_per_rank > 1 &&
        static_cast<unsigned>(ranks_here * scenario.cluster.threads_per_rank) > cores)
      warn(std::to_string(ranks_here) + " rank(s) x " + std::to_string(scenario.cluster.threads_per_rank) +
           " kernel thread(s) on this machine exceed its " + std::to_string(cores) +
           " cores: threads will wait for each other (cluster.threads_per_rank: " +
           std::to_string(std::max(1u, cores / static_cast<unsigned>(ranks_here))) + " fits)");
  }

  // ---- data -------------------------------------------------------------------------------------
  std::optional<data::TokenDataset> dataset;
  try {
    dataset.emplace(data::TokenDataset::open(data::DataOptions::from_scenario(training, model)));
  } catch (const data::DataError& error) {
    throw UserError(error.what());
  }

  // ---- backend and communicators -------------------------------------------------------------------
  std::unique_ptr<Backend<float>> backend;
  std::unique_ptr<comm::Communicator> device_world;
  if (scenario.cluster.is_cpu()) {
    backend = make_cpu_backend<float>();
  } else {
    try {
      backend = make_cuda_backend(-1);
    } catch (const BackendError& error) {
      throw UserError(std::string("cluster.gpu: ") + scenario.cluster.gpu + ": " + error.what());
    }
#if defined(TANDEM_ENGINE_HAVE_NCCL)
    device_world = comm::make_nccl_communicator(world);
#else
    if (world.size() > 1)
      throw UserError("cluster.gpu: " + scenario.cluster.gpu +
                      ": several GPU ranks need the NCCL backend, which this build does not have");
#endif
  }
  comm::Communicator& program_world = device_world ? *device_world : world;

  RunnerOptions runner_options;
  runner_options.record_trace = options.record_trace && (options.use_database || !options.trace_path.empty());
  Runner<float> runner(scenario, program_world, *backend, runner_options, &world);
  const StageGeometry& g = runner.model().geometry();
  const strategy::ResolvedOptimizer resolved = strategy::resolve_optimizer(
      strategy_spec.optimizer, strategy_spec.optimizer_args, training.lr, training.weight_decay, training.seed);
  const double peak_lr = resolved.lr;

  // ---- outer method (strategy.outer) ------------------------------------------------------------
  // The synchronizer works on a host copy of this rank's parameters (the CPU backend's own memory).
  std::unique_ptr<outer::OuterSynchronizer> outer_sync;
  std::vector<float> host_parameters;
  auto parameters_on_host = [&]() -> std::span<float> {
    ParameterStore<float>& params = runner.model().parameters();
    if (backend->is_host_memory()) return {params.values(), params.layout().total};
    host_parameters.resize(params.layout().total);
    backend->download(host_parameters.data(), params.values(), host_parameters.size());
    return host_parameters;
  };
  auto parameters_to_device = [&]() {
    ParameterStore<float>& params = runner.model().parameters();
    if (!backend->is_host_memory()) backend->upload(params.values(), host_parameters.data(), host_parameters.size());
  };
  if (strategy_spec.outer.enabled())
    outer_sync = std::make_unique<outer::OuterSynchronizer>(
        scenario, world, runner.program().layout, parameters_on_host(), runner.ops(), runner.rank_class(),
        [&runner] { return runner.now(); });
  const double data_parallel_bytes = data_parallel_bytes_per_step(runner.ops(), strategy_spec);
  auto worker_bytes = [&](int step) {
    return outer_sync ? outer_sync->bytes_sent() : data_parallel_bytes * step;
  };

  TrainResult result;
  result.outer_method = std::string(strategy::to_string(strategy_spec.outer.method));
  result.world_size = world.size();
  result.backend = backend->name();
  result.data_description = dataset->describe();
  result.entropy_nats_per_token = dataset->entropy_nats_per_token();
  if (scenario.predicted && scenario.predicted->step_time_s) result.predicted_step_time_s = *scenario.predicted->step_time_s;
  const double tokens_per_step = static_cast<double>(strategy_spec.global_batch) * model.seq_len;
  result.model_flops_per_step = strategy::model_flops_per_step(model, strategy_spec.global_batch);

  // ---- micro-batch sources ----------------------------------------------------------------------------
  const std::int64_t sequences_per_replica = strategy_spec.global_batch / strategy_spec.dp;
  auto source_for = [&](data::Split split, std::int64_t index) {
    return [&, split, index](int micro_batch, std::vector<std::int32_t>& inputs, std::vector<std::int32_t>& targets) {
      const std::size_t n = static_cast<std::size_t>(g.B) * g.T;
      inputs.resize(n);
      targets.resize(n);
      const std::int64_t first = g.dp_rank * sequences_per_replica + static_cast<std::int64_t>(micro_batch) * g.B;
      dataset->fill(split, index, first, g.B, g.T, inputs, targets);
    };
  };

  // ---- resume -------------------------------------------------------------------------------------------
  const std::string fingerprint = checkpoint_fingerprint(scenario, world.size());
  const std::filesystem::path checkpoint_dir = training.checkpoint_dir;
  auto log_sink = [&](const std::string& message) { warn(message); };
  int start_step = 0;
  if (options.resume) {
    std::optional<checkpoint::LoadedCheckpoint> loaded;
    try {
      loaded = checkpoint::load_latest_good(checkpoint_dir, world.rank(), world.size(), fingerprint, log_sink);
    } catch (const checkpoint::CheckpointMismatch& error) {
      throw UserError(std::string("--resume: ") + error.what());
    }
    if (!loaded) {
      say("no checkpoint in " + checkpoint_dir.string() + "; starting fresh");
    } else {
      const checkpoint::RankCheckpoint& shard = loaded->shard;
      ParameterStore<float>& params = runner.model().parameters();
      if (shard.weights.size() != params.layout().total)
        throw UserError("--resume: checkpoint " + loaded->info.directory.string() + " holds " +
                        std::to_string(shard.weights.size()) + " weights for rank " + std::to_string(world.rank()) +
                        ", this run has " + std::to_string(params.layout().total));
      backend->upload(params.values(), shard.weights.data(), shard.weights.size());
      try {
        runner.optimizer()->load_state(shard.optimizer_state);
        start_step = static_cast<int>(dataset->decode_position(shard.data_position));
        if (outer_sync) {
          const auto section = shard.extra_sections.find("outer_state");
          if (section == shard.extra_sections.end())
            throw std::runtime_error("no outer_state section (written without strategy.outer)");
          outer_sync->load_state(section->second);
        }
      } catch (const std::exception& error) {
        throw UserError(std::string("--resume: checkpoint ") + loaded->info.directory.string() + ": " + error.what());
      }
      result.losses = shard.loss_history;
      const auto bytes = shard.extra_sections.find("worker_bytes_sent");
      if (bytes != shard.extra_sections.end() && bytes->second.size() == sizeof(double) * result.losses.size()) {
        result.worker_bytes_sent.resize(result.losses.size());
        std::memcpy(result.worker_bytes_sent.data(), bytes->second.data(), bytes->second.size());
      }
      result.resumed_from_step = start_step;
      say("resumed from " + loaded->info.directory.string() + " (step " + std::to_string(start_step) + ")");
    }
  }

  // ---- run store -------------------------------------------------------------------------------------------
  std::optional<report::RunStore> store;
  if (rank0 && options.use_database) {
    const std::filesystem::path path = options.database.empty() ? report::default_database_path() : options.database;
    store.emplace(report::RunStore::open(path));
    report::RunInfo info = report::run_info_for(scenario, report::RunKind::Training);
    info.overrides_json = options.overrides_json;
    result.run_id = store->begin_run(info);
  }
  std::vector<report::TraceRecord> all_records;  // for --trace
  const bool gather = runner_options.record_trace;

  say("engine train: " + scenario.name + " on " + std::to_string(world.size()) + " rank(s) [" + backend->name() +
      "], tp=" + std::to_string(strategy_spec.tp) + " pp=" + std::to_string(strategy_spec.pp) +
      " dp=" + std::to_string(strategy_spec.dp) + " zero=" + std::to_string(strategy_spec.zero) +
      ", " + std::to_string(strategy::parameter_count(model)) + " parameters, data: " + result.data_description);

  auto evaluate = [&]() {
    double total = 0;
    for (int batch = 0; batch < training.eval_batches; ++batch)
      total += runner.evaluate(source_for(data::Split::Validation, batch));
    return total / training.eval_batches;
  };

  auto fail = [&](const std::string& message) {
    if (store) store->fail_run(result.run_id, message);
  };

  // ---- the loop ---------------------------------------------------------------------------------------------
  const auto run_start = std::chrono::steady_clock::now();
  int last_checkpoint = start_step;
  try {
    for (int step = start_step + 1; step <= training.steps; ++step) {
      const double lr = scheduled_learning_rate(training, peak_lr, step);
      // Every rank starts its step together. Rank 0 records the previous step (progress line,
      // trace and metrics into the store) after it; without the barrier the other ranks' step
      // times would include waiting for that at their first collective (0.6-1.3 ms of a 2-rank
      // 11-53 ms step on the development VM), which a 1-rank run's step time never includes.
      if (world.size() > 1) world.barrier();
      const StepResult step_result = runner.step(step, lr, source_for(data::Split::Train, step));
      // Every rank has the same loss, so every rank stops at the same step.
      if (!std::isfinite(step_result.loss)) {
        std::string message = "training diverged: the loss is " +
                              std::string(std::isnan(step_result.loss) ? "nan" : "infinite") + " at step " +
                              std::to_string(step) + "; stopping";
        if (training.checkpoint_every > 0)
          message += last_checkpoint > 0 ? " (the last good checkpoint, step " + std::to_string(last_checkpoint) +
                                               ", is intact in " + checkpoint_dir.string() + ")"
                                         : " (no checkpoint was written)";
        fail(message);
        throw TrainingDiverged(message);
      }
      result.losses.push_back(step_result.loss);
      // The outer synchronisation after this inner step (collective over the workers when due).
      if (outer_sync) {
        outer_sync->after_step(step, parameters_on_host());
        parameters_to_device();
      }
      result.worker_bytes_sent.push_back(worker_bytes(step));
      // The slowest rank's step time is the step time.
      double seconds = step_result.seconds;
      world.all_reduce(&seconds, 1, comm::DataType::Float64, comm::ReduceOp::Max);
      result.step_times_s.push_back(seconds);
      const double tokens_per_s = tokens_per_step / seconds;

      std::optional<double> val_loss;
      if (training.eval_every > 0 && step % training.eval_every == 0 && step != training.steps) {
        val_loss = evaluate();
        result.validation_losses.emplace_back(step, *val_loss);
      }

      if (progress) {
        std::fprintf(stderr, "step %*d/%d  loss %.4f  lr %.3e  %8.0f tok/s  %.3f s", static_cast<int>(std::to_string(training.steps).size()),
                     step, training.steps, step_result.loss, lr, tokens_per_s, seconds);
        if (options.verbosity >= 2 && step_result.grad_norm >= 0) std::fprintf(stderr, "  grad norm %.3f", step_result.grad_norm);
        if (val_loss) std::fprintf(stderr, "  val loss %.4f", *val_loss);
        std::fprintf(stderr, "\n");
      }

      if (gather) {
        std::vector<report::TraceRecord> local = runner.last_trace();
        if (outer_sync) {
          const std::vector<report::TraceRecord> outer_records = outer_sync->take_records();
          local.insert(local.end(), outer_records.begin(), outer_records.end());
        }
        std::vector<report::TraceRecord> records = gather_trace(world, local);
        if (rank0) {
          if (store) store->add_trace(result.run_id, step, records);
          if (!options.trace_path.empty()) all_records.insert(all_records.end(), records.begin(), records.end());
        }
      }
      if (store) {
        std::vector<report::MetricPoint> points{{step, "loss", step_result.loss},
                                                {step, "lr", lr},
                                                {step, "step_time_s", seconds},
                                                {step, "tokens_per_s", tokens_per_s},
                                                {step, "worker_bytes_sent", result.worker_bytes_sent.back()}};
        if (step_result.grad_norm >= 0) points.push_back({step, "grad_norm", step_result.grad_norm});
        if (val_loss) points.push_back({step, "val_loss", *val_loss});
        store->add_metrics(result.run_id, points);
      }

      if (training.checkpoint_every > 0 && step % training.checkpoint_every == 0) {
        ParameterStore<float>& params = runner.model().parameters();
        std::vector<float> host_weights;
        std::span<const float> weights(params.values(), params.layout().total);
        if (!backend->is_host_memory()) {
          host_weights.resize(params.layout().total);
          backend->download(host_weights.data(), params.values(), host_weights.size());
          weights = host_weights;
        }
        std::vector<std::uint8_t> optimizer_state;
        runner.optimizer()->save_state(optimizer_state);
        const std::vector<std::uint8_t> position = dataset->encode_position(step);
        std::vector<std::uint8_t> rng(sizeof(training.seed));
        std::memcpy(rng.data(), &training.seed, sizeof(training.seed));  // no RNG state beyond the seed
        const std::vector<std::uint8_t> scenario_text = bytes_of(strategy::document_to_yaml(scenario.document));
        const std::vector<std::uint8_t> format = bytes_of(data_format_name(dataset->format()));
        checkpoint::RankCheckpointView view;
        view.weights = weights;
        view.optimizer_state = optimizer_state;
        view.rng_state = rng;
        view.data_position = position;
        view.loss_history = result.losses;
        view.extra_sections["scenario"] = scenario_text;
        view.extra_sections["data_format"] = format;
        std::vector<std::uint8_t> outer_state;
        if (outer_sync) {
          outer_state = outer_sync->save_state();
          view.extra_sections["outer_state"] = outer_state;
        }
        std::vector<std::uint8_t> bytes_history(sizeof(double) * result.worker_bytes_sent.size());
        if (!bytes_history.empty())
          std::memcpy(bytes_history.data(), result.worker_bytes_sent.data(), bytes_history.size());
        view.extra_sections["worker_bytes_sent"] = bytes_history;
        checkpoint::WriteOptions write_options;
        write_options.log = log_sink;
        try {
          checkpoint::write_checkpoint(checkpoint_dir, step, fingerprint, view, world, write_options);
        } catch (const checkpoint::CheckpointError& error) {
          throw UserError(std::string("training.checkpoint_dir: ") + error.what());
        }
        last_checkpoint = step;
        if (options.verbosity >= 2) say("checkpoint: step " + std::to_string(step) + " in " + checkpoint_dir.string());
      }
    }
    result.steps = static_cast<int>(result.losses.size());
    if (result.steps > 0) {
      result.final_val_loss = evaluate();
      result.validation_losses.emplace_back(result.steps, *result.final_val_loss);
    }
  } catch (const TrainingDiverged&) {
    throw;
  } catch (const std::exception& error) {
    fail(error.what());
    throw;
  }
  const double total_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();

  result.optimizer_state_bytes = static_cast<double>(runner.optimizer()->state_bytes());
  result.step_time_s = median_after_first(result.step_times_s);
  if (result.step_times_s.size() == 1) result.step_time_s = result.step_times_s.front();
  result.tokens_per_s = result.step_time_s > 0 ? tokens_per_step / result.step_time_s : 0;

  if (rank0 && !options.trace_path.empty()) report::write_chrome_trace(options.trace_path, all_records);
  if (store) {
    if (result.final_val_loss) store->add_metrics(result.run_id, std::vector<report::MetricPoint>{{result.steps, "final_val_loss", *result.final_val_loss}});
    report::Headline headline;
    if (result.step_time_s > 0) {
      headline.step_time_s = result.step_time_s;
      headline.tokens_per_s = result.tokens_per_s;
    }
    headline.gpus = world.size();
    store->finish_run(result.run_id, result_json(result), headline);
  }

  if (progress) {
    const int ran = static_cast<int>(result.step_times_s.size());
    std::string summary = "trained " + std::to_string(ran) + " step(s) in " + std::to_string(total_seconds).substr(0, 6) + " s";
    if (result.resumed_from_step) summary += " (resumed at step " + std::to_string(*result.resumed_from_step) + ")";
    std::fprintf(stderr, "%s\n", summary.c_str());
    if (!result.losses.empty()) std::fprintf(stderr, "  final training loss  %.4f\n", result.losses.back());
    if (result.final_val_loss) {
      std::fprintf(stderr, "  validation loss      %.4f", *result.final_val_loss);
      if (result.entropy_nats_per_token)
        std::fprintf(stderr, "   (data entropy %.4f nats/token, +%.4f)", *result.entropy_nats_per_token,
                     *result.final_val_loss - *result.entropy_nats_per_token);
      std::fprintf(stderr, "\n");
    }
    if (result.step_time_s > 0) {
      std::fprintf(stderr, "  step time            %.4f s (median)", result.step_time_s);
      if (result.predicted_step_time_s)
        std::fprintf(stderr, "   twin predicted %.4f s (measured / predicted = %.2f)", *result.predicted_step_time_s,
                     result.step_time_s / *result.predicted_step_time_s);
      std::fprintf(stderr, "\n  throughput           %.0f tokens/s, %.2f GFLOP/s (model FLOPs)\n", result.tokens_per_s,
                   result.model_flops_per_step / result.step_time_s * 1e-9);
    }
    if (!result.run_id.empty()) std::fprintf(stderr, "  run %s\n", result.run_id.c_str());
  }
  return result;
}

}  // namespace tandem::engine
