#include "report/run_store.hpp"

#include <sqlite3.h>
#include <thread>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <mutex>
#include <random>
#include <unordered_map>
#include <utility>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "report/enum_names.hpp"
#include "report/machine.hpp"
#include "tandem/version.hpp"

namespace tandem::report {
namespace {

namespace fs = std::filesystem;

constexpr int kApplicationId = 0x54414E44;  // "TAND"
constexpr int kBusyTimeoutMs = 60'000;

constexpr Migration kMigrationSteps[] = {
    {1, "initial schema: scenarios, runs, results, trace_names, trace_ops, metrics, "
        "microbenchmarks",
     R"sql(
CREATE TABLE scenarios (
  hash TEXT PRIMARY KEY NOT NULL,
  yaml TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE runs (
  key INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at TEXT NOT NULL,
  finished_at TEXT,
  error_message TEXT,
  parent_key INTEGER REFERENCES runs(key) ON DELETE SET NULL,
  scenario_hash TEXT REFERENCES scenarios(hash),
  overrides_json TEXT NOT NULL,
  profile_name TEXT NOT NULL,
  profile_hash TEXT NOT NULL,
  tandem_version TEXT NOT NULL,
  git_revision TEXT NOT NULL,
  host TEXT NOT NULL
);
CREATE INDEX runs_by_creation ON runs(created_at);
CREATE INDEX runs_by_parent ON runs(parent_key);
CREATE INDEX runs_by_scenario ON runs(scenario_hash);

CREATE TABLE results (
  run_key INTEGER PRIMARY KEY REFERENCES runs(key) ON DELETE CASCADE,
  result_json TEXT NOT NULL,
  step_time_s REAL,
  tokens_per_s REAL,
  mfu REAL,
  peak_bytes_per_gpu REAL,
  fits INTEGER,
  gpus INTEGER
);

CREATE TABLE trace_names (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
);

CREATE TABLE trace_ops (
  run_key INTEGER NOT NULL REFERENCES runs(key) ON DELETE CASCADE,
  step INTEGER NOT NULL,
  position INTEGER NOT NULL,
  rank INTEGER NOT NULL,
  rank_class INTEGER NOT NULL,
  stream INTEGER NOT NULL,
  op_id INTEGER NOT NULL,
  code INTEGER NOT NULL,
  phase INTEGER NOT NULL,
  layer INTEGER NOT NULL,
  micro_batch INTEGER NOT NULL,
  bytes REAL NOT NULL,
  flops REAL NOT NULL,
  start_s REAL NOT NULL,
  end_s REAL NOT NULL,
  PRIMARY KEY (run_key, step, position)
) WITHOUT ROWID;

CREATE TABLE metrics (
  run_key INTEGER NOT NULL REFERENCES runs(key) ON DELETE CASCADE,
  step INTEGER NOT NULL,
  name TEXT NOT NULL,
  value REAL
);
CREATE INDEX metrics_by_run_name_step ON metrics(run_key, name, step);

CREATE TABLE microbenchmarks (
  run_key INTEGER NOT NULL REFERENCES runs(key) ON DELETE CASCADE,
  op TEXT NOT NULL,
  params_json TEXT NOT NULL,
  size_bytes REAL NOT NULL,
  flops REAL NOT NULL,
  repeats INTEGER NOT NULL,
  time_s REAL NOT NULL,
  time_min_s REAL NOT NULL,
  time_max_s REAL NOT NULL
);
CREATE INDEX microbenchmarks_by_op ON microbenchmarks(op, run_key);
)sql"},
};

// Appends piecewise: `"'" + text + "'"` trips GCC 12's false -Wrestrict (GCC bug 105651).
std::string quoted(const fs::path& path) {
  std::string text;
  text.reserve(path.native().size() + 2);
  text += '\'';
  text += path.native();
  text += '\'';
  return text;
}

std::string utc_now_iso8601() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto milliseconds =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char text[96];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(milliseconds));
  return text;
}

// "20250101-120000-1a2b3c4d": sorts by creation time, unique thanks to the random tail.
std::string new_run_id() {
  const std::time_t seconds = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  // A fresh draw from the OS each time: a generator seeded once would repeat itself in the
  // forked children of a sweep.
  std::random_device entropy;
  char text[96];
  std::snprintf(text, sizeof text, "%04d%02d%02d-%02d%02d%02d-%08x", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<unsigned>(entropy()));
  return text;
}

// --- thin RAII over the SQLite C API --------------------------------------------------------

class Statement {
 public:
  Statement(sqlite3* db, const fs::path& path, std::string_view sql) : db_(db), path_(&path) {
    const int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &statement_,
                                      nullptr);
    if (rc != SQLITE_OK) fail(rc, "cannot prepare a statement");
  }
  ~Statement() { sqlite3_finalize(statement_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int index, std::int64_t value) {
    check(sqlite3_bind_int64(statement_, index, value));
    return *this;
  }
  Statement& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
  Statement& bind(int index, double value) {
    // SQLite stores NaN as NULL; readers map NULL back to NaN where a value is expected.
    check(sqlite3_bind_double(statement_, index, value));
    return *this;
  }
  Statement& bind(int index, std::string_view value) {
    check(sqlite3_bind_text(statement_, index, value.data(), static_cast<int>(value.size()),
                            SQLITE_TRANSIENT));
    return *this;
  }
  Statement& bind_null(int index) {
    check(sqlite3_bind_null(statement_, index));
    return *this;
  }
  template <typename T>
  Statement& bind_optional(int index, const std::optional<T>& value) {
    if (!value) return bind_null(index);
    if constexpr (std::is_same_v<T, bool>) return bind(index, *value ? 1 : 0);
    else return bind(index, *value);
  }

  // true: a row is available; false: done.
  bool step() {
    const int rc = sqlite3_step(statement_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(rc, "query failed");
  }
  void run() {
    while (step()) {
    }
  }
  void reset() { sqlite3_reset(statement_); }

  bool is_null(int column) const { return sqlite3_column_type(statement_, column) == SQLITE_NULL; }
  std::int64_t integer(int column) const { return sqlite3_column_int64(statement_, column); }
  double real(int column) const {
    return is_null(column) ? std::numeric_limits<double>::quiet_NaN()
                           : sqlite3_column_double(statement_, column);
  }
  std::string text(int column) const {
    const auto* data = sqlite3_column_text(statement_, column);
    if (data == nullptr) return {};
    return std::string(reinterpret_cast<const char*>(data),
                       static_cast<std::size_t>(sqlite3_column_bytes(statement_, column)));
  }
  std::optional<double> optional_real(int column) const {
    if (is_null(column)) return std::nullopt;
    return sqlite3_column_double(statement_, column);
  }
  std::optional<std::int64_t> optional_integer(int column) const {
    if (is_null(column)) return std::nullopt;
    return sqlite3_column_int64(statement_, column);
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) fail(rc, "cannot bind a parameter");
  }
  [[noreturn]] void fail(int rc, const char* what) {
    std::string message = std::string("run database ") + quoted(*path_) + ": " + what + ": " +
                          sqlite3_errmsg(db_) + " (in: " + sqlite3_sql(statement_) + ")";
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
      message += " (another process held the database for more than " +
                 std::to_string(kBusyTimeoutMs / 1000) + " s)";
    }
    throw StoreError(message);
  }

