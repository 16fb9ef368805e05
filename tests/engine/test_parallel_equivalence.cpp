// Parallel equivalence: the same model, data and seed trained with dp·tp·pp ∈ {1, 2, 4} in every
// combination — and with sequence parallelism, ZeRO-1/2, GPipe, tied embeddings across stages,
// GQA/RoPE/SwiGLU and full recomputation — gives the losses of one process (relative difference
// ≤ 1e-4 at each of 20 steps). Every run is `engine train` under mpirun (oversubscribed), so this
// also checks that all ranks agree and rank 0 reports.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "tests/engine/engine_test_support.hpp"

namespace tandem::engine {
namespace {

using test::TinyModel;
using test::TinyRun;

struct Layout {
  int dp = 1, tp = 1, pp = 1;
  std::map<std::string, std::string> extra;
  std::string name() const {
    std::string text = "dp" + std::to_string(dp) + " tp" + std::to_string(tp) + " pp" + std::to_string(pp);
    for (const auto& [key, value] : extra) text += " " + key + "=" + value;
    return text;
  }
};

// A model every layout of up to 4 ranks can split: 4 layers, 4 heads, ffn and vocab divisible
// by 4; 16 sequences per step so that dp4 still has 2 micro-batches of 2 per pipeline.
TinyModel equivalence_model() {
  TinyModel m;
  m.layers = 4;
  m.hidden = 32;
  m.heads = 4;
  m.kv_heads = 4;
  m.ffn = 64;
  m.vocab = 64;
  m.seq_len = 16;
  return m;
}

std::vector<double> train_losses(const TinyModel& model, const Layout& layout, const std::string& dir) {
  TinyRun run;
  run.micro_batch = 2;
  run.global_batch = 16;
  run.steps = 20;
  run.lr = 3e-3;
  run.gpus = layout.dp * layout.tp * layout.pp;
  run.strategy["tp"] = std::to_string(layout.tp);
  run.strategy["pp"] = std::to_string(layout.pp);
  run.strategy["dp"] = std::to_string(layout.dp);
  for (const auto& [key, value] : layout.extra) run.strategy[key] = value;
  const std::string path = dir + "/scenario-" + std::to_string(std::hash<std::string>{}(layout.name())) + ".yaml";
  test::write_file(path, test::scenario_yaml(model, run));
  const test::CommandResult result =
      test::run_command(test::engine_command({"train", path, "--json", "--no-db", "--quiet"}, run.gpus));
  EXPECT_EQ(result.exit_code, 0) << layout.name() << "\n" << result.err;
  if (result.exit_code != 0) return {};
  return test::losses_of(result.out);
}

void expect_same_losses(const std::vector<double>& expected, const std::vector<double>& actual, const std::string& name) {
  ASSERT_EQ(actual.size(), expected.size()) << name;
  double worst = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double relative = std::abs(actual[i] - expected[i]) / std::abs(expected[i]);
    worst = std::max(worst, relative);
    EXPECT_LE(relative, 1e-4) << name << ": step " << i + 1 << " loss " << actual[i] << ", one process "
                              << expected[i];
  }
  std::printf("  %-40s worst relative difference %.2e over %zu steps\n", name.c_str(), worst, expected.size());
}

void check_layouts(const TinyModel& model, const std::vector<Layout>& layouts, const std::string& tag) {
  const std::string dir = test::temp_dir("parallel-" + tag).string();
  const std::vector<double> reference = train_losses(model, Layout{}, dir);
  ASSERT_EQ(reference.size(), 20u);
  EXPECT_LT(reference.back(), reference.front()) << "the model should learn something in 20 steps";
  for (const Layout& layout : layouts) expect_same_losses(reference, train_losses(model, layout, dir), layout.name());
}

TEST(EngineParallelEquivalence, EveryLayoutOfTwoAndFourRanks) {
  check_layouts(equivalence_model(),
                {{2, 1, 1, {}}, {1, 2, 1, {}}, {1, 1, 2, {}}, {4, 1, 1, {}}, {1, 4, 1, {}}, {1, 1, 4, {}},
                 {2, 2, 1, {}}, {2, 1, 2, {}}, {1, 2, 2, {}}},
                "layouts");
}

TEST(EngineParallelEquivalence, SequenceParallelZeroAndSchedules) {
  check_layouts(equivalence_model(),
                {{1, 2, 1, {{"sequence_parallel", "true"}}},
                 {2, 2, 1, {{"sequence_parallel", "true"}, {"zero", "1"}}},
                 {2, 1, 1, {{"zero", "1"}, {"grad_bucket", "20KB"}}},
                 {2, 1, 2, {{"zero", "2"}}},
                 {1, 1, 2, {{"schedule", "gpipe"}}},
                 {2, 1, 1, {{"overlap_grad_reduce", "false"}, {"grad_bucket", "10KB"}}},
                 {1, 2, 1, {{"overlap_tp_input_grad", "false"}}},
                 {1, 2, 2, {{"recompute", "full"}}}},
                "strategies");
}

TEST(EngineParallelEquivalence, LlamaStyleModelAndTiedEmbeddings) {
  TinyModel llama = equivalence_model();
  llama.position = "rope";
  llama.norm = "rmsnorm";
  llama.activation = "swiglu";
  llama.kv_heads = 2;
  check_layouts(llama, {{1, 2, 2, {}}, {2, 2, 1, {{"sequence_parallel", "true"}}}}, "llama");
  TinyModel tied = equivalence_model();
  tied.tied = true;
  check_layouts(tied, {{1, 1, 2, {}}, {1, 2, 2, {}}, {2, 2, 1, {}}, {2, 1, 2, {}}}, "tied");
}

// engine sample puts a model back together from any layout's shards: with lr = 0 the weights stay
// at their (layout-independent) initial values, so a checkpoint written by tp2·pp2 and one written
// by one process must give the same greedy text bit for bit.
TEST(EngineParallelEquivalence, SampleReassemblesTheModelFromTensorAndPipelineShards) {
  const std::string dir = test::temp_dir("sample-shards").string();
  std::string corpus;
  for (int i = 0; i < 300; ++i) corpus += "pipeline and tensor shards. ";
  test::write_file(dir + "/corpus.txt", corpus);
  TinyModel model = equivalence_model();
  model.vocab = 256;
  std::string text[2];
  for (int layout = 0; layout < 2; ++layout) {
    TinyRun run;
    run.steps = 1;
    run.lr = 0;
    run.micro_batch = 2;
    run.global_batch = 4;
    run.gpus = layout == 0 ? 1 : 4;
    run.strategy["tp"] = layout == 0 ? "1" : "2";
    run.strategy["pp"] = layout == 0 ? "1" : "2";
    const std::string path = dir + "/scenario-" + std::to_string(layout) + ".yaml";
    test::write_file(path, test::scenario_yaml(model, run));
    const std::string checkpoints = dir + "/ckpt-" + std::to_string(layout);
    const auto trained = test::run_command(test::engine_command(
        {"train", path, "--no-db", "--quiet", "--data", dir + "/corpus.txt", "--checkpoint-dir", checkpoints,
         "--checkpoint-every", "1"},
        run.gpus));
    ASSERT_EQ(trained.exit_code, 0) << trained.err;
    const auto sampled = test::run_command(test::engine_command(
        {"sample", "--checkpoint", checkpoints, "--prompt", "pipeline", "--tokens", "24", "--temperature", "0"}));
    ASSERT_EQ(sampled.exit_code, 0) << sampled.err;
    text[layout] = sampled.out;
  }
  EXPECT_EQ(text[0], text[1]);
}

}  // namespace
}  // namespace tandem::engine
