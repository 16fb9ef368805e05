// The `engine` command line: errors a user can cause end with a non-zero exit and a message naming
// the field; --json prints one JSON object with the documented fields; engine sample generates
// text from a byte-level model's checkpoint.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "report/run_store.hpp"
#include "strategy/program.hpp"
#include "strategy/scenario.hpp"
#include "tests/engine/engine_test_support.hpp"

namespace tandem::engine {
namespace {

using test::engine_command;
using test::run_command;

std::string tiny_file(const std::string& dir, test::TinyRun run = {}, test::TinyModel model = {}) {
  const std::string path = dir + "/tiny-" + std::to_string(std::hash<std::string>{}(test::scenario_yaml(model, run))) + ".yaml";
  test::write_file(path, test::scenario_yaml(model, run));
  return path;
}

TEST(EngineCli, VersionAndHelp) {
  const auto version = run_command(engine_command({"--version"}));
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_NE(version.out.find("engine (Tandem)"), std::string::npos);
  const auto help = run_command(engine_command({"train", "--help"}));
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--resume"), std::string::npos);
}

TEST(EngineCli, BadScenarioNamesTheField) {
  const std::string dir = test::temp_dir("cli-bad").string();
  test::write_file(dir + "/bad.yaml", "name: bad\nmodel:\n  preset: tiny\n  layerz: 3\ncluster:\n  gpu: cpu\n");
  const auto result = run_command(engine_command({"train", dir + "/bad.yaml"}));
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("model.layerz"), std::string::npos) << result.err;
}

TEST(EngineCli, UnsupportedStrategyIsRefusedUpFront) {
  const std::string dir = test::temp_dir("cli-unsupported").string();
  test::TinyRun run;
  run.gpus = 1;
  run.strategy["cp"] = "1";
  const std::string path = tiny_file(dir, run);
  const auto zero3 = run_command(engine_command({"train", path, "--set", "strategy.zero=3", "--no-db"}));
  EXPECT_EQ(zero3.exit_code, 2);
  EXPECT_NE(zero3.err.find("strategy.zero"), std::string::npos) << zero3.err;
  const auto bf16 = run_command(engine_command({"train", path, "--set", "strategy.precision=bf16", "--no-db"}));
  EXPECT_EQ(bf16.exit_code, 2);
  EXPECT_NE(bf16.err.find("strategy.precision"), std::string::npos) << bf16.err;
}

TEST(EngineCli, AGpuScenarioWithoutAGpuSaysNoCudaDevice) {
  const std::string dir = test::temp_dir("cli-gpu").string();
  const auto result = run_command(engine_command({"train", tiny_file(dir), "--no-db", "--set", "cluster.gpu=h100-80gb",
                                                  "--set", "strategy.precision=fp32"}));
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("no CUDA device found"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("cluster.gpu"), std::string::npos) << result.err;
}

TEST(EngineCli, WrongWorldSizeIsRefused) {
  const std::string dir = test::temp_dir("cli-world").string();
  test::TinyRun run;
  run.gpus = 2;
  const auto result = run_command(engine_command({"train", tiny_file(dir, run), "--no-db"}));
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("cluster.nodes x cluster.gpus_per_node"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("mpirun -np 2"), std::string::npos) << result.err;
}

TEST(EngineCli, BadOverrideNamesTheField) {
  const auto result = run_command(engine_command({"train", "--steps", "0", "--no-db"}));
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("training.steps"), std::string::npos) << result.err;
  const auto data = run_command(engine_command({"train", "--data", "/nonexistent/corpus.txt", "--no-db"}));
  EXPECT_EQ(data.exit_code, 2);
  EXPECT_NE(data.err.find("training.data"), std::string::npos) << data.err;
}