  sqlite3* db_;
  const fs::path* path_;
  sqlite3_stmt* statement_ = nullptr;
};

void execute(sqlite3* db, const fs::path& path, const char* sql) {
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    std::string message = error != nullptr ? error : sqlite3_errstr(rc);
    sqlite3_free(error);
    throw StoreError("run database " + quoted(path) + ": " + message);
  }
}

// BEGIN IMMEDIATE takes the write lock up front, so two writers queue on the busy timeout
// instead of one failing on a read-to-write upgrade. A writer that still finds the store busy
// after the timeout (a sweep whose children all write 10^6-row traces at once) keeps waiting,
// saying so, for up to kWriteAttempts timeouts. Rolls back unless committed.
constexpr int kWriteAttempts = 5;

class Transaction {
 public:
  enum class Kind { Read, Write };
  Transaction(sqlite3* db, const fs::path& path, Kind kind) : db_(db), path_(path) {
    if (kind == Kind::Read) {
      execute(db_, path_, "BEGIN DEFERRED");
      return;
    }
    for (int attempt = 1;; ++attempt) {
      const int rc = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
      if (rc == SQLITE_OK) return;
      if ((rc & 0xff) != SQLITE_BUSY || attempt == kWriteAttempts) {
        std::string message = std::string("run database ") + quoted(path_) +
                              ": cannot start a write: " + sqlite3_errmsg(db_);
        if ((rc & 0xff) == SQLITE_BUSY) {
          message += " (another process kept it locked for " +
                     std::to_string(kWriteAttempts * kBusyTimeoutMs / 1000) + " s)";
        }
        throw StoreError(message);
      }
      spdlog::warn("run database {} is busy (another process is writing); still waiting",
                   quoted(path_));
    }
  }
  ~Transaction() {
    if (!done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void commit() {
    execute(db_, path_, "COMMIT");
    done_ = true;
  }

 private:
  sqlite3* db_;
  const fs::path& path_;
  bool done_ = false;
};

std::string json_object_or_empty(std::string_view text, const char* what, const fs::path& path) {
  if (text.empty()) return "{}";
  if (!nlohmann::json::accept(text)) {
    throw StoreError("run database " + quoted(path) + ": " + what + " is not valid JSON");
  }
  return std::string(text);
}

Headline read_headline(const Statement& row, int first_column) {
  Headline headline;
  headline.step_time_s = row.optional_real(first_column);
  headline.tokens_per_s = row.optional_real(first_column + 1);
  headline.mfu = row.optional_real(first_column + 2);
  headline.peak_bytes_per_gpu = row.optional_real(first_column + 3);
  if (const auto fits = row.optional_integer(first_column + 4)) headline.fits = *fits != 0;
  if (const auto gpus = row.optional_integer(first_column + 5)) headline.gpus = static_cast<int>(*gpus);
  return headline;
}

}  // namespace

// ----------------------------------------------------------------------------------------------

std::string_view to_string(RunKind kind) {
  switch (kind) {
    case RunKind::Simulation: return "simulation";
    case RunKind::Training: return "training";
    case RunKind::Profile: return "profile";
    case RunKind::Validation: return "validation";
    case RunKind::Sweep: return "sweep";
  }
  return "?";
}

std::string_view to_string(RunStatus status) {
  switch (status) {
    case RunStatus::Running: return "running";
    case RunStatus::Finished: return "finished";
    case RunStatus::Failed: return "failed";
  }
  return "?";
}

std::optional<RunKind> run_kind_from_name(std::string_view name) {
  for (const RunKind kind : {RunKind::Simulation, RunKind::Training, RunKind::Profile,
                             RunKind::Validation, RunKind::Sweep}) {
    if (to_string(kind) == name) return kind;
  }
  return std::nullopt;
}

std::optional<RunStatus> run_status_from_name(std::string_view name) {
  for (const RunStatus status : {RunStatus::Running, RunStatus::Finished, RunStatus::Failed}) {
    if (to_string(status) == name) return status;
  }
  return std::nullopt;
}

std::span<const Migration> schema_migrations() { return kMigrationSteps; }

int current_schema_version() { return schema_migrations().back().version; }

fs::path default_database_path() {
  if (const char* explicit_path = std::getenv("TANDEM_DB"); explicit_path && *explicit_path) {
    return explicit_path;
  }
  // The XDG base directory spec ignores relative values.
  if (const char* data_home = std::getenv("XDG_DATA_HOME");
      data_home && *data_home && fs::path(data_home).is_absolute()) {
    return fs::path(data_home) / "tandem" / "runs.db";
  }
  if (const char* home = std::getenv("HOME"); home && *home) {
    return fs::path(home) / ".local" / "share" / "tandem" / "runs.db";
  }
  throw StoreError(
      "cannot find a place for the run database: set TANDEM_DB (a file path) or HOME");
}

// ----------------------------------------------------------------------------------------------

struct RunStore::Impl {
  fs::path path;
  sqlite3* db = nullptr;
  int version = 0;
  mutable std::mutex mutex;

