// The optimizer step as the runner drives it (program op OptimizerStep, after clipping with the
// global gradient norm) against AdamW computed by hand from the raw gradients:
//   clipping (torch clip_grad_norm_): g ← g · max_norm / (‖g‖ + 1e-6) when that factor is below 1;
//   torch.optim.AdamW, first step: m = (1-b1) g, v = (1-b2) g²,
//   p ← p·(1 - lr·wd) - lr/(1-b1) · m / (sqrt(v)/sqrt(1-b2) + eps), weight decay on 2-D tensors.
// eps is set large (1e-3) so that the update depends on the gradient's size, not only its sign,
// and clipping is visible in it.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "comm/communicator.hpp"
#include "engine/backend/backend.hpp"
#include "engine/runner/runner.hpp"
#include "kernels/cpu/threading.hpp"
#include "strategy/scenario.hpp"
#include "tests/engine/engine_test_support.hpp"

namespace tandem::engine {
namespace {

MicroBatchSource tokens(int vocab, int B, int T) {
  return [=](int micro_batch, std::vector<std::int32_t>& inputs, std::vector<std::int32_t>& targets) {
    inputs.resize(static_cast<std::size_t>(B) * T);
    targets.resize(inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      inputs[i] = static_cast<std::int32_t>((i * 3 + micro_batch) % vocab);
      targets[i] = static_cast<std::int32_t>((i * 13 + 5 * micro_batch + 1) % vocab);
    }
  };
}

strategy::Scenario tiny(double grad_clip) {
  test::TinyModel model;
  test::TinyRun run;
  run.grad_clip = grad_clip;
  run.lr = 1e-2;
  run.weight_decay = 0.1;
  run.optimizer_args["eps"] = "1e-3";
  return strategy::parse_scenario(test::scenario_yaml(model, run), ".");
}

void check_adamw_step(double grad_clip) {
  kernels::cpu::set_kernel_threads(1);
  auto world = comm::make_single_process_communicator();
  auto backend = make_cpu_backend<float>();
  const test::TinyModel model;
  const MicroBatchSource source = tokens(model.vocab, 2, model.seq_len);
  const double lr = 3e-3, b1 = 0.9, b2 = 0.999, eps = 1e-3, wd = 0.1;

  // The raw gradient and the initial parameters (initialisation is a function of the seed).
  RunnerOptions gradients_only;
  gradients_only.gradients_only = true;
  Runner<float> reference(tiny(0.0), *world, *backend, gradients_only);
  const double reference_loss = reference.step(1, lr, source).loss;
  const ParameterStore<float>& p0 = reference.model().parameters();
  const std::size_t n = p0.layout().total;
  std::vector<double> grad(p0.grads(), p0.grads() + n);
  const std::vector<float> initial(p0.values(), p0.values() + n);
  double norm = 0;
  for (double g : grad) norm += g * g;
  norm = std::sqrt(norm);
  const double coefficient = grad_clip > 0 ? std::min(1.0, grad_clip / (norm + 1e-6)) : 1.0;
  if (grad_clip > 0) {
    ASSERT_LT(coefficient, 0.5) << "the test should exercise clipping";
  }

  Runner<float> runner(tiny(grad_clip), *world, *backend);
  const StepResult result = runner.step(1, lr, source);
  EXPECT_EQ(result.loss, reference_loss);
  if (grad_clip > 0) {
    EXPECT_NEAR(result.grad_norm, norm, 1e-5 * norm);
  }
  const ParameterStore<float>& p1 = runner.model().parameters();

  std::size_t compared = 0;
  for (const LocalTensor& tensor : p1.layout().tensors) {
    const bool decayed = tensor.spec.role != strategy::TensorRole::Vector;
    for (std::int64_t i = 0; i < tensor.size(); ++i) {
      const std::size_t at = tensor.offset + static_cast<std::size_t>(i);
      const double g = grad[at] * coefficient;
      const double m = (1 - b1) * g, v = (1 - b2) * g * g;
      const double expected =
          initial[at] * (1 - lr * (decayed ? wd : 0)) - lr / (1 - b1) * m / (std::sqrt(v) / std::sqrt(1 - b2) + eps);
      ASSERT_NEAR(p1.values()[at], expected, 1e-7 + 2e-6 * std::abs(expected))
          << tensor.spec.name << "[" << i << "], gradient " << g;
      ++compared;
    }
  }
  EXPECT_GT(compared, 5000u);
}

TEST(EngineOptimizerStep, AdamWThroughTheRunnerEqualsTheHandComputedStep) { check_adamw_step(0.0); }

TEST(EngineOptimizerStep, AdamWAfterGlobalNormClipping) { check_adamw_step(1e-3); }

}  // namespace
}  // namespace tandem::engine
