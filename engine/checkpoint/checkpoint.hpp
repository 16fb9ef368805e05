#pragma once
// Checkpoints of `engine train`: everything a run needs to continue bit for bit after a crash,
// written so that a crash at any moment leaves either the new checkpoint or the previous one
// intact — never a broken one that is taken for good.
//
// Layout on disk:
//   <checkpoint_dir>/step-<NNNNNNNN>/rank-<R>.bin   one shard per rank (R = 0 .. world_size-1)
//   <checkpoint_dir>/step-<NNNNNNNN>/manifest.json  written last, by rank 0
// NNNNNNNN is the number of optimizer steps done, zero-padded to 8 digits (more when larger).
//
// Shard file (little-endian; every checksum is FNV-1a 64, checksum.hpp):
//   header   char[8] "TNDMCKPT", u32 format version (1), u32 rank, u32 world size,
//            u32 section count S, i64 step, u32 fingerprint length + fingerprint bytes, then S
//            section entries: u32 name length + name, u64 payload length, u64 payload checksum
//   payloads the S payloads, in the order of the entries, back to back
//   trailer  u64 shard checksum = FNV-1a 64 of the header bytes, char[8] "TNDMEND1"
// The header holds every payload's length and checksum, so the shard checksum covers every byte
// of the file (a changed payload byte breaks its section checksum; a changed header byte breaks
// the shard checksum; a truncation breaks the trailer and the length sum). Sections, in order:
//   weights        fp32 parameters, raw bytes
//   optimizer      Optimizer::save_state bytes (opaque)
//   rng            the engine's RNG state (opaque)
//   data_position  TokenDataset::encode_position bytes (opaque here)
//   loss_history   f64 training loss of steps 1..step (exactly `step` values)
//   then any extra named sections, sorted by name.
//
// manifest.json (written after every shard is durable):
//   {"format": "tandem-checkpoint", "version": 1, "step": S, "world_size": W,
//    "fingerprint": "...", "shards": [{"rank": r, "file": "rank-r.bin", "bytes": n,
//    "checksum": "fnv1a64:<16 hex>"}, ...], "manifest_checksum": "fnv1a64:<16 hex>"}
// manifest_checksum is FNV-1a 64 of the compact JSON (nlohmann dump(), keys sorted) of the same
// object without that key, so a damaged manifest that still parses is caught too.
//
// A checkpoint is good iff its manifest exists, parses and matches its checksum, and every shard
// it lists (ranks 0..W-1 exactly once) exists with the listed size and checksum, and each
// shard's header, section checksums and trailer verify and agree with the manifest (rank, world
// size, step, fingerprint). Every file is written through report::AtomicFileWriter: temporary
// file, fsync, rename, directory fsync.
//
// Writing (collective over `world`, every rank calls it with the same step and fingerprint):
//   1. rank 0 creates step-NNNNNNNN (fsyncing its parent), removes a manifest left there by an
//      earlier write of the same step and stale temporary files, then a barrier;
//   2. each rank writes rank-R.bin atomically;
//   3. an all-gather of every shard's size and checksum (the barrier: when it returns, every
//      shard is durable);
//   4. rank 0 writes manifest.json atomically — from here the checkpoint is good;
//   5. rank 0 applies retention: keeps the newest `keep` checkpoints that look complete
//      (manifest verifies, shards present with the listed sizes) and deletes every older step
//      directory, complete or not (manifest first, then shards, then the directory); step
//      directories newer than this step are never touched;
//   6. a broadcast of rank 0's outcome, so every rank returns or throws alike.
// A rank that cannot write its shard does not leave the others waiting: the failure travels in
// the gather and every rank throws CheckpointError (the failing rank with the reason).
// Crash points for tests: fault_injection.hpp (TANDEM_CHECKPOINT_KILL_AT).
//
// Loading (not collective; every rank reads the same files and so reaches the same verdict):
// load_latest_good walks the step directories from the newest down. A checkpoint that is
// incomplete, corrupt or truncated is skipped with a warning naming the file and the problem;
// one written by another world size or strategy fingerprint is REFUSED with CheckpointMismatch
// (the user's mistake, never silently skipped); the first good one is returned, with this rank's
// shard; none at all gives nullopt (the caller starts fresh and says so). Every shard of a
// candidate is verified in full by every rank (cost: reading the whole checkpoint per rank).

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "comm/communicator.hpp"

