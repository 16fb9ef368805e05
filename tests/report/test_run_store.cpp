// The run store: round trips through the file, migrations, refusal of files that are not a
// Tandem store, and several processes writing at once.

#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "report/atomic_file.hpp"
#include "report/machine.hpp"
#include "report/run_store.hpp"
#include "tandem/version.hpp"
#include "tests/support/temporary_directory.hpp"

namespace tandem::report {
namespace {

namespace fs = std::filesystem;
using strategy::OpCode;
using strategy::Phase;
using strategy::Stream;
using testing::TemporaryDirectory;

// A deterministic trace: record i's fields are simple functions of i, so the test knows every
// value it should read back without trusting the store.
TraceRecord synthetic_record(std::size_t i) {
  TraceRecord record;
  record.rank = static_cast<int>(i % 1024);
  record.rank_class = static_cast<int>(i % 1024 / 128);
  record.stream = static_cast<Stream>(i % strategy::kStreamCount);
  record.op_id = static_cast<std::uint32_t>(i / 1024);
  record.code = static_cast<OpCode>(i % (static_cast<std::size_t>(OpCode::OptimizerStep) + 1));
  record.phase = static_cast<Phase>(i % 5);
  record.layer = static_cast<std::int32_t>(i % 97) - 1;
  record.micro_batch = static_cast<std::int32_t>(i % 13) - 1;
  record.bytes = 4096.0 * static_cast<double>(i);
  record.flops = 1.0e9 * static_cast<double>(i) + 0.5;
  record.start_s = 1e-6 * static_cast<double>(i);
  record.end_s = 1e-6 * static_cast<double>(i) + 1.0 / 3.0;
  return record;
}

void expect_same(const TraceRecord& actual, const TraceRecord& expected, std::size_t i) {
  ASSERT_EQ(actual.rank, expected.rank) << "record " << i;
  ASSERT_EQ(actual.rank_class, expected.rank_class) << "record " << i;
  ASSERT_EQ(actual.stream, expected.stream) << "record " << i;
  ASSERT_EQ(actual.op_id, expected.op_id) << "record " << i;
  ASSERT_EQ(actual.code, expected.code) << "record " << i;
  ASSERT_EQ(actual.phase, expected.phase) << "record " << i;
  ASSERT_EQ(actual.layer, expected.layer) << "record " << i;
  ASSERT_EQ(actual.micro_batch, expected.micro_batch) << "record " << i;
  ASSERT_EQ(actual.bytes, expected.bytes) << "record " << i;  // REAL keeps doubles exactly
  ASSERT_EQ(actual.flops, expected.flops) << "record " << i;
  ASSERT_EQ(actual.start_s, expected.start_s) << "record " << i;
  ASSERT_EQ(actual.end_s, expected.end_s) << "record " << i;
}

// Runs SQL on a store file directly, the way another tool (or an older Tandem) would.
void raw_sql(const fs::path& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  EXPECT_EQ(rc, SQLITE_OK) << (error ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
}

std::int64_t raw_count(const fs::path& path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_stmt* statement = nullptr;
  std::int64_t value = -1;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr) == SQLITE_OK &&
      sqlite3_step(statement) == SQLITE_ROW) {
    value = sqlite3_column_int64(statement, 0);
  }
  sqlite3_finalize(statement);
  sqlite3_close(db);
  return value;
}

std::string expect_store_error(const fs::path& path) {
  try {
    RunStore::open(path);
  } catch (const StoreError& error) {
    return error.what();
  }
  ADD_FAILURE() << "expected StoreError opening " << path;
  return {};
}

TEST(RunStore, FullRoundTripThroughTheFile) {
  TemporaryDirectory directory;
  const fs::path path = directory / "nested" / "dirs" / "runs.db";  // parents are created
  const std::string scenario = "model:\n  preset: gpt2-small\nstrategy:\n  tp: 2\n";
  const std::string profile = "name: a100-80g\nflops: 312 TFLOP/s\n";
  constexpr std::size_t kRows = 100'000;
  std::vector<TraceRecord> trace;
  trace.reserve(kRows);
  for (std::size_t i = 0; i < kRows; ++i) trace.push_back(synthetic_record(i));
  const std::vector<MetricPoint> metrics = {
      {0, "loss", 10.5}, {1, "loss", 9.25}, {2, "loss", std::nan("")}, {1, "lr", 3e-4}};
  const std::vector<Microbenchmark> benchmarks = {
      {"gemm", R"({"m":4096,"n":4096,"k":4096,"backend":"cpu"})", 3 * 4096.0 * 4096 * 4, 2 * 4096.0 * 4096 * 4096, 5,
       1.25, 1.2, 1.4},
      {"all-reduce", R"({"group":8})", 1 << 20, 0, 20, 1e-4, 9e-5, 2e-4},
  };

  std::string sweep_id, run_id;
  {
    RunStore store = RunStore::open(path);
    EXPECT_EQ(store.schema_version(), current_schema_version());
    sweep_id = store.begin_run({.kind = RunKind::Sweep, .name = "tp sweep"});

    RunInfo info;
    info.kind = RunKind::Simulation;
    info.name = "gpt2 tp=2";
    info.scenario_yaml = scenario;
    info.overrides_json = R"({"strategy.tp": 2})";
    info.profile_name = "a100-80g";
    info.profile_hash = sha256_hex(profile);
    info.parent_run = sweep_id;
    run_id = store.begin_run(info);
    EXPECT_TRUE(std::regex_match(run_id, std::regex(R"(\d{8}-\d{6}-[0-9a-f]{8})"))) << run_id;
    EXPECT_NE(run_id, sweep_id);

    const auto start = std::chrono::steady_clock::now();
    store.add_trace(run_id, 0, trace);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("[ info     ] bulk insert: %zu trace rows in %.3f s = %.0f rows/s\n", kRows,
                seconds, kRows / seconds);

    store.add_metrics(run_id, metrics);
    store.add_microbenchmarks(run_id, benchmarks);
    Headline headline;
    headline.step_time_s = 1.75;
    headline.tokens_per_s = 2.5e5;
    headline.mfu = 0.41;
    headline.peak_bytes_per_gpu = 6.4e10;
    headline.fits = true;
    headline.gpus = 1024;
    store.finish_run(run_id, R"({"step_time_s": 1.75, "fits": true})", headline);
  }

  // A fresh connection sees everything.
  const RunStore store = RunStore::open(path);
  const RunRecord run = store.load_run(run_id);
  EXPECT_EQ(run.id, run_id);
  EXPECT_EQ(run.info.kind, RunKind::Simulation);
  EXPECT_EQ(run.info.name, "gpt2 tp=2");
  EXPECT_EQ(run.status, RunStatus::Finished);
  EXPECT_EQ(run.info.scenario_yaml, scenario);
  EXPECT_EQ(run.info.overrides_json, R"({"strategy.tp": 2})");
  EXPECT_EQ(run.info.profile_name, "a100-80g");
  EXPECT_EQ(run.info.profile_hash, sha256_hex(profile));
  EXPECT_EQ(run.info.parent_run, sweep_id);
  EXPECT_EQ(run.info.tandem_version, kVersion);   // provenance filled in by begin_run
  EXPECT_EQ(run.info.git_revision, kGitRevision);
  EXPECT_EQ(run.info.host, describe_machine().summary());
  EXPECT_TRUE(std::regex_match(run.created_at,
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
      << run.created_at;
  EXPECT_GE(run.finished_at, run.created_at);
  EXPECT_EQ(run.result_json, R"({"step_time_s": 1.75, "fits": true})");
  EXPECT_EQ(run.headline.step_time_s, 1.75);
  EXPECT_EQ(run.headline.tokens_per_s, 2.5e5);
  EXPECT_EQ(run.headline.mfu, 0.41);
  EXPECT_EQ(run.headline.peak_bytes_per_gpu, 6.4e10);
  EXPECT_EQ(run.headline.fits, true);
  EXPECT_EQ(run.headline.gpus, 1024);

  const RunRecord sweep = store.load_run(sweep_id);
  EXPECT_EQ(sweep.status, RunStatus::Running);
  EXPECT_EQ(sweep.info.overrides_json, "{}");
  EXPECT_TRUE(sweep.info.scenario_yaml.empty());
  EXPECT_FALSE(sweep.headline.step_time_s);
  EXPECT_FALSE(sweep.headline.fits);

  EXPECT_EQ(store.trace_size(run_id), kRows);
  EXPECT_EQ(store.trace_steps(run_id), std::vector<std::int64_t>{0});
  const Trace loaded = store.load_trace(run_id);
  EXPECT_EQ(loaded.run_id, run_id);
  ASSERT_EQ(loaded.records.size(), kRows);
  for (std::size_t i = 0; i < kRows; ++i) {
    expect_same(loaded.records[i], synthetic_record(i), i);
    if (::testing::Test::HasFatalFailure()) return;
  }

  const auto loaded_metrics = store.load_metrics(run_id);  // by name, then step
  ASSERT_EQ(loaded_metrics.size(), 4u);
  EXPECT_EQ(loaded_metrics[0].name, "loss");
  EXPECT_EQ(loaded_metrics[0].value, 10.5);
  EXPECT_EQ(loaded_metrics[1].step, 1);
  EXPECT_EQ(loaded_metrics[1].value, 9.25);
  EXPECT_TRUE(std::isnan(loaded_metrics[2].value)) << "a diverged loss must survive";
  EXPECT_EQ(loaded_metrics[3].name, "lr");
  EXPECT_EQ(store.load_metrics(run_id, "lr").size(), 1u);

  const auto gemms = store.load_microbenchmarks({.op = "gemm"});
  ASSERT_EQ(gemms.size(), 1u);
  EXPECT_EQ(gemms[0].run_id, run_id);
  EXPECT_EQ(gemms[0].benchmark.params_json, benchmarks[0].params_json);
  EXPECT_EQ(gemms[0].benchmark.flops, 2 * 4096.0 * 4096 * 4096);
  EXPECT_EQ(gemms[0].benchmark.repeats, 5);
  EXPECT_EQ(gemms[0].benchmark.time_s, 1.25);
  EXPECT_EQ(gemms[0].benchmark.time_min_s, 1.2);
  EXPECT_EQ(gemms[0].benchmark.time_max_s, 1.4);
  EXPECT_EQ(store.load_microbenchmarks({.run_id = run_id}).size(), 2u);
  EXPECT_EQ(store.load_microbenchmarks({.run_id = sweep_id}).size(), 0u);

  // The enums are stored by name: the dictionary holds the names, not enum positions.
  EXPECT_EQ(raw_count(path, "SELECT count(*) FROM trace_names WHERE name = 'qkv-fwd'"), 1);
  EXPECT_EQ(raw_count(path, "SELECT count(*) FROM trace_names WHERE name = 'tp-comm'"), 1);
}

TEST(RunStore, StepsOfAnEngineRun) {
  TemporaryDirectory directory;
  RunStore store = RunStore::open(directory / "runs.db");
  const std::string id = store.begin_run({.kind = RunKind::Training, .name = "train"});
  for (std::int64_t step = 0; step < 3; ++step) {
    std::vector<TraceRecord> records;
    for (std::size_t i = 0; i < 10; ++i) {
      TraceRecord record = synthetic_record(i);
      record.start_s = static_cast<double>(step) * 10 + static_cast<double>(i);
      records.push_back(record);
    }
    store.add_trace(id, step, records);
  }
  EXPECT_EQ(store.trace_steps(id), (std::vector<std::int64_t>{0, 1, 2}));
  const Trace step1 = store.load_trace(id, 1);
  ASSERT_EQ(step1.records.size(), 10u);
  EXPECT_EQ(step1.records[0].start_s, 10.0);
  EXPECT_EQ(step1.records[9].start_s, 19.0);
  const Trace all = store.load_trace(id);
  ASSERT_EQ(all.records.size(), 30u);
  EXPECT_EQ(all.records[29].start_s, 29.0);
  EXPECT_TRUE(store.load_trace(id, 7).records.empty());
}

TEST(RunStore, RunLifecycleErrorsAreClear) {
  TemporaryDirectory directory;
  RunStore store = RunStore::open(directory / "runs.db");
  const std::string id = store.begin_run({.kind = RunKind::Simulation, .name = "x"});

  EXPECT_THROW(store.finish_run(id, "{not json", {}), StoreError);
  EXPECT_EQ(store.load_run(id).status, RunStatus::Running) << "a rejected result changes nothing";

  store.fail_run(id, "out of memory on stage 3");
  const RunRecord failed = store.load_run(id);
  EXPECT_EQ(failed.status, RunStatus::Failed);
  EXPECT_EQ(failed.error_message, "out of memory on stage 3");
  EXPECT_FALSE(failed.finished_at.empty());
  try {
    store.finish_run(id, "{}", {});
    FAIL() << "finishing a failed run must be refused";
  } catch (const StoreError& error) {
    EXPECT_NE(std::string(error.what()).find("already failed"), std::string::npos) << error.what();
  }
  try {
    store.add_trace("no-such-run", 0, std::vector<TraceRecord>(3));
    FAIL() << "expected StoreError";
  } catch (const StoreError& error) {
    EXPECT_NE(std::string(error.what()).find("no-such-run"), std::string::npos) << error.what();
  }
  EXPECT_THROW(store.load_run("no-such-run"), StoreError);
  EXPECT_FALSE(store.has_run("no-such-run"));
  EXPECT_THROW(store.begin_run({.kind = RunKind::Simulation, .parent_run = "ghost"}), StoreError);
  EXPECT_THROW(store.begin_run({.kind = RunKind::Simulation, .overrides_json = "[1,"}),
               StoreError);
}

TEST(RunStore, ListRunsFiltersAndOrdersNewestFirst) {
  TemporaryDirectory directory;
  RunStore store = RunStore::open(directory / "runs.db");
  const std::string sweep = store.begin_run({.kind = RunKind::Sweep, .name = "TP sweep"});
  std::vector<std::string> children;
  for (int tp : {1, 2, 4}) {
    children.push_back(store.begin_run({.kind = RunKind::Simulation,
                                        .name = "gpt tp=" + std::to_string(tp),
                                        .parent_run = sweep}));
  }
  const std::string training = store.begin_run({.kind = RunKind::Training, .name = "GPT train"});
  Headline headline;
  headline.mfu = 0.5;
  store.finish_run(children[1], "{}", headline);
  store.fail_run(children[2], "oom");

  const auto all = store.list_runs();
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all[0].id, training);  // newest first
  EXPECT_EQ(all[4].id, sweep);

  const auto gpt = store.list_runs({.name_contains = "gPt"});
  EXPECT_EQ(gpt.size(), 4u) << "case-insensitive substring";
  const auto simulations = store.list_runs({.kind = RunKind::Simulation});
  EXPECT_EQ(simulations.size(), 3u);
  const auto finished = store.list_runs({.status = RunStatus::Finished});
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].id, children[1]);
  EXPECT_EQ(finished[0].headline.mfu, 0.5);
  EXPECT_EQ(finished[0].parent_run, sweep);
  EXPECT_EQ(store.list_runs({.parent_run = sweep}).size(), 3u);
  EXPECT_EQ(store.list_runs({.limit = 2}).size(), 2u);
  EXPECT_EQ(store.list_runs({.name_contains = "100%_"}).size(), 0u) << "no LIKE wildcards";
}

