#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "strategy/schema.hpp"
#include "strategy/scenario.hpp"

using namespace tandem::strategy;

namespace {

const char* kCluster = R"(
cluster:
  gpu: a100-80gb
  nodes: 2
  gpus_per_node: 8
)";

std::string training_scenario(const std::string& strategy, const std::string& model = "preset: gpt-22b") {
  return std::string("name: t\nmodel:\n  ") + model + "\n" + kCluster + "strategy:\n" + strategy;
}

// Parses `yaml` expecting a ScenarioError with an error at `path`; returns that error.
ValidationError expect_error(const std::string& yaml, const std::string& path) {
  try {
    parse_scenario(yaml, std::filesystem::current_path());
  } catch (const ScenarioError& error) {
    for (const ValidationError& item : error.errors())
      if (item.path == path) {
        EXPECT_FALSE(item.expected.empty());
        EXPECT_NE(item.message().find(path), std::string::npos);
        return item;
      }
    ADD_FAILURE() << "no error at " << path << "; got:\n" << error.what();
    return {};
  }
  ADD_FAILURE() << "scenario was accepted, expected an error at " << path << ":\n" << yaml;
  return {};
}

}  // namespace

TEST(Scenario, EveryExampleScenarioLoads) {
  const std::filesystem::path folder = std::filesystem::path(TANDEM_SOURCE_DIR) / "scenarios";
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    if (entry.path().extension() != ".yaml") continue;
    SCOPED_TRACE(entry.path().string());
    EXPECT_NO_THROW(load_scenario(entry.path()));
    ++count;
  }
  EXPECT_GE(count, 6);
  // The built-in copies are the same files.
  for (const std::string& name : builtin_scenario_names()) EXPECT_NO_THROW(load_builtin_scenario(name));
}

TEST(Scenario, DefaultsComeFromTheSchemaAndPresets) {
  const Scenario s = parse_scenario(training_scenario("  tp: 8\n"), ".");
  ASSERT_TRUE(s.model && s.strategy);
  EXPECT_EQ(s.model->layers, 48);
  EXPECT_EQ(s.model->hidden, 6144);
  EXPECT_EQ(s.model->kv_heads, 64);             // default: heads
  EXPECT_EQ(s.model->ffn_hidden, 4 * 6144);     // gelu default
  EXPECT_EQ(s.strategy->dp, 2);                 // auto = 16 / 8
  EXPECT_EQ(s.strategy->global_batch, 2);       // micro_batch * dp
  EXPECT_EQ(s.strategy->precision, Precision::Bf16);
  EXPECT_DOUBLE_EQ(s.strategy->grad_bucket_bytes, 25e6);
  EXPECT_EQ(s.cluster.nic.count, 8);            // from the a100-80gb profile
  EXPECT_DOUBLE_EQ(s.cluster.nic.bandwidth_bytes_per_s, 25e9);
  EXPECT_EQ(s.cluster.node_groups.size(), 1u);
  EXPECT_EQ(s.training.steps, 100);
}

TEST(Scenario, SwigluFfnDefaultRoundsToMultipleOf256) {
  const Scenario s = parse_scenario(
      training_scenario("  tp: 1\n", "{hidden: 4096, layers: 2, heads: 32, vocab: 1000, seq_len: 128, activation: swiglu}"),
      ".");
  EXPECT_EQ(s.model->ffn_hidden, 11008);  // LLaMA-7B's value: 8/3*4096 = 10922.7 -> 11008
}

TEST(Scenario, ExplicitFieldsOverrideThePreset) {
  const Scenario s = parse_scenario(training_scenario("  tp: 1\n", "{preset: gpt3-175b, layers: 4}"), ".");
  EXPECT_EQ(s.model->layers, 4);
  EXPECT_EQ(s.model->hidden, 12288);
}

TEST(Scenario, CpuProfileDefaultsToFp32) {
  const Scenario s = parse_scenario(
      "model: {preset: tiny}\ncluster: {gpu: cpu, nodes: 1, gpus_per_node: 2, threads_per_rank: 1}\n", ".");
  EXPECT_EQ(s.strategy->precision, Precision::Fp32);
  EXPECT_EQ(s.strategy->dp, 2);
}

TEST(ScenarioErrors, MalformedYaml) { expect_error("model: [1, 2\n", "(yaml)"); }

TEST(ScenarioErrors, UnknownKeysNameTheValidOnes) {
  const ValidationError error = expect_error(training_scenario("  tp: 8\n  tensor_parallel: 2\n"),
                                             "strategy.tensor_parallel");
  EXPECT_NE(error.expected.find("tp"), std::string::npos);
  expect_error(training_scenario("  tp: 8\n") + "colour: blue\n", "colour");
  expect_error(training_scenario("  tp: 8\n", "{preset: gpt-22b, hiden: 3}"), "model.hiden");
}

