// Damaged checkpoints are skipped with a message naming the file and the problem, and the
// previous good one is used; another world size or strategy is refused; retention keeps K.

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <string>

#include "comm/communicator.hpp"
#include "engine/checkpoint/checkpoint.hpp"
#include "tests/engine_checkpoint/test_support.hpp"

namespace tandem::engine::checkpoint {
namespace {

namespace fs = std::filesystem;
using testing::contents_for;
using testing::keep_newest;
using testing::LogCapture;
using testing::TemporaryDirectory;

constexpr const char* kFingerprint = "model=tiny dp=1 tp=1 pp=1 zero=0";

// Good checkpoints at steps 2 and 4; `damage` breaks step 4; the loader must return step 2 and
// say why it skipped step 4.
void expect_fallback(const std::function<void(const fs::path& step4)>& damage,
                     const std::string& expected_problem) {
  TemporaryDirectory directory;
  auto world = comm::make_single_process_communicator();
  write_checkpoint(directory.path(), 2, kFingerprint, contents_for(2, 0), *world);
  write_checkpoint(directory.path(), 4, kFingerprint, contents_for(4, 0), *world);
  const fs::path step4 = directory.path() / "step-00000004";
  damage(step4);
  ASSERT_TRUE(checkpoint_problem(step4).has_value());
  LogCapture log;
  const auto loaded = load_latest_good(directory.path(), 0, 1, kFingerprint, log.sink());
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->info.step, 2);
  EXPECT_TRUE(testing::bit_equal(loaded->shard, contents_for(2, 0)));
  ASSERT_EQ(log.messages.size(), 1u) << log.all();
  EXPECT_TRUE(log.contains("checkpoint '" + step4.string() + "' skipped: ")) << log.all();
  EXPECT_TRUE(log.contains(expected_problem)) << "expected \"" << expected_problem << "\" in\n"
                                              << log.all();
  EXPECT_TRUE(log.contains("falling back to an older checkpoint")) << log.all();
}

TEST(CheckpointRecovery, TruncatedShardIsSkipped) {
  expect_fallback(
      [](const fs::path& step4) {
        const auto path = step4 / "rank-0.bin";
        fs::resize_file(path, fs::file_size(path) - 100);
      },
      "rank-0.bin is truncated: ");
}

TEST(CheckpointRecovery, FlippedPayloadByteIsSkipped) {
  expect_fallback([](const fs::path& step4) { testing::flip_byte(step4 / "rank-0.bin", 400); },
                  "rank-0.bin is damaged: section 'weights' fails its checksum");
}

TEST(CheckpointRecovery, FlippedHeaderByteIsSkipped) {
  // Byte 30: inside the header's step field (header bytes 24..31).
  expect_fallback([](const fs::path& step4) { testing::flip_byte(step4 / "rank-0.bin", 30); },
                  "rank-0.bin is damaged: its header checksum does not match");
}

TEST(CheckpointRecovery, FlippedTrailerByteIsSkipped) {
  expect_fallback(
      [](const fs::path& step4) {
        testing::flip_byte(step4 / "rank-0.bin", fs::file_size(step4 / "rank-0.bin") - 12);
      },
      "rank-0.bin is damaged: its header checksum does not match");
}

TEST(CheckpointRecovery, MissingShardIsSkipped) {
  expect_fallback([](const fs::path& step4) { fs::remove(step4 / "rank-0.bin"); },
                  "rank-0.bin is missing");
}

TEST(CheckpointRecovery, ShardReplacedByAnotherStepsShardIsSkipped) {
  // A shard that verifies on its own but is not the one the manifest lists.
  expect_fallback(
      [](const fs::path& step4) {
        fs::copy_file(step4.parent_path() / "step-00000002" / "rank-0.bin", step4 / "rank-0.bin",
                      fs::copy_options::overwrite_existing);
      },
      "rank-0.bin is ");
}

TEST(CheckpointRecovery, ManifestThatIsNotJsonIsSkipped) {
  expect_fallback(
      [](const fs::path& step4) {
        const auto path = step4 / "manifest.json";
        const std::string text = testing::read_all(path);
        testing::write_all(path, text.substr(0, text.size() / 2));
      },
      "manifest.json is corrupt (not valid JSON");
}

TEST(CheckpointRecovery, ManifestWithAChangedValueIsSkipped) {
  // Still valid JSON, but a byte of the fingerprint changed: a damaged manifest, not another
  // strategy (its checksum says so).
  expect_fallback(
      [](const fs::path& step4) {
        const auto path = step4 / "manifest.json";
        std::string text = testing::read_all(path);
        const auto at = text.find("model=tiny");
        text[at] = 'M';
        testing::write_all(path, text);
      },
      "manifest.json is corrupt: its content does not match its manifest_checksum");
}

TEST(CheckpointRecovery, MissingManifestIsAnInterruptedWrite) {
  expect_fallback([](const fs::path& step4) { fs::remove(step4 / "manifest.json"); },
                  "manifest.json is missing (the checkpoint's write was interrupted");
}

TEST(CheckpointRecovery, NoGoodCheckpointGivesNothing) {
  TemporaryDirectory directory;
  auto world = comm::make_single_process_communicator();
  write_checkpoint(directory.path(), 1, kFingerprint, contents_for(1, 0), *world);
  fs::remove(directory.path() / "step-00000001" / "rank-0.bin");
  LogCapture log;
  EXPECT_FALSE(load_latest_good(directory.path(), 0, 1, kFingerprint, log.sink()).has_value());
  EXPECT_EQ(log.messages.size(), 1u);
  EXPECT_FALSE(find_latest_good(directory.path(), log.sink()).has_value());
}

TEST(CheckpointRecovery, AnotherWorldSizeIsRefusedNotSkipped) {
  TemporaryDirectory directory;
  auto world = comm::make_single_process_communicator();
  write_checkpoint(directory.path(), 2, kFingerprint, contents_for(2, 0), *world);
  try {
    load_latest_good(directory.path(), 1, 4, kFingerprint);
    ADD_FAILURE() << "a checkpoint of 1 rank was accepted by a run of 4";
  } catch (const CheckpointMismatch& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("step-00000002' was written by a run of 1 ranks but this run has 4"),
              std::string::npos)
        << message;
  }
  // find_latest_good (engine sample) takes any layout.
  EXPECT_EQ(find_latest_good(directory.path())->world_size, 1);
}

