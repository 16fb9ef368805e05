// The optimizer state the engine really allocates — Optimizer::state_bytes() of the runner's
// optimizer after a training step — for every optimizer, on two tiny models (GPT-2 style: GELU,
// LayerNorm with biases, learned positions, untied head; Llama style: SwiGLU, RMSNorm, RoPE, GQA,
// tied embeddings), against
//   (1) the per-tensor formula of OPTIMIZERS.md over the model's tensors listed here by hand, and
//   (2) the twin's memory model (strategy::estimate_memory: the stage's optimizer bytes; fp32, so
//       no master weights).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "comm/communicator.hpp"
#include "engine/backend/backend.hpp"
#include "engine/runner/runner.hpp"
#include "kernels/cpu/threading.hpp"
#include "strategy/memory_model.hpp"
#include "strategy/scenario.hpp"
#include "tests/optim/engine_state_support.hpp"

namespace tandem::optim_test {
namespace {

struct Tensor {
  double rows, cols;
  enum Kind { Matrix, Embedding, Vector } kind;
};

// Every parameter tensor of the two models, from their definitions (hidden 32, 4 heads, 2 layers,
// vocabulary 64, sequence 16; see engine_state_support.hpp).
std::vector<Tensor> gpt2_style_tensors() {
  std::vector<Tensor> t{{64, 32, Tensor::Embedding}, {16, 32, Tensor::Embedding}};  // token, position
  for (int layer = 0; layer < 2; ++layer) {
    t.insert(t.end(), {{32, 1, Tensor::Vector}, {32, 1, Tensor::Vector},   // attention LayerNorm
                       {96, 32, Tensor::Matrix}, {96, 1, Tensor::Vector},  // qkv + bias
                       {32, 32, Tensor::Matrix}, {32, 1, Tensor::Vector},  // attention out + bias
                       {32, 1, Tensor::Vector}, {32, 1, Tensor::Vector},   // MLP LayerNorm
                       {64, 32, Tensor::Matrix}, {64, 1, Tensor::Vector},  // MLP up (ffn 64) + bias
                       {32, 64, Tensor::Matrix}, {32, 1, Tensor::Vector}}); // MLP down + bias
  }
  t.insert(t.end(), {{32, 1, Tensor::Vector}, {32, 1, Tensor::Vector}, {64, 32, Tensor::Embedding}});  // final norm, head
  return t;
}

std::vector<Tensor> llama_style_tensors() {
  std::vector<Tensor> t{{64, 32, Tensor::Embedding}};  // token embedding, tied to the head
  for (int layer = 0; layer < 2; ++layer) {
    t.insert(t.end(), {{32, 1, Tensor::Vector},                            // attention RMSNorm
                       {64, 32, Tensor::Matrix},                           // qkv: 32 + 2 x 2 KV heads of 8
                       {32, 32, Tensor::Matrix},                           // attention out
                       {32, 1, Tensor::Vector},                            // MLP RMSNorm
                       {96, 32, Tensor::Matrix},                           // gate | up (ffn 48)
                       {32, 48, Tensor::Matrix}});                         // down
  }
  t.push_back({32, 1, Tensor::Vector});  // final norm
  return t;
}

double most_square_sum(double n) {  // a + b for the most-square a x b = n
  for (auto b = static_cast<long long>(std::floor(std::sqrt(n))); b >= 1; --b)
    if (static_cast<long long>(n) % b == 0) return n / static_cast<double>(b) + static_cast<double>(b);
  return n + 1;
}

double formula_state_bytes(const std::string& optimizer, const std::vector<Tensor>& tensors) {
  double total = 0;
  for (const Tensor& t : tensors) {
    const double n = t.rows * t.cols;
    const bool matrix = t.kind == Tensor::Matrix;
    double bytes = 8 * n;  // AdamW: m and v
    if (optimizer == "lion") bytes = 4 * n;
    if (optimizer == "adan") bytes = 16 * n;  // m, v, n and the previous gradient
    if ((optimizer == "muon" || optimizer == "muonbp") && matrix) bytes = 4 * n;
    if ((optimizer == "apollo" || optimizer == "apollo-mini" || optimizer == "galore") && matrix) {
      const double r = optimizer == "apollo-mini" ? 1 : std::min(t.rows, t.cols) / 4;  // hidden/4
      bytes = 4 * (2 * r * std::max(t.rows, t.cols) + r * std::min(t.rows, t.cols));
    }
    if (optimizer == "smmf") bytes = 4 * 2 * most_square_sum(n) + std::ceil(n / 8);
    total += bytes;
  }
  return total;
}

class EngineStateMemory : public ::testing::TestWithParam<std::string> {};

TEST_P(EngineStateMemory, MeasuredStateEqualsTheFormulaAndTheTwinsMemoryModel) {
  kernels::cpu::set_kernel_threads(1);
  const std::string optimizer = GetParam();
  auto world = comm::make_single_process_communicator();
  auto backend = engine::make_cpu_backend<float>();
  for (const bool llama : {false, true}) {
    SCOPED_TRACE(llama ? "llama-style" : "gpt2-style");
    const strategy::Scenario scenario = strategy::parse_scenario(state_scenario_yaml(optimizer, llama, 1, 1, 1), ".");
    engine::Runner<float> runner(scenario, *world, *backend);
    ASSERT_EQ(runner.optimizer()->name(), optimizer);
    // State is allocated lazily on the first step; a second step (GaLore / APOLLO refresh their
    // projections every step with update_proj_gap 1) must not grow it.
    runner.step(1, 1e-3, state_test_batches());
    const std::size_t after_first = runner.optimizer()->state_bytes();
    runner.step(2, 1e-3, state_test_batches());
    EXPECT_EQ(runner.optimizer()->state_bytes(), after_first);

    const double formula = formula_state_bytes(optimizer, llama ? llama_style_tensors() : gpt2_style_tensors());
    EXPECT_EQ(static_cast<double>(after_first), formula);
    const strategy::MemoryEstimate memory = strategy::estimate_memory(scenario);
    ASSERT_EQ(memory.stages.size(), 1u);
    EXPECT_EQ(static_cast<double>(after_first), memory.stages[0].optimizer);
  }
}

INSTANTIATE_TEST_SUITE_P(EveryOptimizer, EngineStateMemory,
                         ::testing::Values("adamw", "adamw-hf", "lion", "adan", "muon", "muonbp", "apollo",
                                           "apollo-mini", "galore", "smmf"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace tandem::optim_test