TEST(RunStore, DeleteRunRemovesEverythingItOwns) {
  TemporaryDirectory directory;
  const fs::path path = directory / "runs.db";
  RunStore store = RunStore::open(path);
  const std::string parent = store.begin_run({.kind = RunKind::Sweep});
  const std::string keep = store.begin_run({.kind = RunKind::Simulation, .scenario_yaml = "a: 1\n",
                                            .parent_run = parent});
  const std::string drop = store.begin_run({.kind = RunKind::Simulation, .scenario_yaml = "b: 2\n"});
  for (const auto& id : {keep, drop}) {
    store.add_trace(id, 0, std::vector<TraceRecord>(100));
    store.add_metrics(id, std::vector<MetricPoint>{{0, "loss", 1.0}});
    store.add_microbenchmarks(id, std::vector<Microbenchmark>{{.op = "gemm"}});
    store.finish_run(id, "{}", {});
  }
  store.delete_run(drop);
  EXPECT_FALSE(store.has_run(drop));
  EXPECT_EQ(store.trace_size(keep), 100u);
  EXPECT_EQ(raw_count(path, "SELECT count(*) FROM trace_ops"), 100);
  EXPECT_EQ(raw_count(path, "SELECT count(*) FROM metrics"), 1);
  EXPECT_EQ(raw_count(path, "SELECT count(*) FROM microbenchmarks"), 1);
  EXPECT_EQ(raw_count(path, "SELECT count(*) FROM results"), 1);
  EXPECT_EQ(raw_count(path, "SELECT count(*) FROM scenarios"), 1) << "orphan scenario removed";

  store.delete_run(parent);
  EXPECT_EQ(store.load_run(keep).info.parent_run, "") << "child keeps living without parent";
  EXPECT_THROW(store.delete_run(parent), StoreError);
}

