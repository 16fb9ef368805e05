#pragma once
// Helpers shared by the engine tests: tiny scenarios as YAML, running the `engine` executable
// (optionally under mpirun) and reading its JSON.

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tandem::engine::test {

struct TinyModel {
  int layers = 2;
  int hidden = 16;
  int heads = 4;
  int kv_heads = 4;
  int ffn = 32;
  int vocab = 32;
  int seq_len = 8;
  std::string activation = "gelu";
  std::string norm = "layernorm";
  std::string position = "learned";
  bool tied = false;
};

struct TinyRun {
  int micro_batch = 2;
  int global_batch = 4;
  int steps = 4;
  int gpus = 1;
  int threads = 1;
  std::string optimizer = "adamw";
  double lr = 1e-3;
  double grad_clip = 1.0;
  double weight_decay = 0.1;
  std::string data = "synthetic";
  std::map<std::string, std::string> strategy;  // extra strategy keys (tp, pp, zero, ...)
  std::map<std::string, std::string> optimizer_args;
};

inline std::string scenario_yaml(const TinyModel& m, const TinyRun& r) {
  std::ostringstream y;
  y << "name: engine-test\n"
    << "model:\n"
    << "  layers: " << m.layers << "\n  hidden: " << m.hidden << "\n  heads: " << m.heads
    << "\n  kv_heads: " << m.kv_heads << "\n  ffn_hidden: " << m.ffn << "\n  vocab: " << m.vocab
    << "\n  seq_len: " << m.seq_len << "\n  activation: " << m.activation << "\n  norm: " << m.norm
    << "\n  position: " << m.position << "\n  tied_embeddings: " << (m.tied ? "true" : "false") << "\n"
    << "cluster:\n  gpu: cpu\n  nodes: 1\n  gpus_per_node: " << r.gpus << "\n  threads_per_rank: " << r.threads
    << "\n"
    << "strategy:\n  micro_batch: " << r.micro_batch << "\n  global_batch: " << r.global_batch
    << "\n  precision: fp32\n  optimizer: " << r.optimizer << "\n";
  for (const auto& [key, value] : r.strategy) y << "  " << key << ": " << value << "\n";
  if (!r.optimizer_args.empty()) {
    y << "  optimizer_args:\n";
    for (const auto& [key, value] : r.optimizer_args) y << "    " << key << ": " << value << "\n";
  }
  y << "training:\n  steps: " << r.steps << "\n  lr: " << r.lr << "\n  warmup_steps: 2\n  lr_schedule: cosine\n"
    << "  grad_clip: " << r.grad_clip << "\n  weight_decay: " << r.weight_decay << "\n  seed: 42\n  data: " << r.data
    << "\n  eval_batches: 1\n";
  return y.str();
}

inline std::filesystem::path temp_dir(const std::string& name) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("tandem-engine-test-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

struct CommandResult {
  int exit_code = -1;   // -signal when killed
  std::string out, err;
};

inline std::string quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// The engine executable with `args`, under mpirun when ranks > 1 (the launch flags of
// cmake/TandemHelpers.cmake's tandem_add_mpi_test). `environment` is prefixed as VAR=value.
inline std::string engine_command(const std::vector<std::string>& args, int ranks = 1,
                                  const std::string& environment = "") {
  std::string command = environment.empty() ? "" : environment + " ";
  command += "TANDEM_DB=/dev/null/unused ";  // never touch the user's run store by accident
  if (ranks > 1) {
    command += std::string("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ") + TANDEM_MPIEXEC + " -np " +
               std::to_string(ranks) +
               " --oversubscribe --bind-to none --mca pml ob1 --mca btl self,vader "
               "--mca btl_vader_single_copy_mechanism none ";
  }
  command += quote(TANDEM_ENGINE_EXECUTABLE);
  for (const std::string& arg : args) command += " " + quote(arg);
  return command;
}

inline CommandResult run_command(const std::string& command) {
  static int counter = 0;
  const std::filesystem::path dir = std::filesystem::temp_directory_path();
  const std::string stem = "tandem-engine-cmd-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  const std::filesystem::path out = dir / (stem + ".out"), err = dir / (stem + ".err");
  const int status = std::system((command + " > " + quote(out.string()) + " 2> " + quote(err.string())).c_str());
  CommandResult result;
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) result.exit_code = -WTERMSIG(status);
  result.out = read_file(out);
  result.err = read_file(err);
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return result;
}

inline std::vector<double> losses_of(const std::string& json_text) {
  return nlohmann::json::parse(json_text).at("losses").get<std::vector<double>>();
}

}  // namespace tandem::engine::test
