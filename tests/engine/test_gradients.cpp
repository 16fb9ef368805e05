// The whole model's gradient, as the runner computes it by executing the program (forward and
// backward of every op, gradient accumulation over micro-batches, the loss scaled to the mean over
// the global batch), against central finite differences of the loss — in double precision, for
// every architecture variant the engine supports.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "comm/communicator.hpp"
#include "engine/backend/backend.hpp"
#include "engine/runner/runner.hpp"
#include "strategy/scenario.hpp"
#include "tests/engine/engine_test_support.hpp"

namespace tandem::engine {
namespace {

using test::TinyModel;
using test::TinyRun;

// Fixed tokens: micro-batch j of the (single) replica.
MicroBatchSource fixed_tokens(int vocab, int B, int T) {
  return [=](int micro_batch, std::vector<std::int32_t>& inputs, std::vector<std::int32_t>& targets) {
    inputs.resize(static_cast<std::size_t>(B) * T);
    targets.resize(inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      inputs[i] = static_cast<std::int32_t>((i * 7 + 3 * micro_batch + 1) % vocab);
      targets[i] = static_cast<std::int32_t>((i * 5 + 11 * micro_batch + 2) % vocab);
    }
  };
}

void check_gradients(const TinyModel& model, TinyRun run = {}) {
  run.grad_clip = 0;  // the raw gradient
  const strategy::Scenario scenario = strategy::parse_scenario(test::scenario_yaml(model, run), ".");
  auto world = comm::make_single_process_communicator();
  auto backend = make_cpu_backend<double>();
  RunnerOptions options;
  options.gradients_only = true;
  options.record_trace = false;
  Runner<double> runner(scenario, *world, *backend, options);
  const MicroBatchSource source = fixed_tokens(model.vocab, run.micro_batch, model.seq_len);

  runner.step(1, 0.0, source);
  ParameterStore<double>& params = runner.model().parameters();
  const std::vector<double> grads(params.grads(), params.grads() + params.layout().total);

  std::mt19937 rng(7);
  const double epsilon = 1e-5;
  int checked = 0;
  double worst = 0;
  for (const LocalTensor& tensor : params.layout().tensors) {
    std::uniform_int_distribution<std::int64_t> pick(0, tensor.size() - 1);
    for (int trial = 0; trial < 3; ++trial) {
      std::int64_t index = pick(rng);
      // Embedding-like tables: pick a row that the tokens use (others have zero gradient).
      if (tensor.spec.role == strategy::TensorRole::Embedding || tensor.spec.role == strategy::TensorRole::OutputHead)
        index = (index % tensor.cols) + tensor.cols * ((trial * 5 + 2) % model.vocab);
      double* value = params.values() + tensor.offset + index;
      const double saved = *value;
      *value = saved + epsilon;
      const double plus = runner.step(1, 0.0, source).loss;
      *value = saved - epsilon;
      const double minus = runner.step(1, 0.0, source).loss;
      *value = saved;
      const double numeric = (plus - minus) / (2 * epsilon);
      const double analytic = grads[tensor.offset + static_cast<std::size_t>(index)];
      // Central differences in double: truncation O(eps²) and rounding ~1e-16·loss/eps ≈ 3e-11.
      const double error = std::abs(numeric - analytic);
      worst = std::max(worst, error / (1e-9 + std::abs(numeric)));
      EXPECT_LT(error, 1e-9 + 1e-5 * std::abs(numeric)) << tensor.spec.name << "[" << index << "]: analytic " << analytic << ", finite difference "
                             << numeric;
      ++checked;
    }
  }
  EXPECT_GT(checked, 20);
  std::printf("  %d gradient elements checked, worst relative error %.2e\n", checked, worst);
  // Gradients are not all zero (the check would then be vacuous).
  double norm = 0;
  for (double g : grads) norm += g * g;
  EXPECT_GT(norm, 1e-8);
  // Every step starts from zero gradients (the program's grad-zero op): one more step on the same
  // weights and tokens leaves the same gradient, not the sum of the steps'.
  runner.step(1, 0.0, source);
  std::size_t differing = 0;
  for (std::size_t i = 0; i < grads.size(); ++i) differing += params.grads()[i] != grads[i];
  EXPECT_EQ(differing, 0u) << "of " << grads.size() << " gradient elements differ after another step";
}

TEST(EngineGradients, Gpt2StyleLearnedPositionsLayerNormGelu) { check_gradients(TinyModel{}); }

TEST(EngineGradients, LlamaStyleRopeRmsNormSwiglu) {
  TinyModel m;
  m.position = "rope";
  m.norm = "rmsnorm";
  m.activation = "swiglu";
  check_gradients(m);
}

TEST(EngineGradients, GroupedQueryAttention) {
  TinyModel m;
  m.heads = 4;
  m.kv_heads = 2;
  m.position = "rope";
  check_gradients(m);
}

TEST(EngineGradients, TiedEmbeddings) {
  TinyModel m;
  m.tied = true;
  check_gradients(m);
}

TEST(EngineGradients, FullRecomputationGivesTheSameGradient) {
  TinyRun run;
  run.strategy["recompute"] = "full";
  check_gradients(TinyModel{}, run);
}

}  // namespace
}  // namespace tandem::engine
