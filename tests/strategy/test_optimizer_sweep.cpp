// scenarios/optimizers-llama3-8b-h100.yaml (Llama-3-8B, 32 x H100, TP 8, DP 4, bf16, no ZeRO)
// sweeps strategy.optimizer. What the twin charges each optimizer — optimizer state per GPU in the
// memory model, the FLOPs of the OptimizerStep op and the bytes of MuonBP's / Muon's
// OptimizerGather — against the per-tensor formulas of OPTIMIZERS.md worked out here from the
// model's shapes alone (nothing below calls the optimizer catalog's cost functions):
//
//   local shards at TP 8 (GQA: 8 KV heads of 128; SwiGLU gate+up fused; vocabulary-parallel):
//     qkv (4096 + 2*1024)/8 x 4096 = 768 x 4096     attention out 4096 x 4096/8 = 4096 x 512
//     up 2*14336/8 x 4096 = 3584 x 4096              down 4096 x 14336/8 = 4096 x 1792
//     embedding and head 128256/8 x 4096 each; two RMSNorm gains per layer + the final one (4096)
//   AdamW 8 B/param, Lion 4, Adan 16; Muon 4 on hidden matrices, AdamW (8) elsewhere;
//   APOLLO / GaLore: m, v of the r x longer projected gradient and the r x shorter projection in
//     fp32, r = hidden/4 = 1024 capped at the shard's shorter side; APOLLO-Mini r = 1;
//   SMMF: the most-square a x b reshape of every tensor, 2(a + b) fp32 factors + 1 sign bit/param.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "strategy/memory_model.hpp"
#include "strategy/program.hpp"
#include "strategy/scenario.hpp"

using namespace tandem::strategy;

namespace {

struct Shard {
  double rows, cols;              // local (TP 8)
  double full_rows, full_cols;    // before TP
  bool hidden;                    // attention / MLP weight matrix
  bool vector;
  double count;                   // how many such tensors one GPU holds
};

std::vector<Shard> llama3_8b_tp8_shards() {
  const double layers = 32, h = 4096, kv = 8 * 128, ffn = 14336, vocab = 128256, tp = 8;
  return {
      {(h + 2 * kv) / tp, h, h + 2 * kv, h, true, false, layers},  // attn.qkv
      {h, h / tp, h, h, true, false, layers},                      // attn.out
      {2 * ffn / tp, h, 2 * ffn, h, true, false, layers},          // mlp.up (gate | up)
      {h, ffn / tp, h, ffn, true, false, layers},                  // mlp.down
      {vocab / tp, h, vocab, h, false, false, 2},                  // embedding, head
      {h, 1, h, 1, false, true, 2 * layers + 1},                   // RMSNorm gains
  };
}

// The most-square factorisation a x b (a >= b) of n, by trial division from sqrt(n) down.
std::pair<double, double> most_square(double n) {
  for (auto b = static_cast<long long>(std::floor(std::sqrt(n))); b >= 1; --b) {
    if (static_cast<long long>(n) % b == 0) return {n / static_cast<double>(b), static_cast<double>(b)};
  }
  return {n, 1};
}

double expected_state_bytes(const std::string& optimizer) {
  double total = 0;
  for (const Shard& t : llama3_8b_tp8_shards()) {
    const double n = t.rows * t.cols;
    double bytes = 8 * n;  // AdamW (Muon's and the low-rank optimizers' fallback)
    if (optimizer == "lion") bytes = 4 * n;
    if (optimizer == "adan") bytes = 16 * n;
    if ((optimizer == "muon" || optimizer == "muonbp") && t.hidden) bytes = 4 * n;
    if ((optimizer == "apollo" || optimizer == "galore" || optimizer == "apollo-mini") && t.hidden) {
      const double shorter = std::min(t.rows, t.cols), longer = std::max(t.rows, t.cols);
      const double r = optimizer == "apollo-mini" ? 1 : std::min(std::min(t.full_rows, t.full_cols) / 4, shorter);
      bytes = 4 * (2 * r * longer + r * shorter);
    }
    if (optimizer == "smmf") {
      const auto [a, b] = most_square(n);
      bytes = 4 * 2 * (a + b) + std::ceil(n / 8);
    }
    total += t.count * bytes;
  }
  return total;
}

double local_parameters() {
  double total = 0;
  for (const Shard& t : llama3_8b_tp8_shards()) total += t.count * t.rows * t.cols;
  return total;
}

// Newton-Schulz (OPTIMIZERS.md) on an r x c matrix, r <= c: X /= ||X||_F (3rc: square, add,
// scale), then 5 times A = X X^T (2r^2c), A A (2r^3), B = bA + cA^2 (3r^2), B X (2r^2c), aX + BX (2rc).
double ns5_flops(double rows, double cols) {
  const double r = std::min(rows, cols), c = std::max(rows, cols);
  return 3 * r * c + 5 * (2 * r * r * c + 2 * r * r * r + 3 * r * r + 2 * r * r * c + 2 * r * c);
}

const std::string kScenario = std::string(TANDEM_SOURCE_DIR) + "/scenarios/optimizers-llama3-8b-h100.yaml";

Scenario with_optimizer(const std::string& optimizer) {
  const Scenario base = load_scenario(kScenario);
  return scenario_from_document(with_override(base.document, "strategy.optimizer", optimizer), base.base_dir);
}

const Op* find_op(const Program& program, OpCode code) {
  for (const Op& op : program.stage_ops.at(0))
    if (op.code == code) return &op;
  return nullptr;
}

}  // namespace