TEST(RunStore, SameScenarioIsStoredOnce) {
  TemporaryDirectory directory;
  const fs::path path = directory / "runs.db";
  RunStore store = RunStore::open(path);
  for (int i = 0; i < 3; ++i) {
    store.begin_run({.kind = RunKind::Simulation, .scenario_yaml = "model: gpt2\n"});
  }
  EXPECT_EQ(raw_count(path, "SELECT count(*) FROM scenarios"), 1);
  EXPECT_EQ(raw_count(path, "SELECT count(*) FROM runs"), 3);
}

// A store created at every earlier schema version (by applying the migration steps up to it, as
// that version of Tandem did) opens, upgrades to the current version and keeps working. For
// version 0 that is an empty file.
TEST(RunStoreMigrations, OlderStoresAreUpgraded) {
  for (int version = 0; version < current_schema_version(); ++version) {
    TemporaryDirectory directory;
    const fs::path path = directory / "runs.db";
    std::string sql;
    for (const Migration& migration : schema_migrations()) {
      if (migration.version <= version) sql += migration.sql;
    }
    sql += "PRAGMA user_version = " + std::to_string(version) + ";";
    if (version > 0) sql += "PRAGMA application_id = 1413565764;";  // "TAND"
    raw_sql(path, sql);

    RunStore store = RunStore::open(path);
    EXPECT_EQ(store.schema_version(), current_schema_version()) << "from version " << version;
    EXPECT_EQ(raw_count(path, "PRAGMA user_version"), current_schema_version());
    const std::string id = store.begin_run({.kind = RunKind::Validation});
    store.add_trace(id, 0, std::vector<TraceRecord>(5));
    EXPECT_EQ(store.trace_size(id), 5u);
  }
}