TEST(ScenarioErrors, WrongTypesAndUnits) {
  expect_error(training_scenario("  tp: eight\n"), "strategy.tp");
  expect_error(training_scenario("  tp: 8\n  grad_bucket: 25\n"), "strategy.grad_bucket");
  expect_error(training_scenario("  tp: 8\n  sequence_parallel: yes please\n"), "strategy.sequence_parallel");
  expect_error(training_scenario("  tp: 8\n  schedule: zigzag\n"), "strategy.schedule");
  expect_error(training_scenario("  tp: 0\n"), "strategy.tp");
  expect_error(std::string("model: {preset: tiny}\ncluster: {gpu: a100-80gb, nic: {bandwidth: 200}}\n"),
               "cluster.nic.bandwidth");
  expect_error(std::string("model: {preset: tiny}\ncluster: {gpu: a100-80gb, intra_node: {latency: 3}}\n"),
               "cluster.intra_node.latency");
}

TEST(ScenarioErrors, MissingSections) {
  expect_error("model: {preset: tiny}\n", "cluster");
  expect_error("cluster: {gpu: a100-80gb}\n", "model");
  expect_error("model: {preset: tiny}\ncluster: {gpu: a100-80gb, nodes: 2}\ncollective: {kind: all-reduce, sizes: [1MiB]}\n",
               "collective");
  expect_error("cluster: {gpu: a100-80gb}\nmodel: {layers: 2, hidden: 64, heads: 4, vocab: 10}\n", "model.seq_len");
  expect_error("cluster: {gpu: a100-80gb, nodes: 2}\ncollective: {kind: all-reduce}\n", "collective.sizes");
}

TEST(ScenarioErrors, UnknownProfileListsBuiltIns) {
  const ValidationError error = expect_error("model: {preset: tiny}\ncluster: {gpu: v100}\n", "cluster.gpu");
  EXPECT_NE(error.expected.find("h100-80gb"), std::string::npos);
}

TEST(ScenarioErrors, ImpossibleParallelism) {
  // 16 GPUs: dp*tp*pp*cp must equal 16.
  expect_error(training_scenario("  tp: 8\n  dp: 4\n"), "strategy.dp");
  expect_error(training_scenario("  tp: 3\n"), "strategy.dp");
  // heads (64) not divisible by tp 16? 64 % 16 == 0; use a 24-head model.
  expect_error(training_scenario("  tp: 16\n", "{hidden: 2304, heads: 24, layers: 24, vocab: 51200, seq_len: 2048}"),
               "strategy.tp");
  expect_error(training_scenario("  tp: 4\n", "{preset: llama3-8b, kv_heads: 2}"), "strategy.tp");
  expect_error(training_scenario("  tp: 1\n  pp: 16\n", "{preset: gpt-22b, layers: 40}"), "strategy.pp");
  expect_error(training_scenario("  tp: 8\n  micro_batch: 2\n  global_batch: 6\n"), "strategy.global_batch");
  expect_error(training_scenario("  tp: 8\n  schedule: interleaved\n  virtual_stages: 2\n"), "strategy.schedule");
  expect_error(training_scenario("  tp: 8\n  virtual_stages: 2\n"), "strategy.virtual_stages");
  expect_error(training_scenario("  tp: 8\n  precision: fp8\n"), "strategy.precision");
  expect_error(training_scenario("  tp: 8\n", "{preset: gpt-22b, heads: 40}"), "model.hidden");
  expect_error(training_scenario("  tp: 1\n", "{preset: gpt-22b, kv_heads: 48}"), "model.kv_heads");
}

TEST(ScenarioErrors, NodeGroupsMustCoverTheCluster) {
  expect_error(std::string("model: {preset: tiny}\ncluster:\n  gpu: a100-80gb\n  nodes: 4\n  node_groups:\n"
                           "    - {nodes: 1}\n    - {nodes: 2, nic: {count: 2}}\n"),
               "cluster.node_groups");
  expect_error(std::string("model: {preset: tiny}\ncluster:\n  gpu: a100-80gb\n  nodes: 4\n  node_groups:\n"
                           "    - {nodes: 4, nics: 2}\n"),
               "cluster.node_groups[0].nics");
}

TEST(ScenarioErrors, OptimizerArgumentsAreChecked) {
  expect_error(training_scenario("  tp: 8\n  optimizer: adamw\n  optimizer_args: {momentum: 0.9}\n"),
               "strategy.optimizer_args.momentum");
  expect_error(training_scenario("  tp: 8\n  optimizer: sgd\n"), "strategy.optimizer");
}

