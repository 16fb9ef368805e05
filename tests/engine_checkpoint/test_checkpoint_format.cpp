// The checkpoint format: checksums against published values, a bit-exact round trip of every
// section, and the files parsed by hand from the layout documented in checkpoint.hpp.

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "comm/communicator.hpp"
#include "engine/checkpoint/checkpoint.hpp"
#include "engine/checkpoint/checksum.hpp"
#include "engine/checkpoint/fault_injection.hpp"
#include "tests/engine_checkpoint/test_support.hpp"

namespace tandem::engine::checkpoint {
namespace {

using testing::contents_for;
using testing::keep_newest;
using testing::TemporaryDirectory;

// FNV-1a 64 written from its definition: offset basis 14695981039346656037, prime 1099511628211.
std::uint64_t reference_fnv1a64(std::string_view bytes) {
  std::uint64_t hash = 14695981039346656037ULL;
  for (const unsigned char c : bytes) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  return hash;
}

TEST(CheckpointFormat, Fnv1a64MatchesPublishedValuesAndStreams) {
  // Published FNV-1a 64 test vectors (Fowler/Noll/Vo).
  EXPECT_EQ(fnv1a64("", 0), 0xcbf29ce484222325ULL);
  EXPECT_EQ(fnv1a64("a", 1), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(fnv1a64("foobar", 6), 0x85944171f73967e8ULL);
  std::mt19937 random(1);
  std::string data(100000, '\0');
  for (auto& c : data) c = static_cast<char>(random());
  Fnv1a64 pieces;
  for (std::size_t at = 0; at < data.size(); at += 777) {
    pieces.update(data.data() + at, std::min<std::size_t>(777, data.size() - at));
  }
  EXPECT_EQ(pieces.value(), reference_fnv1a64(data));
  std::uint64_t parsed = 0;
  EXPECT_EQ(checksum_text(0xaf63dc4c8601ec8cULL), "fnv1a64:af63dc4c8601ec8c");
  EXPECT_TRUE(parse_checksum_text("fnv1a64:af63dc4c8601ec8c", parsed));
  EXPECT_EQ(parsed, 0xaf63dc4c8601ec8cULL);
  EXPECT_FALSE(parse_checksum_text("fnv1a64:AF63DC4C8601EC8C", parsed));
  EXPECT_FALSE(parse_checksum_text("crc32:af63dc4c", parsed));
}

TEST(CheckpointFormat, EverySectionRoundTripsBitExactly) {
  TemporaryDirectory directory;
  auto world = comm::make_single_process_communicator();
  const RankCheckpoint original = contents_for(12, 0, 4096);
  const CheckpointInfo written =
      write_checkpoint(directory.path(), 12, "dp=1 tp=1 pp=1", original, *world);
  EXPECT_EQ(written.step, 12);
  EXPECT_EQ(written.directory, directory.path() / "step-00000012");
  const auto loaded = load_latest_good(directory.path(), 0, 1, "dp=1 tp=1 pp=1");
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->info.step, 12);
  EXPECT_EQ(loaded->info.world_size, 1);
  EXPECT_EQ(loaded->info.fingerprint, "dp=1 tp=1 pp=1");
  EXPECT_TRUE(testing::bit_equal(loaded->shard, original));
  EXPECT_EQ(loaded->shard.extra_sections.size(), 2u);
  EXPECT_EQ(loaded->shard.extra_sections.at("lr_schedule"), original.extra_sections.at("lr_schedule"));
  EXPECT_EQ(checkpoint_problem(written.directory), std::nullopt);
  const ShardFile shard = read_shard(written.directory / "rank-0.bin");
  EXPECT_TRUE(testing::bit_equal(shard.contents, original));
  EXPECT_EQ(shard.checksum, written.shards[0].checksum);

  // Step 0 (before any training step): empty loss history.
  const RankCheckpoint initial = contents_for(0, 0, 8);
  write_checkpoint(directory.path(), 0, "x", initial, *world, keep_newest(0));
  EXPECT_EQ(checkpoint_problem(directory.path() / "step-00000000"), std::nullopt);
}

// Little-endian reads at a cursor, as the layout comment describes.
struct Cursor {
  const std::string& bytes;
  std::size_t at = 0;
  template <typename T>
  T get() {
    T value;
    std::memcpy(&value, bytes.data() + at, sizeof value);
    at += sizeof value;
    return value;
  }
  std::string text() {
    const auto length = get<std::uint32_t>();
    std::string out = bytes.substr(at, length);
    at += length;
    return out;
  }
};

TEST(CheckpointFormat, FilesFollowTheDocumentedLayout) {
  TemporaryDirectory directory;
  auto world = comm::make_single_process_communicator();
  const RankCheckpoint original = contents_for(3, 0, 10);
  write_checkpoint(directory.path(), 3, "model=tiny dp=1", original, *world);
  const auto step_directory = directory.path() / "step-00000003";
  const std::string shard = testing::read_all(step_directory / "rank-0.bin");

  Cursor cursor{shard};
  EXPECT_EQ(shard.substr(0, 8), "TNDMCKPT");
  cursor.at = 8;
  EXPECT_EQ(cursor.get<std::uint32_t>(), 1u);  // version
  EXPECT_EQ(cursor.get<std::uint32_t>(), 0u);  // rank
  EXPECT_EQ(cursor.get<std::uint32_t>(), 1u);  // world size
  const auto sections = cursor.get<std::uint32_t>();
  EXPECT_EQ(sections, 7u);  // five standard sections + "empty" + "lr_schedule"
  EXPECT_EQ(cursor.get<std::int64_t>(), 3);
  EXPECT_EQ(cursor.text(), "model=tiny dp=1");
  struct Entry {
    std::string name;
    std::uint64_t length, checksum;
  };
  std::vector<Entry> entries;
  for (std::uint32_t i = 0; i < sections; ++i) {
    Entry e;
    e.name = cursor.text();
    e.length = cursor.get<std::uint64_t>();
    e.checksum = cursor.get<std::uint64_t>();
    entries.push_back(e);
  }
  const std::size_t header_end = cursor.at;
  const std::vector<std::string> names{"weights", "optimizer", "rng", "data_position",
                                       "loss_history", "empty", "lr_schedule"};
  std::size_t at = header_end;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ(entries[i].name, names[i]);
    EXPECT_EQ(entries[i].checksum, reference_fnv1a64(std::string_view(shard).substr(at, entries[i].length)));
    at += entries[i].length;
  }
  EXPECT_EQ(entries[0].length, 10 * sizeof(float));
  EXPECT_EQ(std::memcmp(shard.data() + header_end, original.weights.data(), 40), 0);
  EXPECT_EQ(entries[4].length, 3 * sizeof(double));
  ASSERT_EQ(shard.size(), at + 16);
  std::uint64_t trailer_checksum;
  std::memcpy(&trailer_checksum, shard.data() + at, 8);
  EXPECT_EQ(trailer_checksum, reference_fnv1a64(std::string_view(shard).substr(0, header_end)));
  EXPECT_EQ(shard.substr(at + 8), "TNDMEND1");

