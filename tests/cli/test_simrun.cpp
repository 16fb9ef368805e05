// End-to-end tests of the simrun binary: every example scenario, bad inputs, --json, --check,
// --trace, --db, sweeps and --best.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "report/run_store.hpp"
#include "strategy/engine_support.hpp"
#include "strategy/scenario.hpp"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct SimrunOutput {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class SimrunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = fs::temp_directory_path() / ("tandem-simrun-test-" + std::to_string(::getpid()) + "-" +
                                              ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(directory_);
  }
  void TearDown() override { fs::remove_all(directory_); }

  // Runs simrun with `arguments` (shell-quoted by the caller) in the test's directory, with the
  // default database redirected there.
  SimrunOutput simrun(const std::string& arguments) {
    const fs::path out = directory_ / "stdout.txt";
    const fs::path err = directory_ / "stderr.txt";
    const std::string command = "cd '" + directory_.string() + "' && TANDEM_DB='" + (directory_ / "default.db").string() +
                                "' '" TANDEM_SIMRUN "' " + arguments + " > '" + out.string() + "' 2> '" +
                                err.string() + "'";
    const int status = std::system(command.c_str());
    SimrunOutput run;
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    run.out = slurp(out);
    run.err = slurp(err);
    return run;
  }

  static std::string slurp(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
  }

  fs::path write(const std::string& name, const std::string& text) {
    std::ofstream(directory_ / name) << text;
    return directory_ / name;
  }

  static std::string example(const std::string& name) {
    return std::string("'") + TANDEM_SOURCE_DIR + "/scenarios/" + name + ".yaml'";
  }

  fs::path directory_;
};

void check_training_json(const json& j, const std::string& name) {
  for (const char* key : {"step_time_s", "tokens_per_s", "mfu", "model_tflops_per_gpu", "hardware_tflops_per_gpu",
                          "gpus", "memory", "breakdown_s"})
    ASSERT_TRUE(j.contains(key)) << name << " lacks " << key;
  for (const char* key : {"peak_bytes_per_gpu", "weights", "gradients", "optimizer", "activations", "capacity_bytes",
                          "fits"})
    EXPECT_TRUE(j["memory"].contains(key)) << name << " memory lacks " << key;
  double sum = 0;
  for (const char* key : {"compute", "exposed_tp_comm", "exposed_dp_comm", "exposed_pp_comm", "exposed_cp_comm",
                          "bubble", "optimizer", "outer_sync"}) {
    ASSERT_TRUE(j["breakdown_s"].contains(key)) << name << " breakdown lacks " << key;
    sum += j["breakdown_s"][key].get<double>();
  }
  const double step = j["step_time_s"].get<double>();
  EXPECT_GT(step, 0) << name;
  EXPECT_NEAR(sum, step, 1e-9 * step) << name;
  EXPECT_GT(j["mfu"].get<double>(), 0) << name;
  EXPECT_LT(j["mfu"].get<double>(), 1) << name;
}

TEST_F(SimrunTest, EveryExampleScenarioRunsWithJson) {
  for (const std::string name : {"default", "gpt3-175b-selene", "heterogeneous-nic", "llama-h100", "tiny-cpu"}) {
    const SimrunOutput run = simrun(example(name) + " --json --no-db");
    ASSERT_EQ(run.exit_code, 0) << name << ": " << run.err;
    const json j = json::parse(run.out);  // only JSON on stdout
    check_training_json(j, name);
    if (name == "default" || name == "gpt3-175b-selene" || name == "llama-h100") {
      EXPECT_TRUE(j.contains("days")) << name;
    }
  }
}

