// Two ranks under mpirun (tandem_add_mpi_test): each writes its own shard, rank 0 the manifest;
// both load their own shard back; a damaged or missing shard of either rank makes BOTH ranks
// fall back to the same previous checkpoint; a run of another world size is refused.

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "comm/mpi_communicator.hpp"
#include "engine/checkpoint/checkpoint.hpp"
#include "tests/engine_checkpoint/test_support.hpp"

namespace tandem::engine::checkpoint {
namespace {

namespace fs = std::filesystem;
using testing::contents_for;
using testing::LogCapture;

std::unique_ptr<comm::Communicator> g_world;
constexpr const char* kFingerprint = "dp=2 tp=1 pp=1";

// A scratch directory made by rank 0 and shared with every rank; removed by rank 0.
class SharedDirectory {
 public:
  SharedDirectory() {
    std::vector<std::uint8_t> name(4096, 0);
    if (g_world->rank() == 0) {
      std::string pattern = (fs::temp_directory_path() / "tandem-checkpoint-mpi-XXXXXX").string();
      if (::mkdtemp(pattern.data()) == nullptr) std::abort();
      std::copy(pattern.begin(), pattern.end(), name.begin());
    }
    g_world->broadcast(name.data(), name.size(), comm::DataType::UInt8, 0);
    path_ = reinterpret_cast<const char*>(name.data());
  }
  ~SharedDirectory() {
    g_world->barrier();
    if (g_world->rank() == 0) {
      std::error_code ignored;
      fs::remove_all(path_, ignored);
    }
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

TEST(CheckpointMpi, EachRankWritesAndLoadsItsOwnShard) {
  ASSERT_EQ(g_world->size(), 2);
  const int rank = g_world->rank();
  SharedDirectory directory;
  const CheckpointInfo info =
      write_checkpoint(directory.path(), 3, kFingerprint, contents_for(3, rank), *g_world);
  EXPECT_EQ(info.world_size, 2);
  ASSERT_EQ(info.shards.size(), 2u);
  EXPECT_EQ(info.shards[1].file, "rank-1.bin");
  const auto loaded = load_latest_good(directory.path(), rank, 2, kFingerprint);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->info.step, 3);
  EXPECT_TRUE(testing::bit_equal(loaded->shard, contents_for(3, rank)));
  EXPECT_FALSE(testing::bit_equal(loaded->shard, contents_for(3, 1 - rank)));
  EXPECT_EQ(checkpoint_problem(loaded->info.directory), std::nullopt);
  EXPECT_THROW(load_latest_good(directory.path(), 0, 1, kFingerprint), CheckpointMismatch);
  EXPECT_THROW(load_latest_good(directory.path(), rank, 2, "dp=1 tp=2 pp=1"), CheckpointMismatch);
}

TEST(CheckpointMpi, DamageToEitherRanksShardMakesBothRanksFallBack) {
  const int rank = g_world->rank();
  for (const int damaged_rank : {0, 1}) {
    for (const bool remove : {false, true}) {
      SharedDirectory directory;
      write_checkpoint(directory.path(), 2, kFingerprint, contents_for(2, rank), *g_world);
      write_checkpoint(directory.path(), 4, kFingerprint, contents_for(4, rank), *g_world);
      const fs::path shard = directory.path() / "step-00000004" / shard_file_name(damaged_rank);
      if (rank == 0) {
        if (remove) {
          fs::remove(shard);
        } else {
          testing::flip_byte(shard, fs::file_size(shard) / 2);
        }
      }
      g_world->barrier();
      LogCapture log;
      const auto loaded = load_latest_good(directory.path(), rank, 2, kFingerprint, log.sink());
      ASSERT_TRUE(loaded.has_value());
      EXPECT_EQ(loaded->info.step, 2) << "damaged rank " << damaged_rank;
      EXPECT_TRUE(testing::bit_equal(loaded->shard, contents_for(2, rank)));
      EXPECT_TRUE(log.contains(shard_file_name(damaged_rank) +
                               (remove ? " is missing" : " is damaged")))
          << log.all();
    }
  }
}

TEST(CheckpointMpi, RetentionAcrossRanks) {
  const int rank = g_world->rank();
  SharedDirectory directory;
  for (std::int64_t step = 1; step <= 4; ++step) {
    write_checkpoint(directory.path(), step, kFingerprint, contents_for(step, rank), *g_world);
  }
  g_world->barrier();
  EXPECT_EQ(list_checkpoint_steps(directory.path()), (std::vector<std::int64_t>{4, 3}));
}

// Prints the failed assertions (only) of a non-zero rank, prefixed with its rank.
class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (result.failed()) {
      std::fprintf(stderr, "[rank %d] %s:%d: Failure\n%s\n", rank_,
                   result.file_name() ? result.file_name() : "?", result.line_number(),
                   result.message());
    }
  }

 private:
  int rank_;
};

}  // namespace
}  // namespace tandem::engine::checkpoint

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  tandem::engine::checkpoint::g_world = tandem::comm::make_mpi_world_communicator();
  if (tandem::engine::checkpoint::g_world->rank() != 0) {
    // Rank 0 prints the usual report, the others only their failures (which also fail their
    // exit code, and so mpirun's).
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new tandem::engine::checkpoint::FailurePrinter(
        tandem::engine::checkpoint::g_world->rank()));
  }
  const int result = RUN_ALL_TESTS();
  tandem::engine::checkpoint::g_world.reset();
  return result;
}