  ~Impl() {
    if (db != nullptr) sqlite3_close_v2(db);
  }

  [[noreturn]] void fail(const std::string& message) const {
    throw StoreError("run database " + quoted(path) + ": " + message);
  }

  // The internal key of a run, or an error naming the id.
  std::int64_t key_of(std::string_view run_id) const {
    Statement query(db, path, "SELECT key FROM runs WHERE id = ?1");
    query.bind(1, run_id);
    if (!query.step()) fail("no run '" + std::string(run_id) + "'");
    return query.integer(0);
  }

  RunStatus status_of(std::int64_t key, std::string_view run_id) const {
    Statement query(db, path, "SELECT status FROM runs WHERE key = ?1");
    query.bind(1, key);
    query.step();
    const std::string name = query.text(0);
    const auto status = run_status_from_name(name);
    if (!status) fail("run '" + std::string(run_id) + "' has an unknown status '" + name + "'");
    return *status;
  }

  void require_running(std::int64_t key, std::string_view run_id, const char* action) const {
    const RunStatus status = status_of(key, run_id);
    if (status != RunStatus::Running) {
      fail("cannot " + std::string(action) + " run '" + std::string(run_id) + "': it is already " +
           std::string(to_string(status)));
    }
  }

  RunKind kind_from_column(const std::string& name, const std::string& run_id) const {
    const auto kind = run_kind_from_name(name);
    if (!kind) {
      fail("run '" + run_id + "' has kind '" + name +
           "', which this build of Tandem does not know (written by a newer version?)");
    }
    return *kind;
  }

  RunStatus status_from_column(const std::string& name, const std::string& run_id) const {
    const auto status = run_status_from_name(name);
    if (!status) fail("run '" + run_id + "' has an unknown status '" + name + "'");
    return *status;
  }

  void open_and_migrate();
};

void RunStore::Impl::open_and_migrate() {
  std::error_code error;
  const fs::path parent = path.parent_path();
  if (!parent.empty() && !fs::exists(parent, error)) {
    fs::create_directories(parent, error);
    if (error) {
      throw StoreError("cannot create the directory " + quoted(parent) +
                       " for the run database: " + error.message());
    }
  }
  if (fs::is_directory(path, error)) {
    throw StoreError("cannot open run database " + quoted(path) + ": it is a directory");
  }

  // NOMUTEX: RunStore serialises every use of the connection with its own mutex.
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    const std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    throw StoreError("cannot open run database " + quoted(path) + ": " + message);
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, kBusyTimeoutMs);