TEST(CheckpointRecovery, AnotherStrategyIsRefusedNamingTheDifference) {
  TemporaryDirectory directory;
  auto world = comm::make_single_process_communicator();
  write_checkpoint(directory.path(), 2, kFingerprint, contents_for(2, 0), *world);
  try {
    load_latest_good(directory.path(), 0, 1, "model=tiny dp=1 tp=1 pp=1 zero=1");
    ADD_FAILURE() << "another fingerprint was accepted";
  } catch (const CheckpointMismatch& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("was written for another strategy"), std::string::npos) << message;
    EXPECT_NE(message.find("(the checkpoint has 'zero=0' where this run has 'zero=1')"),
              std::string::npos)
        << message;
  }
}

TEST(CheckpointRecovery, MismatchBehindADamagedCheckpointIsStillRefused) {
  TemporaryDirectory directory;
  auto world = comm::make_single_process_communicator();
  write_checkpoint(directory.path(), 2, "other", contents_for(2, 0), *world);
  write_checkpoint(directory.path(), 4, kFingerprint, contents_for(4, 0), *world);
  fs::remove(directory.path() / "step-00000004" / "rank-0.bin");
  LogCapture log;
  EXPECT_THROW(load_latest_good(directory.path(), 0, 1, kFingerprint, log.sink()),
               CheckpointMismatch);
  EXPECT_EQ(log.messages.size(), 1u);
}

TEST(CheckpointRecovery, RetentionKeepsTheNewestK) {
  for (const int keep : {1, 2, 3}) {
    TemporaryDirectory directory;
    auto world = comm::make_single_process_communicator();
    for (std::int64_t step = 1; step <= 5; ++step) {
      write_checkpoint(directory.path(), step, kFingerprint, contents_for(step, 0), *world,
                       keep_newest(keep));
    }
    std::vector<std::int64_t> expected;
    for (std::int64_t step = 5; step > 5 - keep; --step) expected.push_back(step);
    EXPECT_EQ(list_checkpoint_steps(directory.path()), expected) << "keep " << keep;
  }
  TemporaryDirectory directory;
  auto world = comm::make_single_process_communicator();
  for (std::int64_t step = 1; step <= 4; ++step) {
    write_checkpoint(directory.path(), step, kFingerprint, contents_for(step, 0), *world,
                     keep_newest(0));
  }
  EXPECT_EQ(list_checkpoint_steps(directory.path()).size(), 4u);  // keep 0: all
}

TEST(CheckpointRecovery, RetentionCountsOnlyCompleteCheckpointsAndSparesNewerOnes) {
  TemporaryDirectory directory;
  auto world = comm::make_single_process_communicator();
  for (const std::int64_t step : {2, 4, 6}) {
    write_checkpoint(directory.path(), step, kFingerprint, contents_for(step, 0), *world, keep_newest(0));
  }
  fs::remove(directory.path() / "step-00000004" / "manifest.json");  // 4: incomplete
  fs::create_directories(directory.path() / "step-00000009");         // newer, incomplete
  write_checkpoint(directory.path(), 8, kFingerprint, contents_for(8, 0), *world, keep_newest(2));
  // Kept: 8 and 6 (the two newest complete); 2 and the incomplete 4 are older: deleted; 9 is
  // newer than the step written: untouched.
  EXPECT_EQ(list_checkpoint_steps(directory.path()), (std::vector<std::int64_t>{9, 8, 6}));
}

TEST(CheckpointRecovery, RewritingAStepReplacesItCleanly) {
  TemporaryDirectory directory;
  auto world = comm::make_single_process_communicator();
  write_checkpoint(directory.path(), 3, kFingerprint, contents_for(3, 0), *world);
  // Leftovers of an interrupted write of the same step.
  testing::write_all(directory.path() / "step-00000003" / ".rank-0.bin.tmp-1-deadbeef", "junk");
  RankCheckpoint other = contents_for(3, 7);
  write_checkpoint(directory.path(), 3, kFingerprint, other, *world);
  const auto loaded = load_latest_good(directory.path(), 0, 1, kFingerprint);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_TRUE(testing::bit_equal(loaded->shard, other));
  EXPECT_FALSE(fs::exists(directory.path() / "step-00000003" / ".rank-0.bin.tmp-1-deadbeef"));
}

TEST(CheckpointRecovery, UnwritableDirectoryIsAClearError) {
  TemporaryDirectory directory;
  auto world = comm::make_single_process_communicator();
  const fs::path file = directory.path() / "a-file";
  testing::write_all(file, "x");
  try {
    write_checkpoint(file / "checkpoints", 1, kFingerprint, contents_for(1, 0), *world);
    ADD_FAILURE() << "wrote under a regular file";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("a-file"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tandem::engine::checkpoint
