// Memory model against ZeRO (Rajbhandari et al.) and Korthikanti et al.
#include <gtest/gtest.h>

#include "strategy/memory_model.hpp"
#include "strategy/model_formulas.hpp"
#include "strategy/scenario.hpp"

using namespace tandem::strategy;

TEST(Memory, ZeroWorkedExample) {
  // Psi = 7.5B, N_d = 64, K = 12: 120 GB, 31.4 GB, 16.6 GB, 1.88 GB.
  EXPECT_NEAR(zero_model_state_bytes(7.5e9, 12, 64, 0) / 1e9, 120, 0.05);
  EXPECT_NEAR(zero_model_state_bytes(7.5e9, 12, 64, 1) / 1e9, 31.4, 0.05);
  EXPECT_NEAR(zero_model_state_bytes(7.5e9, 12, 64, 2) / 1e9, 16.6, 0.05);
  EXPECT_NEAR(zero_model_state_bytes(7.5e9, 12, 64, 3) / 1e9, 1.88, 0.005);
}

TEST(Memory, ModelStateFollowsZeroForEveryStage) {
  for (int zero = 0; zero <= 3; ++zero) {
    const Scenario s = parse_scenario(
        "model: {layers: 36, hidden: 4096, heads: 32, vocab: 51200, seq_len: 2048, tied_embeddings: true}\n"
        "cluster: {gpu: a100-80gb, nodes: 8, gpus_per_node: 8}\n"
        "strategy: {zero: " + std::to_string(zero) + ", global_batch: 64, optimizer: adamw}\n",
        ".");
    const MemoryEstimate memory = estimate_memory(s);
    const StageMemory& stage = memory.worst();
    const double psi = static_cast<double>(parameter_count(*s.model));
    const double model_state = stage.weights + stage.gradients + stage.optimizer;
    EXPECT_NEAR(model_state / zero_model_state_bytes(psi, 12, 64, zero), 1.0, 1e-12) << "zero " << zero;
  }
}

TEST(Memory, InterleavedFirstStageHoldsKorthikantiFactor) {
  // GPT-3 175B on Selene: TP 8, PP 8, 3 virtual stages, SP + selective recompute.
  const Scenario s = load_scenario(std::string(TANDEM_SOURCE_DIR) + "/scenarios/gpt3-175b-selene.yaml");
  const MemoryEstimate memory = estimate_memory(s);
  const StageMemory& first = memory.stages.front();
  const double per_layer = korthikanti_activation_bytes(2048, 1, 12288, 96, 8, true, Recompute::Selective);
  const double p = 8, v = 3, L = 96;
  EXPECT_DOUBLE_EQ(first.activations, per_layer * L * (1 + (p - 1) / (p * v)));
  EXPECT_TRUE(memory.fits);
}

TEST(Memory, OneFOneBFirstStageHoldsPMicroBatches) {
  const Scenario s = parse_scenario(
      "model: {preset: gpt3-175b, dropout: 0.1}\ncluster: {gpu: a100-80gb, nodes: 8, gpus_per_node: 8}\n"
      "strategy: {tp: 8, pp: 8, global_batch: 64, recompute: full}\n",
      ".");
  const MemoryEstimate memory = estimate_memory(s);
  EXPECT_EQ(memory.stages.front().in_flight_micro_batches, 8);
  EXPECT_EQ(memory.stages.back().in_flight_micro_batches, 1);
  // Full recompute keeps only each layer's input: 2sbh per layer, L/p layers, p micro-batches.
  EXPECT_DOUBLE_EQ(memory.stages.front().activations, 2.0 * 2048 * 12288 * 96);
}

TEST(Memory, TooLargeIsReportedNotRejected) {
  const Scenario s = parse_scenario(
      "model: {preset: gpt3-175b}\ncluster: {gpu: a100-80gb, nodes: 1, gpus_per_node: 8}\n"
      "strategy: {tp: 8, global_batch: 8}\n",
      ".");
  const MemoryEstimate memory = estimate_memory(s);
  EXPECT_FALSE(memory.fits);
  EXPECT_GT(memory.worst().total(), memory.capacity_bytes);
  EXPECT_DOUBLE_EQ(memory.capacity_bytes, 80.0 * 1024 * 1024 * 1024);
}