TEST(RunStoreMigrations, ReopeningTheCurrentVersionKeepsTheData) {
  TemporaryDirectory directory;
  const fs::path path = directory / "runs.db";
  std::string id;
  {
    RunStore store = RunStore::open(path);
    id = store.begin_run({.kind = RunKind::Profile, .name = "profile"});
  }
  for (int i = 0; i < 2; ++i) {
    const RunStore store = RunStore::open(path);
    EXPECT_EQ(store.schema_version(), current_schema_version());
    EXPECT_EQ(store.load_run(id).info.name, "profile");
  }
  EXPECT_EQ(raw_count(path, "PRAGMA application_id"), 0x54414E44);
  EXPECT_EQ(raw_count(path, "SELECT count(*) FROM runs"), 1);
}

TEST(RunStoreMigrations, NewerStoreIsRefused) {
  TemporaryDirectory directory;
  const fs::path path = directory / "runs.db";
  { RunStore::open(path); }
  raw_sql(path, "PRAGMA user_version = " + std::to_string(current_schema_version() + 1));
  const std::string message = expect_store_error(path);
  EXPECT_NE(message.find(path.string()), std::string::npos) << message;
  EXPECT_NE(message.find("newer Tandem"), std::string::npos) << message;
  EXPECT_NE(message.find("version " + std::to_string(current_schema_version() + 1)),
            std::string::npos) << message;
}