  // manifest.json
  auto manifest = nlohmann::json::parse(testing::read_all(step_directory / "manifest.json"));
  EXPECT_EQ(manifest["format"], "tandem-checkpoint");
  EXPECT_EQ(manifest["version"], 1);
  EXPECT_EQ(manifest["step"], 3);
  EXPECT_EQ(manifest["world_size"], 1);
  EXPECT_EQ(manifest["fingerprint"], "model=tiny dp=1");
  ASSERT_EQ(manifest["shards"].size(), 1u);
  EXPECT_EQ(manifest["shards"][0]["rank"], 0);
  EXPECT_EQ(manifest["shards"][0]["file"], "rank-0.bin");
  EXPECT_EQ(manifest["shards"][0]["bytes"], shard.size());
  EXPECT_EQ(manifest["shards"][0]["checksum"], checksum_text(trailer_checksum));
  const std::string recorded = manifest["manifest_checksum"];
  manifest.erase("manifest_checksum");
  EXPECT_EQ(recorded, checksum_text(reference_fnv1a64(manifest.dump())));
  // Nothing else is left in the directory (no temporaries).
  int files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(step_directory)) ++files;
  EXPECT_EQ(files, 2);
}

TEST(CheckpointFormat, NamesOfDirectoriesAndShards) {
  EXPECT_EQ(step_directory_name(60), "step-00000060");
  EXPECT_EQ(step_directory_name(123456789), "step-123456789");
  EXPECT_EQ(shard_file_name(3), "rank-3.bin");
  TemporaryDirectory directory;
  for (const char* name : {"step-00000005", "step-00000040", "step-5", "notes", "step-0000000x"}) {
    std::filesystem::create_directories(directory.path() / name);
  }
  EXPECT_EQ(list_checkpoint_steps(directory.path()), (std::vector<std::int64_t>{40, 5}));
  EXPECT_TRUE(list_checkpoint_steps(directory.path() / "absent").empty());
}

