#pragma once
// The run store: every run Tandem makes — simulations, training runs, microbenchmark profiles,
// validations and the sweeps that group them — in one SQLite database, with its provenance,
// result, per-op traces, metrics and microbenchmarks. simrun and the engine write it; the GUI,
// calibration and `simrun compare` read it.
//
// Where: default_database_path() ($TANDEM_DB, else $XDG_DATA_HOME/tandem/runs.db, else
// ~/.local/share/tandem/runs.db).
//
// Schema (version 1; PRAGMA user_version holds the version, PRAGMA application_id = 0x54414E44
// "TAND" marks the file as a Tandem store). Runs have a public text id and an internal integer
// key that the per-run tables reference, so a 10^6-row trace does not repeat a 24-byte id per row.
//
//   scenarios(hash TEXT PK = sha256 of yaml, yaml TEXT)         -- stored once, shared by runs
//   runs(key INTEGER PK, id TEXT UNIQUE "20250101-120000-1a2b3c4d",
//        kind TEXT 'simulation'|'training'|'profile'|'validation'|'sweep',
//        name TEXT, status TEXT 'running'|'finished'|'failed',
//        created_at TEXT, finished_at TEXT NULL (ISO 8601 UTC, "2025-01-01T12:00:00.123Z"),
//        error_message TEXT NULL, parent_key INTEGER NULL -> runs(key) (sweep/validation group),
//        scenario_hash TEXT NULL -> scenarios(hash), overrides_json TEXT,
//        profile_name TEXT, profile_hash TEXT (sha256 of the hardware profile's text),
//        tandem_version TEXT, git_revision TEXT, host TEXT (MachineDescription::summary))
//   results(run_key PK -> runs, result_json TEXT (the JSON the CLI prints),
//           step_time_s, tokens_per_s, mfu, peak_bytes_per_gpu REAL NULL, fits, gpus INTEGER NULL)
//   trace_names(id INTEGER PK, name TEXT UNIQUE)   -- dictionary of op-code/stream/phase names
//   trace_ops(run_key -> runs, step, position (write order within the step), rank, rank_class,
//             stream -> trace_names, op_id, code -> trace_names, phase -> trace_names, layer,
//             micro_batch, bytes, flops, start_s, end_s)
//             -- WITHOUT ROWID, PRIMARY KEY (run_key, step, position): clustered by run, ~68
//                bytes a row, ~4x10^5 rows/s inserted on one core
//   metrics(run_key -> runs, step, name, value REAL NULL = NaN)   -- index (run_key, name, step)
//   microbenchmarks(run_key -> runs, op, params_json, size_bytes, flops, repeats,
//                   time_s (median), time_min_s, time_max_s)      -- index (op, run_key)
//
// Enums are stored by name (strategy::to_string), never by numeric value, so reordering the
// program's enums does not change what a stored trace means. Deleting a run deletes its result,
// trace, metrics and microbenchmarks (ON DELETE CASCADE).
//
// Concurrency: WAL mode, a 60 s busy timeout and BEGIN IMMEDIATE write transactions, so the GUI
// can read while simrun writes and the children of a sweep can write in parallel. Every write
// is one transaction: a crash leaves no half-written trace (a run whose process died stays
// 'running'). A RunStore object may be shared between threads (calls are serialised).
//
// Migrations: schema_migrations() lists the steps in order; opening an older store applies the missing
// ones in one transaction; a store written by a newer Tandem is refused with a clear error, as
// is a file that is not an SQLite database or is some other program's SQLite database.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "report/trace_record.hpp"

