// bench_engine_step: seconds per training step of the engine itself (the rank runner executing
// the program: every op, the gradient norm, clipping and AdamW) on one process.
//
//   bench_engine_step [--model gpt2-124m] [--batch 4] [--seq 64] [--steps 5] [--threads 2]
//
// Default: the GPT-2 124M shape of the issue (12 layers, 12 heads, 768 hidden, vocab 50257, tied
// embeddings, fp32), B=4, T=64, 2 threads. Prints the median wall time per step (after one
// warm-up step), the model FLOP rate (strategy::model_flops_per_step, 6·N·tokens plus attention)
// and where the time goes, per op kind, from the runner's own per-op trace. Not a test: the
// numbers go into notes.
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "comm/communicator.hpp"
#include "engine/backend/backend.hpp"
#include "engine/cli/openmp_spin.hpp"
#include "engine/runner/runner.hpp"
#include "kernels/cpu/matmul.hpp"
#include "kernels/cpu/threading.hpp"
#include "strategy/model_formulas.hpp"
#include "strategy/scenario.hpp"

using namespace tandem;

namespace {
// CPU time of every thread of the process: on a shared machine, wall time includes waiting for
// other processes; CPU time / threads is what the step would take with the cores to itself.
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double wall_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// The GEMM rate the kernels reach on this machine now, on the step's threads: the best of 5
// input-gradient GEMMs (the fastest phase) of the MLP's shape, tokens x hidden x 4·hidden.
double measured_gemm_peak(int tokens, int hidden) {
  const int M = tokens, K = hidden, N = 4 * hidden;
  std::vector<float> dout(static_cast<std::size_t>(M) * N, 0.5f), weight(static_cast<std::size_t>(N) * K, 0.25f),
      dinp(static_cast<std::size_t>(M) * K);
  double best = 0;
  for (int repeat = 0; repeat < 5; ++repeat) {
    const double start = wall_seconds();
    kernels::cpu::matmul_backward_input(dinp.data(), dout.data(), weight.data(), M, K, N);
    best = std::max(best, 2.0 * M * N * K / (wall_seconds() - start));
  }
  return best;
}
}  // namespace

int main(int argc, char** argv) {
  engine::use_short_openmp_spin(argv);  // as the engine does
  std::string model = "gpt2-124m";
  int batch = 4, seq = 64, steps = 5, threads = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    const std::string value = argv[i + 1];
    if (key == "--model") model = value;
    else if (key == "--batch") batch = std::stoi(value);
    else if (key == "--seq") seq = std::stoi(value);
    else if (key == "--steps") steps = std::max(1, std::stoi(value));
    else if (key == "--threads") threads = std::stoi(value);
    else {
      std::fprintf(stderr, "usage: bench_engine_step [--model P] [--batch B] [--seq T] [--steps N] [--threads K]\n");
      return 2;
    }
  }
  const std::string yaml = "name: bench\nmodel:\n  preset: " + model + "\n  seq_len: " + std::to_string(seq) +
                           "\ncluster:\n  gpu: cpu\n  nodes: 1\n  gpus_per_node: 1\n  threads_per_rank: " +
                           std::to_string(threads) + "\nstrategy:\n  micro_batch: " + std::to_string(batch) +
                           "\n  global_batch: " + std::to_string(batch) +
                           "\n  precision: fp32\n  optimizer: adamw\ntraining:\n  steps: " + std::to_string(steps + 1) +
                           "\n  lr: 6e-4\n  grad_clip: 1.0\n  weight_decay: 0.1\n";
  const strategy::Scenario scenario = strategy::parse_scenario(yaml, ".");
  kernels::cpu::set_kernel_threads(threads);
  auto world = comm::make_single_process_communicator();
  auto backend = engine::make_cpu_backend<float>();
  const double construct_start = process_cpu_seconds();
  engine::Runner<float> runner(scenario, *world, *backend);
  std::printf("model built and initialised in %.2f s of CPU time\n", process_cpu_seconds() - construct_start);
  const int vocab = scenario.model->vocab;
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> token(0, vocab - 1);
  const engine::MicroBatchSource source = [&](int, std::vector<std::int32_t>& inputs, std::vector<std::int32_t>& targets) {
    inputs.resize(static_cast<std::size_t>(batch) * seq);
    targets.resize(inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      inputs[i] = token(rng);
      targets[i] = token(rng);
    }
  };

  const double flops = strategy::model_flops_per_step(*scenario.model, batch);
  std::printf("%s, B=%d, T=%d, %d thread(s): %lld parameters, %.3f TFLOP per step (model FLOPs)\n", model.c_str(), batch,
              seq, threads, static_cast<long long>(strategy::parameter_count(*scenario.model)), flops * 1e-12);
  std::vector<double> times, cpu_times, outside;
  std::map<std::string, double> by_kind;
  for (int step = 0; step <= steps; ++step) {
    const double cpu_start = process_cpu_seconds();
    const engine::StepResult result = runner.step(step + 1, 6e-4, source);
    const double cpu = process_cpu_seconds() - cpu_start;
    std::printf("  step %d: %.3f s wall, %.3f s CPU, loss %.4f\n", step + 1, result.seconds, cpu, result.loss);
    if (step == 0) continue;  // warm-up
    times.push_back(result.seconds);
    cpu_times.push_back(cpu);
    double in_ops = 0;
    for (const report::TraceRecord& record : runner.last_trace()) {
      std::string kind = std::string(strategy::to_string(record.code));
      by_kind[kind] += (record.end_s - record.start_s) / steps;
      in_ops += record.end_s - record.start_s;
    }
    outside.push_back(result.seconds - in_ops);
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  const double peak = measured_gemm_peak(batch * seq, scenario.model->hidden);
  std::printf("median %.3f s per step, %.1f GFLOP/s (%.0f%% of %.1f GFLOP/s, the best fp32 GEMM of the MLP's shape on %d "
              "thread(s) measured now), %.0f tokens/s\n",
              median, flops / median * 1e-9, 100.0 * flops / median / peak, peak * 1e-9, threads, batch * seq / median);
  std::sort(cpu_times.begin(), cpu_times.end());
  std::printf("median CPU time %.3f s per step (%.3f s per thread)\n", cpu_times[cpu_times.size() / 2],
              cpu_times[cpu_times.size() / 2] / threads);
  std::vector<std::pair<double, std::string>> sorted;
  for (const auto& [kind, seconds] : by_kind) sorted.emplace_back(seconds, kind);
  std::sort(sorted.rbegin(), sorted.rend());
  std::sort(outside.begin(), outside.end());
  std::printf("time per step by op (median %.1f ms outside the program's ops: data, the loss's all-reduce):\n",
              outside[outside.size() / 2] * 1e3);
  for (const auto& [seconds, kind] : sorted)
    if (seconds > 0.001) std::printf("  %-32s %8.1f ms\n", kind.c_str(), seconds * 1e3);
  return 0;
}