TEST(RunStoreOpen, CorruptFileIsRefusedWithItsPath) {
  TemporaryDirectory directory;
  const fs::path path = directory / "runs.db";
  std::string garbage;
  for (int i = 0; i < 512; ++i) garbage += "this is not a database. ";
  write_file_atomically(path, garbage);
  const std::string message = expect_store_error(path);
  EXPECT_NE(message.find(path.string()), std::string::npos) << message;
  EXPECT_NE(message.find("not an SQLite database"), std::string::npos) << message;
  EXPECT_EQ(read_file(path), garbage) << "the file must not be touched";
}

TEST(RunStoreOpen, OtherProgramsDatabaseIsRefused) {
  TemporaryDirectory directory;
  const fs::path path = directory / "other.db";
  raw_sql(path, "CREATE TABLE photos (id INTEGER PRIMARY KEY, file TEXT);");
  const std::string message = expect_store_error(path);
  EXPECT_NE(message.find("not a Tandem run store"), std::string::npos) << message;
  EXPECT_EQ(raw_count(path, "SELECT count(*) FROM sqlite_master"), 1) << "left untouched";
}

TEST(RunStoreOpen, DirectoryIsRefused) {
  TemporaryDirectory directory;
  const std::string message = expect_store_error(directory.path());
  EXPECT_NE(message.find("directory"), std::string::npos) << message;
}