TEST(EngineCli, JsonHasTheRequiredFieldsAndTheRunStoreGetsTheRun) {
  const std::string dir = test::temp_dir("cli-json").string();
  test::TinyRun run;
  run.steps = 5;
  std::string path = tiny_file(dir, run);
  // A predicted step time from the twin is reported beside the measured one.
  test::write_file(path, test::read_file(path) + "predicted:\n  step_time_s: 0.01\n");
  const auto result = run_command(engine_command(
      {"train", path, "--json", "--db", dir + "/runs.db", "--trace", dir + "/trace.json", "--eval-every", "2"}));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const nlohmann::json j = nlohmann::json::parse(result.out);  // only one JSON object on stdout
  EXPECT_EQ(j.at("steps"), 5);
  EXPECT_EQ(j.at("losses").size(), 5u);
  EXPECT_TRUE(j.at("final_val_loss").is_number());
  ASSERT_EQ(j.at("validation_losses").size(), 3u);  // steps 2 and 4 (--eval-every 2) and the end
  EXPECT_EQ(j.at("validation_losses")[0].at("step"), 2);
  EXPECT_EQ(j.at("validation_losses")[2].at("step"), 5);
  EXPECT_GT(j.at("step_time_s").get<double>(), 0);
  EXPECT_GT(j.at("tokens_per_s").get<double>(), 0);
  EXPECT_GT(j.at("entropy_nats_per_token").get<double>(), 0);
  EXPECT_EQ(j.at("predicted_step_time_s").get<double>(), 0.01);
  EXPECT_FALSE(j.at("run_id").get<std::string>().empty());
  EXPECT_NE(result.err.find("twin predicted"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("step 5/5"), std::string::npos) << result.err;
  // The run store holds the run, its metrics and every step's per-op trace.
  const report::RunStore store = report::RunStore::open(dir + "/runs.db");
  const std::string id = j.at("run_id").get<std::string>();
  const report::RunRecord record = store.load_run(id);
  EXPECT_EQ(record.status, report::RunStatus::Finished);
  EXPECT_EQ(record.info.kind, report::RunKind::Training);
  EXPECT_EQ(store.load_metrics(id, "loss").size(), 5u);
  EXPECT_EQ(store.trace_steps(id).size(), 5u);
  // Every op of the program is recorded once per step, under its program id.
  const strategy::Program program = strategy::build_program(strategy::load_scenario(path));
  const report::Trace step_trace = store.load_trace(id, 3);
  ASSERT_EQ(step_trace.records.size(), program.stage_ops[0].size());
  std::set<std::uint32_t> ids;
  for (const report::TraceRecord& r : step_trace.records) {
    ids.insert(r.op_id);
    EXPECT_EQ(r.code, program.stage_ops[0][r.op_id].code);
    EXPECT_LE(r.start_s, r.end_s);
  }
  EXPECT_EQ(ids.size(), program.stage_ops[0].size());
  const nlohmann::json trace = nlohmann::json::parse(test::read_file(dir + "/trace.json"));
  EXPECT_GT(trace.at("traceEvents").size(), 5u * 30u);
}

TEST(EngineCli, NonFiniteLossStopsWithTheStep) {
  const std::string dir = test::temp_dir("cli-nan").string();
  test::TinyRun run;
  run.steps = 10;
  run.lr = 1e30;
  run.grad_clip = 0;
  const auto result = run_command(engine_command({"train", tiny_file(dir, run), "--no-db", "--json",
                                                  "--checkpoint-dir", dir + "/ckpt", "--checkpoint-every", "1"}));
  EXPECT_EQ(result.exit_code, 3) << result.err;
  // Step 1 runs at the initial weights; the absurd update makes step 2's loss non-finite.
  EXPECT_NE(result.err.find("at step 2"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("the last good checkpoint, step 1, is intact"), std::string::npos) << result.err;
  EXPECT_TRUE(result.out.empty());
  EXPECT_FALSE(std::filesystem::exists(dir + "/ckpt/step-00000002"));
  const auto sampled = run_command(engine_command({"sample", "--checkpoint", dir + "/ckpt", "--prompt", "1 2 3",
                                                   "--tokens", "4"}));
  EXPECT_EQ(sampled.exit_code, 0) << "the step-1 checkpoint is good\n" << sampled.err;
}

TEST(EngineCli, SampleGeneratesTextFromAByteLevelModel) {
  const std::string dir = test::temp_dir("cli-sample").string();
  std::string corpus;
  for (int i = 0; i < 400; ++i) corpus += "the cat sat on the mat. ";
  test::write_file(dir + "/corpus.txt", corpus);
  test::TinyModel model;
  model.vocab = 256;
  model.seq_len = 16;
  test::TinyRun run;
  run.steps = 30;
  run.lr = 1e-2;
  run.micro_batch = 8;
  run.global_batch = 8;
  const auto trained = run_command(engine_command({"train", tiny_file(dir, run, model), "--no-db", "--quiet",
                                                   "--data", dir + "/corpus.txt", "--checkpoint-dir", dir + "/ckpt",
                                                   "--checkpoint-every", "30"}));
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  const auto sampled = run_command(engine_command(
      {"sample", "--checkpoint", dir + "/ckpt", "--prompt", "the cat", "--tokens", "20", "--temperature", "0"}));
  ASSERT_EQ(sampled.exit_code, 0) << sampled.err;
  EXPECT_EQ(sampled.out.rfind("the cat", 0), 0u) << sampled.out;
  EXPECT_EQ(sampled.out.size(), std::string("the cat").size() + 20 + 1) << sampled.out;
  const auto missing = run_command(engine_command({"sample", "--checkpoint", dir + "/nothing", "--prompt", "x"}));
  EXPECT_EQ(missing.exit_code, 2);
}

}  // namespace
}  // namespace tandem::engine