  // The first read of the header tells an SQLite file from anything else.
  int application_id = 0;
  int table_count = 0;
  {
    sqlite3_stmt* probe = nullptr;
    int probe_rc = sqlite3_prepare_v2(
        db, "SELECT (SELECT application_id FROM pragma_application_id), "
            "(SELECT user_version FROM pragma_user_version), "
            "(SELECT count(*) FROM sqlite_master)",
        -1, &probe, nullptr);
    if (probe_rc == SQLITE_OK) probe_rc = sqlite3_step(probe);
    if (probe_rc == SQLITE_ROW) {
      application_id = sqlite3_column_int(probe, 0);
      version = sqlite3_column_int(probe, 1);
      table_count = sqlite3_column_int(probe, 2);
    }
    sqlite3_finalize(probe);
    if (probe_rc != SQLITE_ROW) {
      const int primary = probe_rc & 0xff;
      if (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT) {
        throw StoreError("cannot open run database " + quoted(path) +
                         ": the file is not an SQLite database or is corrupt (" +
                         sqlite3_errstr(probe_rc) + ")");
      }
      throw StoreError("cannot open run database " + quoted(path) + ": " + sqlite3_errmsg(db));
    }
  }
  const bool foreign = application_id != kApplicationId &&
                       (application_id != 0 || version != 0 || table_count != 0);
  if (foreign) {
    throw StoreError("cannot open run database " + quoted(path) +
                     ": it is an SQLite database, but not a Tandem run store");
  }
  const auto refuse_newer = [&](int found) {
    if (found > current_schema_version()) {
      throw StoreError("cannot open run database " + quoted(path) + ": it has schema version " +
                       std::to_string(found) + ", written by a newer Tandem; this build reads " +
                       "versions up to " + std::to_string(current_schema_version()) +
                       ". Upgrade Tandem or point TANDEM_DB at another file.");
    }
  };
  refuse_newer(version);

  // WAL lets readers (the GUI) work while a writer (simrun) commits. The mode is stored in the
  // file, so only its creator changes it; switching needs a moment of exclusive access that
  // SQLite reports as busy at once (without its busy handler) when several processes open a new
  // store together, so the switch is retried here for up to the busy timeout.
  {
    bool already_wal = false;
    {
      Statement current(db, path, "PRAGMA journal_mode");
      already_wal = current.step() && current.text(0) == "wal";
    }  // finalized: a live statement is an open transaction, which forbids the switch
    if (!already_wal) {
      std::string mode;
      for (int waited_ms = 0;; waited_ms += 10) {
        sqlite3_stmt* statement = nullptr;
        int rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &statement, nullptr);
        if (rc == SQLITE_OK) rc = sqlite3_step(statement);
        if (rc == SQLITE_ROW) mode = reinterpret_cast<const char*>(sqlite3_column_text(statement, 0));
        sqlite3_finalize(statement);
        if (rc == SQLITE_ROW) break;
        if ((rc & 0xff) != SQLITE_BUSY || waited_ms >= kBusyTimeoutMs) {
          throw StoreError("cannot open run database " + quoted(path) + ": cannot enable WAL mode: " +
                           sqlite3_errmsg(db));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (mode != "wal") {
        spdlog::warn("run database {}: WAL mode unavailable (journal mode '{}'); concurrent "
                     "readers will wait for writers", quoted(path), mode);
      }
    }
  }
  // A 64 MiB page cache (allocated only as used) keeps a 10^6-row trace insert from spilling.
  execute(db, path,
          "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536;");

  if (version == current_schema_version()) return;

  // Several processes may open a new store at once: take the write lock and look again.
  Transaction transaction(db, path, Transaction::Kind::Write);
  {
    Statement query(db, path, "PRAGMA user_version");
    query.step();
    version = static_cast<int>(query.integer(0));
  }
  refuse_newer(version);
  for (const Migration& migration : schema_migrations()) {
    if (migration.version <= version) continue;
    spdlog::debug("run database {}: migrating to schema version {} ({})", quoted(path),
                  migration.version, migration.description);
    execute(db, path, migration.sql);
    version = migration.version;
  }
  execute(db, path,
          ("PRAGMA user_version = " + std::to_string(version) +
           "; PRAGMA application_id = " + std::to_string(kApplicationId) + ";")
              .c_str());
  transaction.commit();
}

RunStore::RunStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RunStore::RunStore(RunStore&&) noexcept = default;
RunStore& RunStore::operator=(RunStore&&) noexcept = default;
RunStore::~RunStore() = default;

RunStore RunStore::open(const fs::path& path) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->open_and_migrate();
  return RunStore(std::move(impl));
}

const fs::path& RunStore::path() const { return impl_->path; }
int RunStore::schema_version() const { return impl_->version; }