TEST(OptimizerSweep, TheExampleSweepsEveryOptimizerTheIssueAsksFor) {
  const Scenario s = load_scenario(kScenario);
  ASSERT_EQ(s.sweep.size(), 1u);
  EXPECT_EQ(s.sweep[0].key, "strategy.optimizer");
  EXPECT_EQ(s.sweep[0].values, (std::vector<std::string>{"adamw", "lion", "adan", "muon", "muonbp", "apollo",
                                                          "apollo-mini", "galore", "smmf"}));
  ASSERT_TRUE(s.strategy);
  EXPECT_EQ(s.strategy->tp, 8);
  EXPECT_EQ(s.strategy->dp, 4);
  EXPECT_EQ(s.strategy->zero, 0);
}

TEST(OptimizerSweep, StatePerGpuFollowsEachOptimizersFormula) {
  const double params = local_parameters();
  std::map<std::string, double> state;
  for (const std::string optimizer :
       {"adamw", "lion", "adan", "muon", "muonbp", "apollo", "apollo-mini", "galore", "smmf"}) {
    SCOPED_TRACE(optimizer);
    const MemoryEstimate memory = estimate_memory(with_optimizer(optimizer));
    ASSERT_EQ(memory.stages.size(), 1u);
    const StageMemory& stage = memory.stages[0];
    EXPECT_DOUBLE_EQ(stage.parameters, params);
    EXPECT_DOUBLE_EQ(stage.weights, 2 * params);  // bf16
    // bf16 training keeps fp32 master weights next to the optimizer's own state.
    state[optimizer] = stage.optimizer - 4 * params;
    EXPECT_NEAR(state[optimizer] / expected_state_bytes(optimizer), 1.0, 1e-12);
  }
  // Worked values (GiB = 2^30 B): AdamW 7.48, Adan 14.96, Lion 3.74, Muon 4.23, APOLLO 4.99 (the
  // qkv and attention-out shards are narrower than r = 1024, so they are not compressed), SMMF 0.12.
  EXPECT_NEAR(params, 1.004e9, 0.001e9);
  EXPECT_NEAR(state["adamw"] / (1 << 30), 7.48, 0.01);
  EXPECT_NEAR(state["muon"] / (1 << 30), 4.23, 0.01);
  EXPECT_NEAR(state["apollo"] / (1 << 30), 4.99, 0.01);
  EXPECT_NEAR(state["apollo-mini"] / (1 << 30), 0.98, 0.01);
  EXPECT_NEAR(state["smmf"] / (1 << 30), 0.12, 0.01);
  // The ordering a user reads off the sweep.
  EXPECT_LT(state["smmf"], state["apollo-mini"]);
  EXPECT_LT(state["apollo-mini"], state["lion"]);
  EXPECT_LT(state["lion"], state["muon"]);
  EXPECT_EQ(state["muon"], state["muonbp"]);
  EXPECT_LT(state["muon"], state["apollo"]);
  EXPECT_EQ(state["apollo"], state["galore"]);
  EXPECT_LT(state["apollo"], state["adamw"]);
  EXPECT_EQ(state["adan"], 2 * state["adamw"]);
}

TEST(OptimizerSweep, MuonPaysNewtonSchulzOnFullMatricesMuonBPOnShardsAndAGatherEveryFifthStep) {
  const std::vector<Shard> shards = llama3_8b_tp8_shards();
  double hidden_local = 0, other_local = 0, full_ns = 0, block_ns = 0, gathered = 0;
  for (const Shard& t : shards) {
    if (t.hidden) {
      hidden_local += t.count * t.rows * t.cols;
      full_ns += t.count * ns5_flops(t.full_rows, t.full_cols);  // every TP rank, the whole matrix
      block_ns += t.count * ns5_flops(t.rows, t.cols);           // its own shard only
      gathered += t.count * 4 * t.full_rows * t.full_cols;       // fp32 momentum, all-gather size
    } else {
      other_local += t.count * t.rows * t.cols;
    }
  }
  // Element-wise work: momentum, Nesterov, scale, decay, update (10 per element) on hidden
  // matrices; AdamW's 14 per element on the rest.
  const double elementwise = 10 * hidden_local + 14 * other_local;

  const Program muon = build_program(with_optimizer("muon"));
  const Op* muon_step = find_op(muon, OpCode::OptimizerStep);
  const Op* muon_gather = find_op(muon, OpCode::OptimizerGather);
  ASSERT_TRUE(muon_step && muon_gather);
  EXPECT_NEAR(muon_step->flops / (elementwise + full_ns), 1.0, 1e-12);
  EXPECT_NEAR(muon_gather->bytes / gathered, 1.0, 1e-12);

  const Program muonbp = build_program(with_optimizer("muonbp"));
  const Op* bp_step = find_op(muonbp, OpCode::OptimizerStep);
  const Op* bp_gather = find_op(muonbp, OpCode::OptimizerGather);
  ASSERT_TRUE(bp_step && bp_gather);
  EXPECT_NEAR(bp_step->flops / (elementwise + (full_ns + 4 * block_ns) / 5), 1.0, 1e-12);
  EXPECT_NEAR(bp_gather->bytes / (gathered / 5), 1.0, 1e-12);
  // Hand-worked: ~6.6e14 FLOPs of Newton-Schulz per Muon step per GPU, ~11x less per block step.
  EXPECT_NEAR(full_ns, 6.6e14, 0.1e14);
  EXPECT_NEAR(full_ns / block_ns, 10.8, 0.2);

  // AdamW has no gather and only element-wise work.
  const Program adamw = build_program(with_optimizer("adamw"));
  EXPECT_EQ(find_op(adamw, OpCode::OptimizerGather), nullptr);
  EXPECT_NEAR(find_op(adamw, OpCode::OptimizerStep)->flops / (14 * (hidden_local + other_local)), 1.0, 1e-12);
}
