// Optimizer state: measured bytes against the catalog's formula on a small GPT's tensor list,
// bit-exact save/load round trips for every optimizer, and clear errors on mismatched state.
#include <chrono>
#include <cstdio>

#include "tests/optim/optim_test_support.hpp"

namespace tandem::optim_test {
namespace {

// A two-layer GPT with tied-free head: d = 16, vocab 64, context 32, MLP 4d.
std::vector<HostTensor> small_gpt(std::int64_t d = 16, std::int64_t vocab = 64, std::int64_t context = 32,
                                  int layers = 2) {
  std::vector<HostTensor> t;
  std::uint64_t seed = 1;
  t.emplace_back("wte", vocab, d, ParameterRole::Embedding, false, seed++);
  t.emplace_back("wpe", context, d, ParameterRole::Embedding, false, seed++);
  for (int l = 0; l < layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    t.emplace_back(p + "ln1.gain", d, 1, ParameterRole::Vector, false, seed++);
    t.emplace_back(p + "ln1.bias", d, 1, ParameterRole::Vector, false, seed++);
    t.emplace_back(p + "attn.qkv.weight", 3 * d, d, ParameterRole::HiddenMatrix, true, seed++);
    t.emplace_back(p + "attn.qkv.bias", 3 * d, 1, ParameterRole::Vector, true, seed++);
    t.emplace_back(p + "attn.proj.weight", d, d, ParameterRole::HiddenMatrix, true, seed++);
    t.emplace_back(p + "attn.proj.bias", d, 1, ParameterRole::Vector, true, seed++);
    t.emplace_back(p + "ln2.gain", d, 1, ParameterRole::Vector, false, seed++);
    t.emplace_back(p + "ln2.bias", d, 1, ParameterRole::Vector, false, seed++);
    t.emplace_back(p + "mlp.fc.weight", 4 * d, d, ParameterRole::HiddenMatrix, true, seed++);
    t.emplace_back(p + "mlp.fc.bias", 4 * d, 1, ParameterRole::Vector, true, seed++);
    t.emplace_back(p + "mlp.proj.weight", d, 4 * d, ParameterRole::HiddenMatrix, true, seed++);
    t.emplace_back(p + "mlp.proj.bias", d, 1, ParameterRole::Vector, true, seed++);
  }
  t.emplace_back("lnf.gain", d, 1, ParameterRole::Vector, false, seed++);
  t.emplace_back("head.weight", vocab, d, ParameterRole::OutputHead, false, seed++);
  return t;
}

strategy::OptimizerTensorShape twin_shape(const HostTensor& t) {
  return {t.rows, t.cols, t.rows, t.cols, t.role == ParameterRole::HiddenMatrix, t.attention_or_mlp,
          t.role == ParameterRole::Vector};
}

void set_gradients(std::vector<HostTensor>& tensors, int t) {
  for (std::size_t k = 0; k < tensors.size(); ++k) fill_normal(tensors[k].grad, 10000 + 97 * t + k, 0.1);
}

// Settings that make every refresh / period boundary fall inside a short run.
std::map<std::string, std::string> short_period_args(const std::string& name) {
  if (name == "muonbp") return {{"period", "2"}};
  if (name == "apollo" || name == "apollo-mini" || name == "galore") return {{"update_proj_gap", "2"}};
  if (name == "adan") return {{"weight_decay", "0.02"}};
  return {};
}

class EveryOptimizer : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryOptimizer, MeasuredStateBytesMatchTheCatalogFormula) {
  const ResolvedOptimizer config = resolve(GetParam(), short_period_args(GetParam()));
  auto optimizer = engine::optim::make_optimizer(config);
  auto tensors = small_gpt();
  EXPECT_EQ(optimizer->state_bytes(), 0u) << "state is allocated lazily";
  for (int t = 1; t <= 2; ++t) {
    set_gradients(tensors, t);
    auto params = views(tensors);
    optimizer->step(params, {t, config.lr, nullptr});
  }
  double expected = 0;
  for (const HostTensor& t : tensors) expected += strategy::optimizer_state_bytes(config, twin_shape(t));
  EXPECT_EQ(static_cast<double>(optimizer->state_bytes()), expected) << GetParam();
}

TEST_P(EveryOptimizer, SaveAndLoadContinueBitForBit) {
  const ResolvedOptimizer config = resolve(GetParam(), short_period_args(GetParam()));
  auto original = engine::optim::make_optimizer(config);
  auto tensors = small_gpt();
  for (int t = 1; t <= 3; ++t) {
    set_gradients(tensors, t);
    auto params = views(tensors);
    original->step(params, {t, config.lr, nullptr});
  }
  std::vector<std::uint8_t> checkpoint;
  original->save_state(checkpoint);
  auto resumed_tensors = tensors;  // the weights a checkpoint would hold
  auto resumed = engine::optim::make_optimizer(config);
  resumed->load_state(checkpoint);
  EXPECT_EQ(resumed->state_bytes(), original->state_bytes());
  for (int t = 4; t <= 7; ++t) {
    set_gradients(tensors, t);
    set_gradients(resumed_tensors, t);
    auto a = views(tensors);
    auto b = views(resumed_tensors);
    original->step(a, {t, config.lr, nullptr});
    resumed->step(b, {t, config.lr, nullptr});
  }
  for (std::size_t k = 0; k < tensors.size(); ++k) {
    ASSERT_EQ(0, std::memcmp(tensors[k].value.data(), resumed_tensors[k].value.data(),
                             tensors[k].value.size() * sizeof(float)))
        << GetParam() << ": " << tensors[k].name << " differs after resuming";
  }
  // A second save of the resumed optimizer equals the original's.
  std::vector<std::uint8_t> again, original_again;
  resumed->save_state(again);
  original->save_state(original_again);
  EXPECT_EQ(again, original_again);
}

INSTANTIATE_TEST_SUITE_P(Optimizers, EveryOptimizer,
                         ::testing::Values("adamw", "adamw-hf", "lion", "adan", "muon", "muonbp",
                                           "apollo", "apollo-mini", "galore", "smmf"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) if (c == '-') c = '_';
                           return name;
                         });