TEST_F(SimrunTest, WanExampleComparesTheOuterMethods) {
  // scenarios/diloco-wan.yaml sweeps strategy.outer.method over two sites joined by a slow link.
  const SimrunOutput run = simrun(example("diloco-wan") + " --json --no-db -j 2");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json j = json::parse(run.out);
  ASSERT_EQ(j["results"].size(), 4u);
  std::map<std::string, json> by_method;
  for (const auto& point : j["results"]) {
    ASSERT_TRUE(point["feasible"].get<bool>()) << point["reason"];
    check_training_json(point, point["overrides"].dump());
    ASSERT_TRUE(point.contains("wan"));
    for (const char* key : {"bytes_per_step", "peak_bandwidth_Bps", "average_bandwidth_Bps", "sync_bytes"})
      EXPECT_TRUE(point["wan"].contains(key)) << key;
    by_method[point["overrides"]["strategy.outer.method"].get<std::string>()] = point;
  }
  ASSERT_EQ(by_method.size(), 4u);
  for (const char* method : {"diloco", "streaming-diloco", "noloco"}) {
    ASSERT_TRUE(by_method[method].contains("outer")) << method;
    EXPECT_GT(by_method[method]["outer"]["exchange_s"].get<double>(), 0) << method;
  }
  EXPECT_FALSE(by_method["none"].contains("outer"));
  auto wan = [&](const char* method, const char* key) { return by_method[method]["wan"][key].get<double>(); };
  auto step = [&](const char* method) { return by_method[method]["step_time_s"].get<double>(); };
  // The published claims, on this cluster: DiLoCo moves orders of magnitude fewer bytes than
  // synchronous data parallelism; Streaming DiLoCo needs a far lower peak bandwidth than DiLoCo.
  EXPECT_LT(wan("diloco", "bytes_per_step"), wan("none", "bytes_per_step") / 100);
  EXPECT_LT(wan("streaming-diloco", "peak_bandwidth_Bps"), wan("diloco", "peak_bandwidth_Bps") / 10);
  EXPECT_LT(step("diloco"), step("none"));
  EXPECT_LT(step("streaming-diloco"), step("none"));
  const SimrunOutput table = simrun(example("diloco-wan") + " --no-db -j 2");
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("peak WAN bw"), std::string::npos) << table.out;
  // One point (the file without its sweep): the text report's outer and WAN sections.
  std::string text = slurp(std::string(TANDEM_SOURCE_DIR) + "/scenarios/diloco-wan.yaml");
  text = text.substr(0, text.find("\nsweep:")) + "\n";
  const SimrunOutput single = simrun("'" + write("one.yaml", text).string() + "' --no-db");
  ASSERT_EQ(single.exit_code, 0) << single.err;
  EXPECT_NE(single.out.find("outer synchronisation"), std::string::npos) << single.out;
  EXPECT_NE(single.out.find("wide-area link"), std::string::npos) << single.out;
}

TEST_F(SimrunTest, CollectiveExampleReportsNcclTestsColumns) {
  const SimrunOutput run = simrun(example("allreduce-100k") + " --json --no-db");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json j = json::parse(run.out);
  EXPECT_EQ(j["kind"], "all-reduce");
  EXPECT_EQ(j["gpus"], 100000);
  ASSERT_EQ(j["collective"].size(), 3u);
  for (const auto& row : j["collective"]) {
    for (const char* key : {"size_bytes", "algorithm", "time_s", "algbw_GBps", "busbw_GBps"})
      EXPECT_TRUE(row.contains(key)) << key;
    EXPECT_NE(row["algorithm"], "auto");
    EXPECT_NEAR(row["busbw_GBps"].get<double>(), row["algbw_GBps"].get<double>() * 2 * 99999 / 100000, 1e-6);
  }
}

TEST_F(SimrunTest, NoScenarioRunsTheBuiltInDefault) {
  const SimrunOutput run = simrun("--no-db");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find("built-in"), std::string::npos);
  EXPECT_NE(run.out.find("step time"), std::string::npos);
  EXPECT_NE(run.out.find("where the step goes"), std::string::npos);
}