TEST(ScenarioErrors, ManyErrorsAreReportedTogether) {
  try {
    parse_scenario(training_scenario("  tp: eight\n  pp: zero\n  zero: 5\n"), ".");
    FAIL();
  } catch (const ScenarioError& error) {
    EXPECT_EQ(error.errors().size(), 3u) << error.what();
  }
}

TEST(Scenario, NodeGroupsOverrideTheClusterLinks) {
  const Scenario s = parse_scenario(std::string("model: {preset: tiny}\ncluster:\n  gpu: a100-80gb\n  nodes: 4\n"
                                                "  node_groups:\n    - {nodes: 3}\n    - {nodes: 1, nic: {count: 2, bandwidth: 100Gbps}}\n"),
                                    ".");
  ASSERT_EQ(s.cluster.node_groups.size(), 2u);
  EXPECT_EQ(s.cluster.node_groups[0].nic.count, 8);
  EXPECT_EQ(s.cluster.node_groups[1].nic.count, 2);
  EXPECT_DOUBLE_EQ(s.cluster.node_groups[1].nic.bandwidth_bytes_per_s, 12.5e9);
  EXPECT_DOUBLE_EQ(s.cluster.node_groups[1].nic.latency_s, s.cluster.nic.latency_s);
  EXPECT_EQ(s.cluster.group_index_of_node(3), 1);
  EXPECT_EQ(s.cluster.group_index_of_node(2), 0);
}

TEST(Scenario, OverridesAndSweeps) {
  const Scenario base = parse_scenario(training_scenario("  tp: 8\n"), ".");
  const YAML::Node changed = with_override(base.document, "strategy.tp", "4");
  const Scenario s = scenario_from_document(changed, ".");
  EXPECT_EQ(s.strategy->tp, 4);
  EXPECT_EQ(s.strategy->dp, 4);
  // A key absent from the document is created.
  const Scenario t = scenario_from_document(with_override(base.document, "cluster.nic.count", "2"), ".");
  EXPECT_EQ(t.cluster.nic.count, 2);
  EXPECT_THROW(with_override(base.document, "strategy.tpp", "4"), ScenarioError);
  EXPECT_THROW(with_override(base.document, "strategy.tp", "x"), ScenarioError);

  const SweepAxis axis = parse_sweep_argument("strategy.tp=2,4,8");
  EXPECT_EQ(axis.key, "strategy.tp");
  EXPECT_EQ(axis.values, (std::vector<std::string>{"2", "4", "8"}));
  EXPECT_THROW(parse_sweep_argument("strategy.tp"), ScenarioError);
  EXPECT_THROW(parse_sweep_argument("strategy.schedule=1f1b,zigzag"), ScenarioError);
  const auto points = sweep_points({axis, parse_sweep_argument("strategy.micro_batch=1,2")});
  ASSERT_EQ(points.size(), 6u);
  EXPECT_EQ(points[5][0].second, "8");
  EXPECT_EQ(points[5][1].second, "2");

  expect_error(training_scenario("  tp: 8\n") + "sweep: {strategy.tp: [2, x]}\n", "sweep.strategy.tp[1]");
  expect_error(training_scenario("  tp: 8\n") + "sweep: {strategy.nope: [2]}\n", "sweep.strategy.nope");
}

TEST(Scenario, RelativePathsResolveAgainstTheScenarioFile) {
  const Scenario s = parse_scenario(std::string("model: {preset: tiny}\ncluster: {gpu: cpu}\n"
                                                "training: {data: corpus.txt, checkpoint_dir: ck}\n"),
                                    "/some/where");
  EXPECT_EQ(s.training.data, "/some/where/corpus.txt");
  EXPECT_EQ(s.training.checkpoint_dir, std::filesystem::path("/some/where/ck"));
}

TEST(Schema, ReferenceDocumentIsUpToDate) {
  const std::filesystem::path path = std::filesystem::path(TANDEM_SOURCE_DIR) / "docs" / "scenario-reference.md";
  std::ifstream in(path);
  std::stringstream committed;
  committed << in.rdbuf();
  const std::string generated = scenario_reference_markdown();
  if (committed.str() != generated) {
    const std::filesystem::path fresh = std::filesystem::path(TANDEM_BINARY_DIR) / "scenario-reference.md";
    std::ofstream(fresh) << generated;
    FAIL() << "docs/scenario-reference.md is out of date with the schema; regenerate it:\n  cp " << fresh
           << " " << path;
  }
}

TEST(Schema, EveryKeyHasDocumentationAndValidDefaults) {
  for (const SchemaKey& key : scenario_schema()) {
    SCOPED_TRACE(key.path);
    EXPECT_FALSE(key.doc.empty());
    if (key.type == ValueType::Choice) {
      EXPECT_FALSE(key.choices.empty());
      if (!key.default_text.empty()) {
        EXPECT_TRUE(check_value(key, YAML::Node(key.default_text), key.path).empty());
      }
    }
  }
}