std::string RunStore::begin_run(const RunInfo& info) {
  std::lock_guard lock(impl_->mutex);
  Impl& store = *impl_;
  const std::string overrides = json_object_or_empty(info.overrides_json, "overrides_json", store.path);
  static const std::string this_host = describe_machine().summary();
  const std::string& host = info.host.empty() ? this_host : info.host;

  Transaction transaction(store.db, store.path, Transaction::Kind::Write);
  std::optional<std::int64_t> parent_key;
  if (!info.parent_run.empty()) {
    Statement query(store.db, store.path, "SELECT key FROM runs WHERE id = ?1");
    query.bind(1, info.parent_run);
    if (!query.step()) store.fail("parent run '" + info.parent_run + "' does not exist");
    parent_key = query.integer(0);
  }
  std::optional<std::string> scenario_hash;
  if (!info.scenario_yaml.empty()) {
    scenario_hash = sha256_hex(info.scenario_yaml);
    Statement insert(store.db, store.path,
                     "INSERT OR IGNORE INTO scenarios(hash, yaml) VALUES (?1, ?2)");
    insert.bind(1, *scenario_hash).bind(2, info.scenario_yaml).run();
  }

  Statement insert(store.db, store.path, R"sql(
    INSERT INTO runs(id, kind, name, status, created_at, parent_key, scenario_hash,
                     overrides_json, profile_name, profile_hash, tandem_version, git_revision,
                     host)
    VALUES (?1, ?2, ?3, 'running', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
    ON CONFLICT(id) DO NOTHING)sql");
  std::string id;
  for (int attempt = 0; attempt < 100; ++attempt) {
    id = new_run_id();
    insert.reset();
    insert.bind(1, id)
        .bind(2, to_string(info.kind))
        .bind(3, info.name)
        .bind(4, utc_now_iso8601());
    if (parent_key) insert.bind(5, *parent_key);
    else insert.bind_null(5);
    if (scenario_hash) insert.bind(6, *scenario_hash);
    else insert.bind_null(6);
    insert.bind(7, overrides)
        .bind(8, info.profile_name)
        .bind(9, info.profile_hash)
        .bind(10, info.tandem_version.empty() ? std::string_view(kVersion) : info.tandem_version)
        .bind(11, info.git_revision.empty() ? std::string_view(kGitRevision) : info.git_revision)
        .bind(12, host);
    insert.run();
    if (sqlite3_changes(store.db) == 1) {
      transaction.commit();
      return id;
    }
  }
  store.fail("cannot pick an unused run id");
}

void RunStore::add_trace(std::string_view run_id, std::int64_t step,
                         std::span<const TraceRecord> records) {
  std::lock_guard lock(impl_->mutex);
  Impl& store = *impl_;
  Transaction transaction(store.db, store.path, Transaction::Kind::Write);
  const std::int64_t key = store.key_of(run_id);

  // Names to dictionary ids, looked up (or added) once per distinct value in this transaction;
  // per-row lookups are then an array index by the enum's value.
  Statement add_name(store.db, store.path,
                     "INSERT INTO trace_names(name) VALUES (?1) ON CONFLICT(name) DO NOTHING");
  Statement find_name(store.db, store.path, "SELECT id FROM trace_names WHERE name = ?1");
  const auto dictionary_id = [&](std::string_view name) {
    add_name.reset();
    add_name.bind(1, name).run();
    find_name.reset();
    find_name.bind(1, name);
    find_name.step();
    return find_name.integer(0);
  };
  std::vector<std::int64_t> code_ids, stream_ids, phase_ids;  // -1: not looked up yet
  const auto id_of = [&](auto value, std::vector<std::int64_t>& cache) {
    const auto index = static_cast<std::size_t>(value);
    if (index >= cache.size()) cache.resize(index + 1, -1);
    if (cache[index] < 0) cache[index] = dictionary_id(strategy::to_string(value));
    return cache[index];
  };

  // Records of a step keep their write order through `position`, continuing after any rows an
  // earlier call wrote for the same step.
  std::int64_t position = 0;
  {
    Statement last(store.db, store.path,
                   "SELECT max(position) FROM trace_ops WHERE run_key = ?1 AND step = ?2");
    last.bind(1, key).bind(2, step);
    if (last.step() && !last.is_null(0)) position = last.integer(0) + 1;
  }
  Statement insert(store.db, store.path, R"sql(
    INSERT INTO trace_ops(run_key, step, position, rank, rank_class, stream, op_id, code, phase,
                          layer, micro_batch, bytes, flops, start_s, end_s)
    VALUES (?1, ?2, ?15, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14))sql");
  insert.bind(1, key).bind(2, step);
  for (const TraceRecord& record : records) {
    insert.reset();
    insert.bind(15, position++)
        .bind(3, record.rank)
        .bind(4, record.rank_class)
        .bind(5, id_of(record.stream, stream_ids))
        .bind(6, static_cast<std::int64_t>(record.op_id))
        .bind(7, id_of(record.code, code_ids))
        .bind(8, id_of(record.phase, phase_ids))
        .bind(9, static_cast<int>(record.layer))
        .bind(10, static_cast<int>(record.micro_batch))
        .bind(11, record.bytes)
        .bind(12, record.flops)
        .bind(13, record.start_s)
        .bind(14, record.end_s);
    insert.run();
  }
  transaction.commit();
}

void RunStore::add_metrics(std::string_view run_id, std::span<const MetricPoint> points) {
  std::lock_guard lock(impl_->mutex);
  Impl& store = *impl_;
  Transaction transaction(store.db, store.path, Transaction::Kind::Write);
  const std::int64_t key = store.key_of(run_id);
  Statement insert(store.db, store.path,
                   "INSERT INTO metrics(run_key, step, name, value) VALUES (?1, ?2, ?3, ?4)");
  insert.bind(1, key);
  for (const MetricPoint& point : points) {
    insert.reset();
    insert.bind(2, point.step).bind(3, point.name);
    if (std::isnan(point.value)) insert.bind_null(4);
    else insert.bind(4, point.value);
    insert.run();
  }
  transaction.commit();
}

void RunStore::add_microbenchmarks(std::string_view run_id,
                                   std::span<const Microbenchmark> results) {
  std::lock_guard lock(impl_->mutex);
  Impl& store = *impl_;
  Transaction transaction(store.db, store.path, Transaction::Kind::Write);
  const std::int64_t key = store.key_of(run_id);
  Statement insert(store.db, store.path, R"sql(
    INSERT INTO microbenchmarks(run_key, op, params_json, size_bytes, flops, repeats, time_s,
                                time_min_s, time_max_s)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9))sql");
  insert.bind(1, key);
  for (const Microbenchmark& result : results) {
    insert.reset();
    insert.bind(2, result.op)
        .bind(3, json_object_or_empty(result.params_json, "params_json of a microbenchmark",
                                      store.path))
        .bind(4, result.size_bytes)
        .bind(5, result.flops)
        .bind(6, result.repeats)
        .bind(7, result.time_s)
        .bind(8, result.time_min_s)
        .bind(9, result.time_max_s);
    insert.run();
  }
  transaction.commit();
}