TEST(RunStoreOpen, DefaultPathFollowsTheEnvironment) {
  const auto saved = [](const char* name) -> std::optional<std::string> {
    const char* value = std::getenv(name);
    return value ? std::optional<std::string>(value) : std::nullopt;
  };
  const auto tandem_db = saved("TANDEM_DB");
  const auto data_home = saved("XDG_DATA_HOME");
  const auto home = saved("HOME");

  ::setenv("TANDEM_DB", "/data/my.db", 1);
  ::setenv("XDG_DATA_HOME", "/xdg", 1);
  ::setenv("HOME", "/home/u", 1);
  EXPECT_EQ(default_database_path(), fs::path("/data/my.db"));
  ::unsetenv("TANDEM_DB");
  EXPECT_EQ(default_database_path(), fs::path("/xdg/tandem/runs.db"));
  ::setenv("XDG_DATA_HOME", "relative/ignored", 1);
  EXPECT_EQ(default_database_path(), fs::path("/home/u/.local/share/tandem/runs.db"));
  ::unsetenv("XDG_DATA_HOME");
  EXPECT_EQ(default_database_path(), fs::path("/home/u/.local/share/tandem/runs.db"));

  const auto restore = [](const char* name, const std::optional<std::string>& value) {
    if (value) ::setenv(name, value->c_str(), 1);
    else ::unsetenv(name);
  };
  restore("TANDEM_DB", tandem_db);
  restore("XDG_DATA_HOME", data_home);
  restore("HOME", home);
}

// Three processes (a sweep's children) create the same new store and write runs with traces at
// the same time, while this process reads it like the GUI would. Every write must succeed.
TEST(RunStoreConcurrency, SeveralProcessesWriteWhileOneReads) {
  TemporaryDirectory directory;
  const fs::path path = directory / "shared" / "runs.db";
  constexpr int kWriters = 3;
  constexpr int kRunsPerWriter = 4;
  constexpr std::size_t kRowsPerRun = 20'000;

  std::vector<pid_t> children;
  for (int writer = 0; writer < kWriters; ++writer) {
    const pid_t child = ::fork();
    if (child == 0) {
      int status = 0;
      try {
        RunStore store = RunStore::open(path);
        std::vector<TraceRecord> records;
        for (std::size_t i = 0; i < kRowsPerRun; ++i) records.push_back(synthetic_record(i));
        for (int run = 0; run < kRunsPerWriter; ++run) {
          const std::string id = store.begin_run(
              {.kind = RunKind::Simulation, .name = "writer " + std::to_string(writer)});
          store.add_trace(id, 0, records);
          store.add_metrics(id, std::vector<MetricPoint>{{0, "loss", 1.0 * writer}});
          store.finish_run(id, "{}", {});
        }
      } catch (const std::exception& error) {
        std::fprintf(stderr, "writer %d: %s\n", writer, error.what());
        status = 1;
      }
      ::_exit(status);
    }
    ASSERT_GT(child, 0);
    children.push_back(child);
  }

  // Read while they write (the store may not exist for the first few milliseconds).
  std::vector<int> exit_codes(children.size(), -1);
  std::string read_error;
  int reads = 0;
  for (;;) {
    bool running = false;
    for (std::size_t i = 0; i < children.size(); ++i) {
      if (exit_codes[i] != -1) continue;
      int status = 0;
      if (::waitpid(children[i], &status, WNOHANG) == children[i]) {
        exit_codes[i] = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
      } else {
        running = true;
      }
    }
    if (!running) break;
    if (!fs::exists(path)) continue;
    try {
      const RunStore reader = RunStore::open(path);
      for (const RunSummary& run : reader.list_runs({.limit = 0})) {
        if (run.status == RunStatus::Finished && reader.trace_size(run.id) != kRowsPerRun) {
          read_error = "finished run " + run.id + " with a partial trace";
        }
      }
      ++reads;
    } catch (const std::exception& error) {
      read_error = error.what();
    }
  }
  for (std::size_t i = 0; i < children.size(); ++i) {
    EXPECT_EQ(exit_codes[i], 0) << "writer " << i << " failed (its message is on stderr)";
  }
  EXPECT_EQ(read_error, "");
  std::printf("[ info     ] %d consistent reads while %d processes wrote\n", reads, kWriters);

  const RunStore store = RunStore::open(path);
  const auto runs = store.list_runs({.limit = 0});
  ASSERT_EQ(runs.size(), static_cast<std::size_t>(kWriters * kRunsPerWriter));
  for (const RunSummary& run : runs) {
    EXPECT_EQ(run.status, RunStatus::Finished) << run.id;
    EXPECT_EQ(store.trace_size(run.id), kRowsPerRun) << run.id;
  }
}

}  // namespace
}  // namespace tandem::report
