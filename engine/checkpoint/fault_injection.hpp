#pragma once
// Deterministic crash points inside checkpoint writing, for kill-and-resume tests.
//
//   TANDEM_CHECKPOINT_KILL_AT=<phase>[:<rank>][@<step>]
//
// makes write_checkpoint raise SIGKILL on itself (no cleanup, no destructors, no flushing — as a
// power cut or the OOM killer would) when it reaches <phase>; only on rank <rank> when given
// (otherwise on every rank that reaches the phase), and only while writing the checkpoint of
// step <step> when given (otherwise the first checkpoint that reaches the phase — for the
// manifest phases of a multi-rank run, rank 0's, and `retention` only when there is something to
// delete). Just before dying
// the process writes one line to stderr: "TANDEM_CHECKPOINT_KILL_AT: killing rank R at phase P
// of step S". The phases, in the order write_checkpoint passes them:
//
//   shard-partial     this rank's shard temporary file holds its header and first section but
//                     not the rest (nothing fsynced, not renamed)
//   shard-written     the temporary file holds the whole shard, before fsync and rename
//   shard-renamed     the shard is durable under its final name (rank-R.bin), before the
//                     gather that stands for the barrier
//   barrier           every rank's shard is durable (after the gather), before rank 0 writes
//                     the manifest
//   manifest-written  (rank 0) the manifest's temporary file is written, before fsync and
//                     rename: the checkpoint is not yet good
//   manifest-renamed  (rank 0) the manifest is durable — the checkpoint is good — before the
//                     retention clean-up deletes older checkpoints
//   retention         (rank 0) in the middle of the clean-up: the oldest checkpoint to delete has
//                     lost its manifest but still has its shards (only reached when there is one
//                     to delete)
//
// After a kill at any phase, load_latest_good finds the new checkpoint (from manifest-renamed
// on) or the previous good one (before), never a broken one. An invalid value is refused with a
// CheckpointError naming the variable, the value and the valid phases, before anything is
// written.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace tandem::engine::checkpoint {

inline constexpr const char* kKillEnvironmentVariable = "TANDEM_CHECKPOINT_KILL_AT";

enum class KillPhase {
  ShardPartial,
  ShardWritten,
  ShardRenamed,
  Barrier,
  ManifestWritten,
  ManifestRenamed,
  Retention,
};

std::string_view to_string(KillPhase phase);
std::span<const KillPhase> all_kill_phases();

struct KillRequest {
  KillPhase phase = KillPhase::ShardWritten;
  std::optional<int> rank;            // every rank when absent
  std::optional<std::int64_t> step;   // any checkpoint (so the first that gets there) when absent
};

// Parses "<phase>[:<rank>][@<step>]". Throws CheckpointError (checkpoint.hpp) naming the value.
KillRequest parse_kill_request(std::string_view text);
// The request in TANDEM_CHECKPOINT_KILL_AT, nullopt when unset or empty.
std::optional<KillRequest> kill_request_from_environment();

// Called by write_checkpoint at each phase: raises SIGKILL when `request` asks for this phase,
// rank and step (does nothing for nullopt).
void kill_point(const std::optional<KillRequest>& request, KillPhase phase, int rank,
                std::int64_t step);

}  // namespace tandem::engine::checkpoint