TEST(CheckpointFormat, InvalidArgumentsAreRejected) {
  TemporaryDirectory directory;
  auto world = comm::make_single_process_communicator();
  RankCheckpoint shard = contents_for(4, 0);
  EXPECT_THROW(write_checkpoint(directory.path(), 5, "f", shard, *world), std::invalid_argument);
  EXPECT_THROW(write_checkpoint(directory.path(), -1, "f", shard, *world), std::invalid_argument);
  shard.extra_sections["weights"] = {1};
  EXPECT_THROW(write_checkpoint(directory.path(), 4, "f", shard, *world), std::invalid_argument);
  EXPECT_THROW(load_latest_good(directory.path(), 2, 2, "f"), std::invalid_argument);
  EXPECT_FALSE(load_latest_good(directory.path(), 0, 1, "f").has_value());  // nothing written
  EXPECT_FALSE(load_latest_good(directory.path() / "absent", 0, 1, "f").has_value());
}

TEST(CheckpointFormat, KillRequestsParseOrAreRefusedByName) {
  const KillRequest plain = parse_kill_request("shard-written");
  EXPECT_EQ(plain.phase, KillPhase::ShardWritten);
  EXPECT_FALSE(plain.rank.has_value());
  EXPECT_FALSE(plain.step.has_value());
  const KillRequest full = parse_kill_request("manifest-renamed:1@40");
  EXPECT_EQ(full.phase, KillPhase::ManifestRenamed);
  EXPECT_EQ(full.rank, 1);
  EXPECT_EQ(full.step, 40);
  EXPECT_EQ(parse_kill_request("barrier@7").step, 7);
  EXPECT_EQ(all_kill_phases().size(), 7u);
  for (const KillPhase phase : all_kill_phases()) {
    EXPECT_EQ(parse_kill_request(std::string(to_string(phase))).phase, phase);
  }
  try {
    parse_kill_request("shard-writen");
    ADD_FAILURE();
  } catch (const CheckpointError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("TANDEM_CHECKPOINT_KILL_AT='shard-writen': unknown phase"), std::string::npos) << message;
    EXPECT_NE(message.find("shard-partial, shard-written, shard-renamed, barrier, manifest-written, "
                           "manifest-renamed, retention"),
              std::string::npos)
        << message;
  }
  EXPECT_THROW(parse_kill_request("barrier:x"), CheckpointError);
  EXPECT_THROW(parse_kill_request("barrier@-3"), CheckpointError);
  EXPECT_THROW(parse_kill_request("barrier@"), CheckpointError);
}

}  // namespace
}  // namespace tandem::engine::checkpoint