void RunStore::finish_run(std::string_view run_id, std::string_view result_json,
                          const Headline& headline) {
  std::lock_guard lock(impl_->mutex);
  Impl& store = *impl_;
  if (!nlohmann::json::accept(result_json)) {
    store.fail("the result of run '" + std::string(run_id) + "' is not valid JSON");
  }
  Transaction transaction(store.db, store.path, Transaction::Kind::Write);
  const std::int64_t key = store.key_of(run_id);
  store.require_running(key, run_id, "finish");
  Statement insert(store.db, store.path, R"sql(
    INSERT INTO results(run_key, result_json, step_time_s, tokens_per_s, mfu, peak_bytes_per_gpu,
                        fits, gpus)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8))sql");
  insert.bind(1, key)
      .bind(2, result_json)
      .bind_optional(3, headline.step_time_s)
      .bind_optional(4, headline.tokens_per_s)
      .bind_optional(5, headline.mfu)
      .bind_optional(6, headline.peak_bytes_per_gpu)
      .bind_optional(7, headline.fits)
      .bind_optional(8, headline.gpus);
  insert.run();
  Statement update(store.db, store.path,
                   "UPDATE runs SET status = 'finished', finished_at = ?2 WHERE key = ?1");
  update.bind(1, key).bind(2, utc_now_iso8601()).run();
  transaction.commit();
}

void RunStore::fail_run(std::string_view run_id, std::string_view message) {
  std::lock_guard lock(impl_->mutex);
  Impl& store = *impl_;
  Transaction transaction(store.db, store.path, Transaction::Kind::Write);
  const std::int64_t key = store.key_of(run_id);
  store.require_running(key, run_id, "fail");
  Statement update(store.db, store.path, R"sql(
    UPDATE runs SET status = 'failed', finished_at = ?2, error_message = ?3 WHERE key = ?1)sql");
  update.bind(1, key).bind(2, utc_now_iso8601()).bind(3, message).run();
  transaction.commit();
}

void RunStore::delete_run(std::string_view run_id) {
  std::lock_guard lock(impl_->mutex);
  Impl& store = *impl_;
  Transaction transaction(store.db, store.path, Transaction::Kind::Write);
  const std::int64_t key = store.key_of(run_id);
  Statement remove(store.db, store.path, "DELETE FROM runs WHERE key = ?1");
  remove.bind(1, key).run();
  execute(store.db, store.path,
          "DELETE FROM scenarios WHERE hash NOT IN "
          "(SELECT scenario_hash FROM runs WHERE scenario_hash IS NOT NULL)");
  transaction.commit();
}

// --- reading ----------------------------------------------------------------------------------

