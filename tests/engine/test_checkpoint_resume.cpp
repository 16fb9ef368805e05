// Kill and resume, end to end: `engine train` SIGKILLed inside every phase of checkpoint writing
// (TANDEM_CHECKPOINT_KILL_AT, engine/checkpoint/fault_injection.hpp) and at a random moment, then
// resumed with --resume, reports exactly — bit for bit — the losses of an uninterrupted run. A
// corrupt newest checkpoint falls back to the previous good one; a checkpoint written by another
// world size or strategy is refused.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "tests/engine/engine_test_support.hpp"

extern char** environ;

namespace tandem::engine {
namespace {

using test::engine_command;
using test::run_command;

constexpr int kSteps = 12;

struct Fixture {
  std::string dir;
  std::string scenario;
};

Fixture make_fixture(const std::string& name, int gpus = 1, std::map<std::string, std::string> strategy = {}) {
  Fixture f;
  f.dir = test::temp_dir("resume-" + name).string();
  test::TinyModel model;
  test::TinyRun run;
  run.steps = kSteps;
  run.gpus = gpus;
  run.strategy = std::move(strategy);
  run.global_batch = 4;
  f.scenario = f.dir + "/scenario.yaml";
  test::write_file(f.scenario, test::scenario_yaml(model, run));
  return f;
}

std::vector<std::string> train_args(const Fixture& f, const std::string& checkpoints, bool resume,
                                    int steps = kSteps) {
  std::vector<std::string> args{"train", f.scenario, "--json", "--no-db", "--quiet", "--checkpoint-dir", checkpoints,
                                "--checkpoint-every", "3", "--steps", std::to_string(steps)};
  if (resume) args.push_back("--resume");
  return args;
}

std::vector<double> uninterrupted(const Fixture& f, int ranks = 1, int steps = kSteps) {
  const auto result = run_command(engine_command(train_args(f, f.dir + "/reference", false, steps), ranks));
  EXPECT_EQ(result.exit_code, 0) << result.err;
  return result.exit_code == 0 ? test::losses_of(result.out) : std::vector<double>{};
}

TEST(EngineCheckpointResume, KillAtEveryPhaseOfCheckpointWritingThenResume) {
  const Fixture f = make_fixture("phases");
  const std::vector<double> reference = uninterrupted(f);
  ASSERT_EQ(reference.size(), static_cast<std::size_t>(kSteps));
  // Step 9's checkpoint: 3 and 6 exist, so retention has step 3 to delete (keep = 2).
  for (const std::string phase : {"shard-partial", "shard-written", "shard-renamed", "barrier", "manifest-written",
                                  "manifest-renamed", "retention"}) {
    SCOPED_TRACE(phase);
    const std::string checkpoints = f.dir + "/ckpt-" + phase;
    const auto killed = run_command(
        engine_command(train_args(f, checkpoints, false), 1, "TANDEM_CHECKPOINT_KILL_AT=" + phase + "@9"));
    // SIGKILL (the shell reports it as 128 + 9).
    EXPECT_TRUE(killed.exit_code == -SIGKILL || killed.exit_code == 128 + SIGKILL) << killed.exit_code << killed.err;
    EXPECT_NE(killed.err.find("TANDEM_CHECKPOINT_KILL_AT: killing rank 0 at phase " + phase), std::string::npos)
        << killed.err;
    const auto resumed = run_command(engine_command(train_args(f, checkpoints, true)));
    ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
    EXPECT_EQ(test::losses_of(resumed.out), reference);  // bit for bit
    const int expected_from = (phase == "manifest-renamed" || phase == "retention") ? 9 : 6;
    EXPECT_EQ(nlohmann::json::parse(resumed.out).at("resumed_from_step"), expected_from);
  }
}

TEST(EngineCheckpointResume, TwoRanksKilledOnOneRankThenResumed) {
  const Fixture f = make_fixture("two-ranks", 2, {{"pp", "2"}});
  const std::vector<double> reference = uninterrupted(f, 2);
  ASSERT_EQ(reference.size(), static_cast<std::size_t>(kSteps));
  const std::string checkpoints = f.dir + "/ckpt";
  const auto killed =
      run_command(engine_command(train_args(f, checkpoints, false), 2, "TANDEM_CHECKPOINT_KILL_AT=shard-renamed:1@6"));
  EXPECT_NE(killed.exit_code, 0);
  const auto resumed = run_command(engine_command(train_args(f, checkpoints, true), 2));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(test::losses_of(resumed.out), reference);
  EXPECT_EQ(nlohmann::json::parse(resumed.out).at("resumed_from_step"), 3);
}

TEST(EngineCheckpointResume, KillAtARandomMomentThenResume) {
  const Fixture f = make_fixture("random");
  const auto reference_run = run_command(engine_command(train_args(f, f.dir + "/reference", false)));
  ASSERT_EQ(reference_run.exit_code, 0) << reference_run.err;
  const std::vector<double> reference = test::losses_of(reference_run.out);
  const double step_seconds = nlohmann::json::parse(reference_run.out).at("step_time_s").get<double>();
  std::mt19937 rng(20240520);
  bool killed = false;
  std::string checkpoints;
  // A random moment after the first checkpoint (step 3) and before the end; a run that finishes
  // first (the machine was faster than the draw) is tried again with a new draw.
  for (int attempt = 0; attempt < 5 && !killed; ++attempt) {
    checkpoints = f.dir + "/ckpt-" + std::to_string(attempt);
    const std::vector<std::string> args = train_args(f, checkpoints, false);
    std::vector<std::string> argv_strings{TANDEM_ENGINE_EXECUTABLE};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& s : argv_strings) argv.push_back(s.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    ASSERT_EQ(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    const std::filesystem::path first = std::filesystem::path(checkpoints) / "step-00000003" / "manifest.json";
    int status = 0;
    bool exited = false;
    for (int wait_ms = 0; wait_ms < 120000 && !std::filesystem::exists(first); ++wait_ms) {
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        exited = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (!exited) {
      const double moment = std::uniform_real_distribution<double>(0.0, 0.8)(rng) * (kSteps - 3) * step_seconds /
                            (attempt + 1);
      std::this_thread::sleep_for(std::chrono::duration<double>(moment));
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      killed = WIFSIGNALED(status);
      if (killed) std::printf("  killed %.1f ms after the first checkpoint (steps take %.1f ms)\n", moment * 1e3,
                              step_seconds * 1e3);
    }
  }
  ASSERT_TRUE(killed) << "no attempt interrupted the run";
  const auto resumed = run_command(engine_command(train_args(f, checkpoints, true)));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(test::losses_of(resumed.out), reference);
}

TEST(EngineCheckpointResume, CorruptNewestCheckpointFallsBackToThePreviousGoodOne) {
  const Fixture f = make_fixture("corrupt");
  const std::string checkpoints = f.dir + "/ckpt";
  const auto first = run_command(engine_command(train_args(f, checkpoints, false)));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  // Retention keeps steps 9 and 12; flip one byte in the middle of step 12's shard.
  const std::filesystem::path shard = std::filesystem::path(checkpoints) / "step-00000012" / "rank-0.bin";
  ASSERT_TRUE(std::filesystem::exists(shard));
  {
    std::fstream file(shard, std::ios::in | std::ios::out | std::ios::binary);
    file.seekg(static_cast<std::streamoff>(std::filesystem::file_size(shard) / 2));
    char byte = 0;
    file.read(&byte, 1);
    byte = static_cast<char>(byte ^ 0x5A);
    file.seekp(static_cast<std::streamoff>(std::filesystem::file_size(shard) / 2));
    file.write(&byte, 1);
  }
  const auto resumed = run_command(engine_command(train_args(f, checkpoints, true)));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("step-00000012"), std::string::npos) << "the skipped checkpoint is named\n" << resumed.err;
  EXPECT_EQ(nlohmann::json::parse(resumed.out).at("resumed_from_step"), 9);
  EXPECT_EQ(test::losses_of(resumed.out), uninterrupted(f));
}

TEST(EngineCheckpointResume, AnotherWorldSizeOrStrategyIsRefused) {
  const Fixture f = make_fixture("refuse");
  const std::string checkpoints = f.dir + "/ckpt";
  const auto first = run_command(engine_command(train_args(f, checkpoints, false, 3)));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  // Two data-parallel ranks resuming a one-rank checkpoint.
  std::vector<std::string> args = train_args(f, checkpoints, true, 6);
  args.insert(args.end(), {"--set", "cluster.gpus_per_node=2"});
  const auto other_world = run_command(engine_command(args, 2));
  EXPECT_NE(other_world.exit_code, 0);
  EXPECT_NE(other_world.err.find("world"), std::string::npos) << other_world.err;
  // Same world, another strategy (micro-batch size).
  args = train_args(f, checkpoints, true, 6);
  args.insert(args.end(), {"--set", "strategy.micro_batch=1"});
  const auto other_strategy = run_command(engine_command(args));
  EXPECT_EQ(other_strategy.exit_code, 2) << other_strategy.err;
  EXPECT_NE(other_strategy.err.find("--resume"), std::string::npos) << other_strategy.err;
}

}  // namespace
}  // namespace tandem::engine