TEST_F(SimrunTest, BadScenariosExitTwoNamingTheField) {
  struct Case {
    std::string yaml;
    std::string field;
  };
  const std::string cluster = "cluster: {gpu: a100-80gb, nodes: 1, gpus_per_node: 8}\n";
  const std::string model = "model: {preset: gpt-22b}\n";
  const std::vector<Case> cases{
      {"name: x\n" + model + cluster + "strategy: {tp: 8, pp: 1, bogus: 3}\n", "strategy.bogus"},
      {"name: x\n" + model + "cluster: {gpu: a100-80gb, nodes: 1, gpus_per_node: 6}\nstrategy: {tp: 3}\n",
       "strategy.tp"},
      {"name: x\n" + model + cluster + "strategy: {tp: 4, pp: 1, dp: 4}\n", "strategy.dp"},
      {"name: x\n" + model + "cluster: {gpu: a100-80gb, nodes: 1, gpus_per_node: 8, nic: {bandwidth: fast}}\n" +
           "strategy: {tp: 8}\n",
       "cluster.nic.bandwidth"},
      {"name: x\n" + model + "cluster: {gpu: b300, nodes: 1}\nstrategy: {tp: 1}\n", "cluster.gpu"},
      {"name: x\n" + model + "strategy: {tp: 8}\n", "cluster"},
      {"name: x\n" + model + cluster + "strategy: {tp: 8}\ncollective: {kind: all-reduce, sizes: [1MiB]}\n",
       "collective"},
      {"name: x\n" + model + cluster + "strategy: {tp: 8, micro_batch: 3, global_batch: 4}\n", "strategy.global_batch"},
      {"name: x\n" + model + cluster + "strategy: {tp: 8, pp: 1, schedule: interleaved, virtual_stages: 2}\n",
       "strategy"},
      {"name: [unclosed\n", "yaml"},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const fs::path file = write("bad" + std::to_string(i) + ".yaml", cases[i].yaml);
    const SimrunOutput run = simrun("'" + file.string() + "' --no-db");
    EXPECT_EQ(run.exit_code, 2) << cases[i].yaml << run.err;
    EXPECT_NE(run.err.find(cases[i].field), std::string::npos) << cases[i].field << " not in: " << run.err;
    EXPECT_TRUE(run.out.empty()) << run.out;
  }
  const SimrunOutput missing = simrun("no-such-file.yaml --no-db");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("no-such-file.yaml"), std::string::npos) << missing.err;
  const SimrunOutput bad_sweep = simrun(example("default") + " --sweep strategy.tp --no-db");
  EXPECT_EQ(bad_sweep.exit_code, 2);
  EXPECT_NE(bad_sweep.err.find("--sweep"), std::string::npos) << bad_sweep.err;
  const SimrunOutput bad_flag = simrun("--frobnicate");
  EXPECT_EQ(bad_flag.exit_code, 2);
}

TEST_F(SimrunTest, CheckPrintsTheMemoryEstimateAndDoesNotFitIsStillSimulated) {
  const SimrunOutput check = simrun(example("gpt3-175b-selene") + " --check --json");
  ASSERT_EQ(check.exit_code, 0) << check.err;
  const json j = json::parse(check.out);
  EXPECT_TRUE(j["valid"].get<bool>());
  EXPECT_GT(j["memory"]["peak_bytes_per_gpu"].get<double>(), 0);
  // GPT-3 175B on one node cannot fit: still simulated, exit 0, fits = false.
  const fs::path file = write("big.yaml",
                              "name: big\nmodel: {preset: gpt3-175b}\n"
                              "cluster: {gpu: a100-40gb, nodes: 1, gpus_per_node: 8}\n"
                              "strategy: {tp: 8, pp: 1, micro_batch: 1, global_batch: 1}\n");
  const SimrunOutput run = simrun("'" + file.string() + "' --json --no-db");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json big = json::parse(run.out);
  EXPECT_FALSE(big["memory"]["fits"].get<bool>());
  EXPECT_GT(big["step_time_s"].get<double>(), 0);
}

TEST_F(SimrunTest, DbRecordsTheRunWithItsTraceAndProvenance) {
  const fs::path db = directory_ / "runs.db";
  const SimrunOutput run = simrun(example("default") + " --json --db '" + db.string() + "'");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json j = json::parse(run.out);
  const auto store = tandem::report::RunStore::open(db);
  const auto record = store.load_run(j["run_id"].get<std::string>());
  EXPECT_EQ(record.status, tandem::report::RunStatus::Finished);
  EXPECT_EQ(record.info.profile_name, "h100-80gb");
  EXPECT_EQ(record.info.profile_hash.size(), 64u);
  EXPECT_FALSE(record.info.git_revision.empty());
  EXPECT_FALSE(record.info.scenario_yaml.empty());
  EXPECT_NEAR(*record.headline.step_time_s, j["step_time_s"].get<double>(), 1e-12);
  EXPECT_GT(store.trace_size(record.id), 1000u);
  // Without --db the run goes to the default database ($TANDEM_DB here).
  ASSERT_EQ(simrun(example("tiny-cpu")).exit_code, 0);
  EXPECT_EQ(tandem::report::RunStore::open(directory_ / "default.db").list_runs().size(), 1u);
}