namespace tandem::report {

// The store could not be opened, read or written; what() names the database file.
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class RunKind : std::uint8_t { Simulation, Training, Profile, Validation, Sweep };
enum class RunStatus : std::uint8_t { Running, Finished, Failed };

std::string_view to_string(RunKind kind);      // "simulation", "training", ...
std::string_view to_string(RunStatus status);  // "running", "finished", "failed"
std::optional<RunKind> run_kind_from_name(std::string_view name);
std::optional<RunStatus> run_status_from_name(std::string_view name);

// What a run is, given when it begins.
struct RunInfo {
  RunKind kind = RunKind::Simulation;
  std::string name{};
  std::string scenario_yaml{};   // full text of the scenario as run ("" if none)
  std::string overrides_json{};  // JSON object of command-line overrides ("" = {})
  std::string profile_name{};    // hardware profile used ("" if none)
  std::string profile_hash{};    // sha256_hex of the profile's text
  std::string parent_run{};      // id of the sweep/validation run this belongs to ("" if none)
  // Provenance. begin_run fills empty ones with this build's version and git revision and
  // describe_machine().summary().
  std::string tandem_version{};
  std::string git_revision{};
  std::string host{};
};

// The headline numbers of a result, indexed for the run browser and sweeps. Unknown = nullopt.
struct Headline {
  std::optional<double> step_time_s{};
  std::optional<double> tokens_per_s{};
  std::optional<double> mfu{};  // model FLOPs utilisation, 0..1
  std::optional<double> peak_bytes_per_gpu{};
  std::optional<bool> fits{};   // the plan fits in GPU memory
  std::optional<int> gpus{};
};

// One line of the run browser (no scenario text or result JSON: see load_run).
struct RunSummary {
  std::string id{};
  RunKind kind = RunKind::Simulation;
  std::string name{};
  RunStatus status = RunStatus::Running;
  std::string created_at{};
  std::string finished_at{};  // "" while running
  std::string parent_run{};
  std::string profile_name{};
  Headline headline{};
};

// Everything stored about a run except its trace, metrics and microbenchmarks.
struct RunRecord {
  std::string id{};
  RunInfo info{};
  RunStatus status = RunStatus::Running;
  std::string created_at{};
  std::string finished_at{};
  std::string error_message{};  // set by fail_run
  std::string result_json{};    // set by finish_run ("" otherwise)
  Headline headline{};
};

struct RunFilter {
  std::string name_contains{};  // case-insensitive substring of the name ("" = any)
  std::optional<RunKind> kind{};
  std::optional<RunStatus> status{};
  std::string parent_run{};     // only the children of this run ("" = any)
  std::size_t limit = 100;    // newest first; 0 = no limit
};

struct MetricPoint {
  std::int64_t step = 0;
  std::string name{};  // "loss", "lr", "tokens_per_s", "step_time_s", "val_loss", ...
  double value = 0;  // NaN is stored (a diverged loss) and read back as NaN
};

struct Microbenchmark {
  std::string op{};           // "gemm", "all-reduce", ...
  std::string params_json{};  // shape / group size / backend, a JSON object ("" = {})
  double size_bytes = 0;
  double flops = 0;
  int repeats = 0;
  double time_s = 0;  // median
  double time_min_s = 0;
  double time_max_s = 0;
};

struct StoredMicrobenchmark {
  std::string run_id{};  // the profile run that measured it
  Microbenchmark benchmark;
};

struct MicrobenchmarkFilter {
  std::string run_id{};  // "" = every run
  std::string op{};      // "" = every op
};

// One migration step: brings the schema from version - 1 to version.
struct Migration {
  int version;
  const char* description;
  const char* sql;
};
// Every step in order, the first creating the schema from an empty file.
std::span<const Migration> schema_migrations();
// The schema version this build writes (the last migration's).
int current_schema_version();

// $TANDEM_DB if set, else $XDG_DATA_HOME/tandem/runs.db, else ~/.local/share/tandem/runs.db.
std::filesystem::path default_database_path();

class RunStore {
 public:
  // Opens (creating the file and its parent directories if needed) and migrates the store.
  static RunStore open(const std::filesystem::path& path);

  RunStore(RunStore&&) noexcept;
  RunStore& operator=(RunStore&&) noexcept;
  ~RunStore();

  const std::filesystem::path& path() const;
  int schema_version() const;

  // --- writing (each call is one transaction) ---
  // Records a new 'running' run and returns its id (UTC time + random, sortable by creation).
  std::string begin_run(const RunInfo& info);
  // Appends the records of one step (the twin writes step 0; the engine one call per step or
  // several per step). One transaction, one prepared statement.
  void add_trace(std::string_view run_id, std::int64_t step,
                 std::span<const TraceRecord> records);
  void add_metrics(std::string_view run_id, std::span<const MetricPoint> points);
  void add_microbenchmarks(std::string_view run_id, std::span<const Microbenchmark> results);
  // Marks a running run finished with its result (must be valid JSON) and headline numbers.
  void finish_run(std::string_view run_id, std::string_view result_json,
                  const Headline& headline);
  // Marks a running run failed with the message the user saw.
  void fail_run(std::string_view run_id, std::string_view message);
  // Deletes a run with its result, trace, metrics and microbenchmarks; its children lose their
  // parent link. Unknown id: StoreError.
  void delete_run(std::string_view run_id);

  // --- reading ---
  std::vector<RunSummary> list_runs(const RunFilter& filter = {}) const;
  bool has_run(std::string_view run_id) const;
  RunRecord load_run(std::string_view run_id) const;  // unknown id: StoreError
  std::vector<std::int64_t> trace_steps(std::string_view run_id) const;
  // The records of one step, or of every step (ordered by step, then as written).
  Trace load_trace(std::string_view run_id, std::optional<std::int64_t> step = std::nullopt) const;
  std::size_t trace_size(std::string_view run_id) const;  // number of trace rows
  // Ordered by name, then step. name "" = every metric.
  std::vector<MetricPoint> load_metrics(std::string_view run_id,
                                        std::string_view name = {}) const;
  std::vector<StoredMicrobenchmark> load_microbenchmarks(
      const MicrobenchmarkFilter& filter = {}) const;

 private:
  struct Impl;
  explicit RunStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tandem::report