std::vector<RunSummary> RunStore::list_runs(const RunFilter& filter) const {
  std::lock_guard lock(impl_->mutex);
  const Impl& store = *impl_;
  std::string sql = R"sql(
    SELECT runs.id, runs.kind, runs.name, runs.status, runs.created_at,
           coalesce(runs.finished_at, ''), coalesce(parent.id, ''), runs.profile_name,
           results.step_time_s, results.tokens_per_s, results.mfu, results.peak_bytes_per_gpu,
           results.fits, results.gpus
    FROM runs
    LEFT JOIN runs AS parent ON parent.key = runs.parent_key
    LEFT JOIN results ON results.run_key = runs.key
    WHERE 1)sql";
  if (!filter.name_contains.empty()) sql += " AND instr(lower(runs.name), lower(?1)) > 0";
  if (filter.kind) sql += " AND runs.kind = ?2";
  if (filter.status) sql += " AND runs.status = ?3";
  if (!filter.parent_run.empty()) sql += " AND parent.id = ?4";
  sql += " ORDER BY runs.created_at DESC, runs.key DESC";
  if (filter.limit > 0) sql += " LIMIT ?5";

  Statement query(store.db, store.path, sql);
  if (!filter.name_contains.empty()) query.bind(1, filter.name_contains);
  if (filter.kind) query.bind(2, to_string(*filter.kind));
  if (filter.status) query.bind(3, to_string(*filter.status));
  if (!filter.parent_run.empty()) query.bind(4, filter.parent_run);
  if (filter.limit > 0) query.bind(5, static_cast<std::int64_t>(filter.limit));

  std::vector<RunSummary> runs;
  while (query.step()) {
    RunSummary run;
    run.id = query.text(0);
    run.kind = store.kind_from_column(query.text(1), run.id);
    run.name = query.text(2);
    run.status = store.status_from_column(query.text(3), run.id);
    run.created_at = query.text(4);
    run.finished_at = query.text(5);
    run.parent_run = query.text(6);
    run.profile_name = query.text(7);
    run.headline = read_headline(query, 8);
    runs.push_back(std::move(run));
  }
  return runs;
}

bool RunStore::has_run(std::string_view run_id) const {
  std::lock_guard lock(impl_->mutex);
  Statement query(impl_->db, impl_->path, "SELECT 1 FROM runs WHERE id = ?1");
  query.bind(1, run_id);
  return query.step();
}

RunRecord RunStore::load_run(std::string_view run_id) const {
  std::lock_guard lock(impl_->mutex);
  const Impl& store = *impl_;
  Statement query(store.db, store.path, R"sql(
    SELECT runs.id, runs.kind, runs.name, runs.status, runs.created_at,
           coalesce(runs.finished_at, ''), coalesce(runs.error_message, ''),
           coalesce(parent.id, ''), coalesce(scenarios.yaml, ''), runs.overrides_json,
           runs.profile_name, runs.profile_hash, runs.tandem_version, runs.git_revision,
           runs.host, coalesce(results.result_json, ''),
           results.step_time_s, results.tokens_per_s, results.mfu, results.peak_bytes_per_gpu,
           results.fits, results.gpus
    FROM runs
    LEFT JOIN runs AS parent ON parent.key = runs.parent_key
    LEFT JOIN scenarios ON scenarios.hash = runs.scenario_hash
    LEFT JOIN results ON results.run_key = runs.key
    WHERE runs.id = ?1)sql");
  query.bind(1, run_id);
  if (!query.step()) store.fail("no run '" + std::string(run_id) + "'");
  RunRecord run;
  run.id = query.text(0);
  run.info.kind = store.kind_from_column(query.text(1), run.id);
  run.info.name = query.text(2);
  run.status = store.status_from_column(query.text(3), run.id);
  run.created_at = query.text(4);
  run.finished_at = query.text(5);
  run.error_message = query.text(6);
  run.info.parent_run = query.text(7);
  run.info.scenario_yaml = query.text(8);
  run.info.overrides_json = query.text(9);
  run.info.profile_name = query.text(10);
  run.info.profile_hash = query.text(11);
  run.info.tandem_version = query.text(12);
  run.info.git_revision = query.text(13);
  run.info.host = query.text(14);
  run.result_json = query.text(15);
  run.headline = read_headline(query, 16);
  return run;
}

std::vector<std::int64_t> RunStore::trace_steps(std::string_view run_id) const {
  std::lock_guard lock(impl_->mutex);
  const Impl& store = *impl_;
  const std::int64_t key = store.key_of(run_id);
  Statement query(store.db, store.path,
                  "SELECT DISTINCT step FROM trace_ops WHERE run_key = ?1 ORDER BY step");
  query.bind(1, key);
  std::vector<std::int64_t> steps;
  while (query.step()) steps.push_back(query.integer(0));
  return steps;
}

std::size_t RunStore::trace_size(std::string_view run_id) const {
  std::lock_guard lock(impl_->mutex);
  const Impl& store = *impl_;
  const std::int64_t key = store.key_of(run_id);
  Statement query(store.db, store.path, "SELECT count(*) FROM trace_ops WHERE run_key = ?1");
  query.bind(1, key);
  query.step();
  return static_cast<std::size_t>(query.integer(0));
}

