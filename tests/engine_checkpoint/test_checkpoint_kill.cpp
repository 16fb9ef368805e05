// SIGKILL inside checkpoint writing: a forked child writes checkpoint 6 over good checkpoints 2
// and 4 and is killed at each phase (TANDEM_CHECKPOINT_KILL_AT); afterwards the newest good
// checkpoint is 4 (killed before the manifest was durable) or 6 (after), never a broken one, and
// what is loaded is exactly what was written for that step. Then a kill at random moments.

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "comm/communicator.hpp"
#include "engine/checkpoint/checkpoint.hpp"
#include "engine/checkpoint/fault_injection.hpp"
#include "tests/engine_checkpoint/test_support.hpp"

namespace tandem::engine::checkpoint {
namespace {

namespace fs = std::filesystem;
using testing::contents_for;
using testing::LogCapture;
using testing::TemporaryDirectory;

constexpr const char* kFingerprint = "dp=1 tp=1 pp=1";

// Runs `body` in a forked child with TANDEM_CHECKPOINT_KILL_AT=`kill_at`; returns the wait status.
template <typename Body>
int run_child(const std::string& kill_at, Body body) {
  const pid_t child = ::fork();
  if (child == 0) {
    ::setenv(kKillEnvironmentVariable, kill_at.c_str(), 1);
    // The child's stderr line about the kill is expected; keep the test log short.
    try {
      body();
    } catch (...) {
      ::_exit(3);
    }
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  return status;
}

// Every checkpoint the loader could see verifies, and the one it returns holds exactly what was
// written for its step.
void expect_consistent(const fs::path& dir, std::int64_t expected_step, std::size_t weights) {
  LogCapture log;
  const auto loaded = load_latest_good(dir, 0, 1, kFingerprint, log.sink());
  ASSERT_TRUE(loaded.has_value()) << log.all();
  EXPECT_EQ(loaded->info.step, expected_step) << log.all();
  EXPECT_EQ(checkpoint_problem(loaded->info.directory), std::nullopt);
  EXPECT_TRUE(testing::bit_equal(loaded->shard, contents_for(loaded->info.step, 0, weights)));
}

TEST(CheckpointKill, EveryPhaseLeavesTheOldOrTheNewCheckpoint) {
  const std::size_t weights = 200000;  // 800 kB of weights: the write takes several syscalls
  for (const KillPhase phase : all_kill_phases()) {
    SCOPED_TRACE(std::string(to_string(phase)));
    TemporaryDirectory directory;
    {
      auto world = comm::make_single_process_communicator();
      write_checkpoint(directory.path(), 2, kFingerprint, contents_for(2, 0, weights), *world);
      write_checkpoint(directory.path(), 4, kFingerprint, contents_for(4, 0, weights), *world);
    }
    const int status = run_child(std::string(to_string(phase)) + "@6", [&] {
      auto world = comm::make_single_process_communicator();
      write_checkpoint(directory.path(), 6, kFingerprint, contents_for(6, 0, weights), *world);
    });
    ASSERT_TRUE(WIFSIGNALED(status)) << "the child was not killed (exit status " << status << ")";
    EXPECT_EQ(WTERMSIG(status), SIGKILL);

    const bool manifest_durable =
        phase == KillPhase::ManifestRenamed || phase == KillPhase::Retention;
    expect_consistent(directory.path(), manifest_durable ? 6 : 4, weights);
    if (phase == KillPhase::Retention) {
      // Step 2 lost its manifest first: it is an incomplete checkpoint, never a broken good one.
      EXPECT_TRUE(checkpoint_problem(directory.path() / "step-00000002").has_value());
    }

    // The run resumes and writes step 6 again: it succeeds over whatever the kill left, and
    // nothing of the interrupted write remains.
    auto world = comm::make_single_process_communicator();
    write_checkpoint(directory.path(), 6, kFingerprint, contents_for(6, 0, weights), *world);
    expect_consistent(directory.path(), 6, weights);
    EXPECT_EQ(list_checkpoint_steps(directory.path()), (std::vector<std::int64_t>{6, 4}));
    for (const auto& entry : fs::directory_iterator(directory.path() / "step-00000006")) {
      const std::string name = entry.path().filename().string();
      EXPECT_TRUE(name == "manifest.json" || name == "rank-0.bin") << "left over: " << name;
    }
  }
}

TEST(CheckpointKill, KillRequestsForAnotherStepOrRankDoNotFire) {
  TemporaryDirectory directory;
  for (const std::string request : {"shard-written@99", "shard-written:1", "manifest-written:3"}) {
    const int status = run_child(request, [&] {
      auto world = comm::make_single_process_communicator();
      write_checkpoint(directory.path(), 1, kFingerprint, contents_for(1, 0), *world);
    });
    ASSERT_TRUE(WIFEXITED(status)) << request;
    EXPECT_EQ(WEXITSTATUS(status), 0) << request;
  }
  // Without a step, the first checkpoint that reaches the phase is the one killed.
  const int status = run_child("shard-renamed", [&] {
    auto world = comm::make_single_process_communicator();
    write_checkpoint(directory.path(), 2, kFingerprint, contents_for(2, 0), *world);
    write_checkpoint(directory.path(), 3, kFingerprint, contents_for(3, 0), *world);
  });
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_FALSE(fs::exists(directory.path() / "step-00000002" / "manifest.json"));
  EXPECT_FALSE(fs::exists(directory.path() / "step-00000003"));
  // An invalid request is refused before anything is written.
  const int refused = run_child("after-lunch", [&] {
    auto world = comm::make_single_process_communicator();
    write_checkpoint(directory.path(), 5, kFingerprint, contents_for(5, 0), *world);
  });
  ASSERT_TRUE(WIFEXITED(refused));
  EXPECT_EQ(WEXITSTATUS(refused), 3);
  EXPECT_FALSE(fs::exists(directory.path() / "step-00000005"));
}

TEST(CheckpointKill, KillAtRandomMomentsNeverLeavesABrokenNewestCheckpoint) {
  const std::size_t weights = 100000;
  for (const int delay_ms : {2, 5, 11, 23, 37, 61}) {
    SCOPED_TRACE("kill after " + std::to_string(delay_ms) + " ms");
    TemporaryDirectory directory;
    const pid_t child = ::fork();
    if (child == 0) {
      ::unsetenv(kKillEnvironmentVariable);
      auto world = comm::make_single_process_communicator();
      for (std::int64_t step = 1; step < 100000; ++step) {
        write_checkpoint(directory.path(), step, kFingerprint, contents_for(step, 0, weights),
                         *world);
      }
      ::_exit(0);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status));
    LogCapture log;
    const auto loaded = load_latest_good(directory.path(), 0, 1, kFingerprint, log.sink());
    if (!loaded) continue;  // killed before the first manifest: nothing good yet, nothing broken
    EXPECT_EQ(checkpoint_problem(loaded->info.directory), std::nullopt);
    EXPECT_TRUE(testing::bit_equal(loaded->shard, contents_for(loaded->info.step, 0, weights)));
    // Nothing newer than what was loaded is good.
    for (const std::int64_t step : list_checkpoint_steps(directory.path())) {
      if (step > loaded->info.step) {
        EXPECT_TRUE(checkpoint_problem(directory.path() / step_directory_name(step)).has_value());
      }
    }
  }
}

}  // namespace
}  // namespace tandem::engine::checkpoint