TEST_F(SimrunTest, TraceIsChromeTraceJson) {
  const fs::path trace = directory_ / "trace.json";
  const SimrunOutput run = simrun(example("default") + " --no-db --trace '" + trace.string() + "'");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json j = json::parse(slurp(trace));
  ASSERT_TRUE(j.contains("traceEvents"));
  std::size_t complete = 0;
  for (const auto& event : j["traceEvents"])
    if (event["ph"] == "X") ++complete;
  EXPECT_GT(complete, 1000u);
}

TEST_F(SimrunTest, SweepJsonAndTable) {
  const SimrunOutput run = simrun(example("default") + " --no-db --json --sweep strategy.micro_batch=1,2 --sweep strategy.tp=2,3 -j 2");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json j = json::parse(run.out);
  ASSERT_EQ(j["results"].size(), 4u);
  int feasible = 0;
  for (const auto& point : j["results"]) {
    ASSERT_TRUE(point.contains("overrides"));
    if (point["feasible"].get<bool>()) {
      ++feasible;
      check_training_json(point, point["overrides"].dump());
    } else {
      EXPECT_NE(point["reason"].get<std::string>().find("strategy."), std::string::npos);
    }
  }
  EXPECT_EQ(feasible, 2);
  const SimrunOutput table =
      simrun(example("sweep-tp-pp") + " --no-db --sweep strategy.micro_batch=1 --sweep strategy.tp=4,3 --sweep strategy.pp=2 -j 2");
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("infeasible"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("step time"), std::string::npos);
}

TEST_F(SimrunTest, CollectiveSweep) {
  const fs::path file = write("coll.yaml",
                              "name: c\ncluster: {gpu: h100-80gb, nodes: 2, gpus_per_node: 8}\n"
                              "collective: {kind: all-gather, sizes: [64MiB]}\n");
  const SimrunOutput run = simrun("'" + file.string() + "' --no-db --json --sweep cluster.nodes=2,4 -j 2");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json j = json::parse(run.out);
  ASSERT_EQ(j["results"].size(), 2u);
  EXPECT_EQ(j["results"][1]["gpus"], 32);
}

TEST_F(SimrunTest, BestRoundTrip) {
  const fs::path best = directory_ / "best.yaml";
  const SimrunOutput run = simrun(example("default") + " --no-db --sweep strategy.tp=1,2,4 --sweep strategy.pp=1,2 -j 2 --best '" +
                         best.string() + "'");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const tandem::strategy::Scenario scenario = tandem::strategy::load_scenario(best);
  EXPECT_TRUE(scenario.sweep.empty());
  ASSERT_TRUE(scenario.predicted.has_value());
  ASSERT_TRUE(scenario.predicted->step_time_s.has_value());
  EXPECT_GT(*scenario.predicted->step_time_s, 0);
  EXPECT_FALSE(scenario.strategy->dp_auto);
  // Simulating the written scenario predicts the same step time.
  const SimrunOutput again = simrun("'" + best.string() + "' --json --no-db");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NEAR(json::parse(again.out)["step_time_s"].get<double>(), *scenario.predicted->step_time_s,
              1e-9 * *scenario.predicted->step_time_s);
}

TEST_F(SimrunTest, BestForEngineOnlyPicksWhatTheEngineRuns) {
  const fs::path best = directory_ / "best.yaml";
  const SimrunOutput run = simrun(example("tiny-cpu") + " --no-db --for-engine --sweep strategy.micro_batch=2,4,8 --sweep "
                         "strategy.precision=fp32,bf16 -j 2 --best '" + best.string() + "'");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto scenario = tandem::strategy::load_scenario(best);
  EXPECT_TRUE(tandem::strategy::engine_unsupported(scenario).empty());
  EXPECT_EQ(scenario.strategy->precision, tandem::strategy::Precision::Fp32);
}

TEST_F(SimrunTest, HelpVersionAndSchemaDoc) {
  EXPECT_EQ(simrun("--help").exit_code, 0);
  const SimrunOutput version = simrun("--version");
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_NE(version.out.find("simrun"), std::string::npos);
  const SimrunOutput doc = simrun("--schema-doc");
  EXPECT_EQ(doc.exit_code, 0);
  EXPECT_NE(doc.out.find("strategy.tp"), std::string::npos);
}

}  // namespace