Trace RunStore::load_trace(std::string_view run_id, std::optional<std::int64_t> step) const {
  std::lock_guard lock(impl_->mutex);
  const Impl& store = *impl_;
  Transaction snapshot(store.db, store.path, Transaction::Kind::Read);
  const std::int64_t key = store.key_of(run_id);

  // The dictionary, decoded into this build's enums. Each column decodes with its own enum;
  // a name this build does not know is an error only if a record actually uses it.
  struct Decoded {
    std::string name;
    std::optional<strategy::OpCode> code;
    std::optional<strategy::Stream> stream;
    std::optional<strategy::Phase> phase;
  };
  std::unordered_map<std::int64_t, Decoded> names;
  {
    Statement query(store.db, store.path, "SELECT id, name FROM trace_names");
    while (query.step()) {
      Decoded decoded;
      decoded.name = query.text(1);
      decoded.code = op_code_from_name(decoded.name);
      decoded.stream = stream_from_name(decoded.name);
      decoded.phase = phase_from_name(decoded.name);
      names.emplace(query.integer(0), std::move(decoded));
    }
  }
  const auto decode = [&](std::int64_t id, const char* column, auto member) {
    const auto found = names.find(id);
    if (found == names.end()) {
      store.fail("trace of run '" + std::string(run_id) + "' refers to a missing " + column +
                 " name (id " + std::to_string(id) + ")");
    }
    const auto& value = found->second.*member;
    if (!value) {
      store.fail("trace of run '" + std::string(run_id) + "' has " + column + " '" +
                 found->second.name +
                 "', which this build of Tandem does not know (written by another version?)");
    }
    return *value;
  };

  Statement query(store.db, store.path,
                  step ? R"sql(SELECT rank, rank_class, stream, op_id, code, phase, layer,
                               micro_batch, bytes, flops, start_s, end_s
                        FROM trace_ops WHERE run_key = ?1 AND step = ?2 ORDER BY position)sql"
                       : R"sql(SELECT rank, rank_class, stream, op_id, code, phase, layer,
                               micro_batch, bytes, flops, start_s, end_s
                        FROM trace_ops WHERE run_key = ?1 ORDER BY step, position)sql");
  query.bind(1, key);
  if (step) query.bind(2, *step);
  Trace trace;
  trace.run_id = std::string(run_id);
  while (query.step()) {
    TraceRecord record;
    record.rank = static_cast<int>(query.integer(0));
    record.rank_class = static_cast<int>(query.integer(1));
    record.stream = decode(query.integer(2), "stream", &Decoded::stream);
    record.op_id = static_cast<std::uint32_t>(query.integer(3));
    record.code = decode(query.integer(4), "op code", &Decoded::code);
    record.phase = decode(query.integer(5), "phase", &Decoded::phase);
    record.layer = static_cast<std::int32_t>(query.integer(6));
    record.micro_batch = static_cast<std::int32_t>(query.integer(7));
    record.bytes = query.real(8);
    record.flops = query.real(9);
    record.start_s = query.real(10);
    record.end_s = query.real(11);
    trace.records.push_back(record);
  }
  snapshot.commit();
  return trace;
}

std::vector<MetricPoint> RunStore::load_metrics(std::string_view run_id,
                                                std::string_view name) const {
  std::lock_guard lock(impl_->mutex);
  const Impl& store = *impl_;
  const std::int64_t key = store.key_of(run_id);
  Statement query(store.db, store.path,
                  name.empty() ? "SELECT step, name, value FROM metrics WHERE run_key = ?1 "
                                 "ORDER BY name, step, rowid"
                               : "SELECT step, name, value FROM metrics WHERE run_key = ?1 "
                                 "AND name = ?2 ORDER BY step, rowid");
  query.bind(1, key);
  if (!name.empty()) query.bind(2, name);
  std::vector<MetricPoint> points;
  while (query.step()) {
    points.push_back(MetricPoint{query.integer(0), query.text(1), query.real(2)});
  }
  return points;
}

std::vector<StoredMicrobenchmark> RunStore::load_microbenchmarks(
    const MicrobenchmarkFilter& filter) const {
  std::lock_guard lock(impl_->mutex);
  const Impl& store = *impl_;
  std::string sql = R"sql(
    SELECT runs.id, m.op, m.params_json, m.size_bytes, m.flops, m.repeats, m.time_s,
           m.time_min_s, m.time_max_s
    FROM microbenchmarks AS m JOIN runs ON runs.key = m.run_key WHERE 1)sql";
  if (!filter.run_id.empty()) sql += " AND runs.id = ?1";
  if (!filter.op.empty()) sql += " AND m.op = ?2";
  sql += " ORDER BY runs.created_at, m.rowid";
  Statement query(store.db, store.path, sql);
  if (!filter.run_id.empty()) query.bind(1, filter.run_id);
  if (!filter.op.empty()) query.bind(2, filter.op);
  std::vector<StoredMicrobenchmark> results;
  while (query.step()) {
    StoredMicrobenchmark stored;
    stored.run_id = query.text(0);
    stored.benchmark.op = query.text(1);
    stored.benchmark.params_json = query.text(2);
    stored.benchmark.size_bytes = query.real(3);
    stored.benchmark.flops = query.real(4);
    stored.benchmark.repeats = static_cast<int>(query.integer(5));
    stored.benchmark.time_s = query.real(6);
    stored.benchmark.time_min_s = query.real(7);
    stored.benchmark.time_max_s = query.real(8);
    results.push_back(std::move(stored));
  }
  return results;
}

}  // namespace tandem::report