namespace tandem::engine::checkpoint {

// Writing failed (I/O error, bad arguments), or a request the library cannot honour.
class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The newest checkpoint was written by another world size or strategy: refused, not skipped.
class CheckpointMismatch : public CheckpointError {
 public:
  using CheckpointError::CheckpointError;
};

// Warnings and notices (skipped checkpoints, retention problems). Empty: spdlog::warn.
using LogSink = std::function<void(const std::string& message)>;

inline constexpr int kDefaultKeep = 2;

// Section names.
inline constexpr const char* kWeightsSection = "weights";
inline constexpr const char* kOptimizerSection = "optimizer";
inline constexpr const char* kRngSection = "rng";
inline constexpr const char* kDataPositionSection = "data_position";
inline constexpr const char* kLossHistorySection = "loss_history";

// One rank's part of a checkpoint (owned).
struct RankCheckpoint {
  std::vector<float> weights;
  std::vector<std::uint8_t> optimizer_state;
  std::vector<std::uint8_t> rng_state;
  std::vector<std::uint8_t> data_position;
  std::vector<double> loss_history;  // loss of step 1 .. step
  std::map<std::string, std::vector<std::uint8_t>> extra_sections;
};

// The same without copies: what write_checkpoint reads (the weights can stay in the model's
// own buffer).
struct RankCheckpointView {
  std::span<const float> weights;
  std::span<const std::uint8_t> optimizer_state;
  std::span<const std::uint8_t> rng_state;
  std::span<const std::uint8_t> data_position;
  std::span<const double> loss_history;
  std::map<std::string, std::span<const std::uint8_t>> extra_sections;

  RankCheckpointView() = default;
  RankCheckpointView(const RankCheckpoint& shard);  // NOLINT: implicit on purpose
};

struct WriteOptions {
  int keep = kDefaultKeep;  // retention: newest good checkpoints kept; 0 keeps all
  LogSink log;
};

struct ShardEntry {
  int rank = 0;
  std::string file;  // "rank-R.bin"
  std::uint64_t bytes = 0;
  std::uint64_t checksum = 0;
};

struct CheckpointInfo {
  std::int64_t step = 0;
  std::filesystem::path directory;  // .../step-NNNNNNNN
  int world_size = 0;
  std::string fingerprint;
  std::vector<ShardEntry> shards;  // by rank
};

struct LoadedCheckpoint {
  CheckpointInfo info;
  RankCheckpoint shard;  // this rank's
};

// "step-00000060" (more digits when step >= 10^8).
std::string step_directory_name(std::int64_t step);
std::string shard_file_name(int rank);  // "rank-3.bin"
inline constexpr const char* kManifestFileName = "manifest.json";

// Collective: writes checkpoint `step` (optimizer steps done; shard.loss_history must hold
// exactly `step` values) under `dir` (created when missing) and applies retention. Returns the
// checkpoint's description. Throws CheckpointError (on every rank) when any rank failed, and
// std::invalid_argument for a negative step or a loss history of the wrong length.
CheckpointInfo write_checkpoint(const std::filesystem::path& dir, std::int64_t step,
                                const std::string& fingerprint, const RankCheckpointView& shard,
                                comm::Communicator& world, const WriteOptions& options = {});

// The newest good checkpoint under `dir` and this rank's shard of it (see above). nullopt when
// `dir` does not exist or holds no good checkpoint. Throws CheckpointMismatch when a checkpoint
// examined on the way (one whose manifest verifies) names another world size or fingerprint;
// CheckpointError when `dir` cannot be listed; std::invalid_argument when rank is not in
// [0, world_size).
std::optional<LoadedCheckpoint> load_latest_good(const std::filesystem::path& dir, int rank,
                                                 int world_size, const std::string& fingerprint,
                                                 const LogSink& log = {});

// The newest good checkpoint whatever its world size and fingerprint (for `engine sample`, which
// reads weights written by any layout), nullopt when none. Skipped ones are logged as above.
std::optional<CheckpointInfo> find_latest_good(const std::filesystem::path& dir,
                                               const LogSink& log = {});

// Full verification of one step directory: nullopt when good, else the problem (naming the
// file), e.g. "rank-1.bin is truncated: 4096 bytes, the manifest lists 8192".
std::optional<std::string> checkpoint_problem(const std::filesystem::path& step_directory);

// One shard file, fully verified. Throws CheckpointError naming the file and the problem.
struct ShardFile {
  int rank = 0;
  int world_size = 0;
  std::int64_t step = 0;
  std::string fingerprint;
  std::uint64_t checksum = 0;  // the shard checksum (what the manifest lists)
  RankCheckpoint contents;
};
ShardFile read_shard(const std::filesystem::path& shard_path);

// Steps of the step-NNNNNNNN directories under `dir`, newest first (good or not).
std::vector<std::int64_t> list_checkpoint_steps(const std::filesystem::path& dir);

}  // namespace tandem::engine::checkpoint