TEST(OptimizerState, LoadingAnotherOptimizersStateNamesBoth) {
  auto adamw = engine::optim::make_optimizer(resolve("adamw"));
  auto lion = engine::optim::make_optimizer(resolve("lion"));
  HostTensor w("w", 4, 4, ParameterRole::HiddenMatrix);
  auto p = w.view();
  adamw->step(std::span(&p, 1), {1, 1e-3, nullptr});
  std::vector<std::uint8_t> bytes;
  adamw->save_state(bytes);
  try {
    lion->load_state(bytes);
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("'adamw'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'lion'"), std::string::npos) << e.what();
  }
}

TEST(OptimizerState, TruncatedOrForeignBuffersAreClearErrors) {
  auto adamw = engine::optim::make_optimizer(resolve("adamw"));
  HostTensor w("w", 4, 4, ParameterRole::HiddenMatrix);
  auto p = w.view();
  adamw->step(std::span(&p, 1), {1, 1e-3, nullptr});
  std::vector<std::uint8_t> bytes;
  adamw->save_state(bytes);
  auto fresh = engine::optim::make_optimizer(resolve("adamw"));
  const std::vector<std::uint8_t> truncated(bytes.begin(), bytes.end() - 5);
  EXPECT_THROW(fresh->load_state(truncated), std::runtime_error);
  std::vector<std::uint8_t> garbage(40, 0x5a);
  EXPECT_THROW(fresh->load_state(garbage), std::runtime_error);
  EXPECT_THROW(fresh->load_state({}), std::runtime_error);
  auto extra = bytes;
  extra.push_back(0);
  EXPECT_THROW(fresh->load_state(extra), std::runtime_error);
  fresh->load_state(bytes);  // the intact buffer loads
  EXPECT_EQ(fresh->state_bytes(), adamw->state_bytes());
}

TEST(OptimizerState, LoadedStateOfAnotherShapeIsAClearError) {
  auto adamw = engine::optim::make_optimizer(resolve("adamw"));
  HostTensor w("w", 4, 4, ParameterRole::HiddenMatrix);
  auto p = w.view();
  adamw->step(std::span(&p, 1), {1, 1e-3, nullptr});
  std::vector<std::uint8_t> bytes;
  adamw->save_state(bytes);
  auto fresh = engine::optim::make_optimizer(resolve("adamw"));
  fresh->load_state(bytes);
  HostTensor bigger("w", 4, 8, ParameterRole::HiddenMatrix);
  auto q = bigger.view();
  try {
    fresh->step(std::span(&q, 1), {2, 1e-3, nullptr});
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("4x4"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("4x8"), std::string::npos) << e.what();
  }
}

TEST(OptimizerState, UnknownOptimizerIsRejected) {
  ResolvedOptimizer config = resolve("adamw");
  config.name = "sgd";
  EXPECT_THROW(engine::optim::make_optimizer(config), std::invalid_argument);
}

// Timing on GPT-2 small's tensor list (d 768, 12 layers, vocab 50257, context 1024): not a test
// (no timed assertions); run with --gtest_also_run_disabled_tests --gtest_filter=*Timing*.
TEST(OptimizerTiming, DISABLED_Gpt2SmallStepSeconds) {
  auto tensors = small_gpt(768, 50257, 1024, 12);
  for (const std::string name : {"adamw", "adamw-hf", "lion", "adan", "smmf", "apollo", "apollo-mini",
                                 "galore", "muonbp", "muon"}) {
    const ResolvedOptimizer config = resolve(name);
    auto optimizer = engine::optim::make_optimizer(config);
    set_gradients(tensors, 1);
    double seconds[3] = {0, 0, 0};
    for (int t = 1; t <= 3; ++t) {
      auto params = views(tensors);
      const auto start = std::chrono::steady_clock::now();
      optimizer->step(params, {t, config.lr, nullptr});
      seconds[t - 1] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    std::printf("%-12s step 1 %.3f s, step 2 %.3f s, step 3 %.3f s, state %.1f MiB\n", name.c_str(),
                seconds[0], seconds[1], seconds[2], optimizer->state_bytes() / 1048576.0);
  }
}

}  // namespace
}  // namespace tandem::optim_test
