// The optimizer catalog: every key documented with a valid default, resolution precedence,
// error messages, and the twin's state / FLOP / communication formulas on hand-computed cases.
#include <functional>

#include "tests/optim/optim_test_support.hpp"

namespace tandem::optim_test {
namespace {

using strategy::OptimizerTensorShape;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(OptimizerCatalog, ListsTheTenOptimizersInOrder) {
  std::vector<std::string> names;
  for (const auto& d : strategy::optimizer_catalog()) names.push_back(d.name);
  EXPECT_EQ(names, (std::vector<std::string>{"adamw", "adamw-hf", "lion", "adan", "muon", "muonbp",
                                             "apollo", "apollo-mini", "galore", "smmf"}));
  EXPECT_EQ(strategy::find_optimizer("sgd"), nullptr);
  ASSERT_NE(strategy::find_optimizer("muonbp"), nullptr);
}

TEST(OptimizerCatalog, EveryArgumentIsDocumentedAndItsDefaultResolves) {
  for (const auto& d : strategy::optimizer_catalog()) {
    EXPECT_FALSE(d.summary.empty()) << d.name;
    EXPECT_FALSE(d.reference.empty()) << d.name;
    ASSERT_NE(d.find_argument("lr"), nullptr) << d.name;
    ASSERT_NE(d.find_argument("weight_decay"), nullptr) << d.name;
    for (const auto& a : d.arguments) {
      EXPECT_FALSE(a.doc.empty()) << d.name << "." << a.key;
      EXPECT_FALSE(a.default_value.empty()) << d.name << "." << a.key;
    }
    const ResolvedOptimizer r = resolve(d.name);
    EXPECT_EQ(r.numbers.size() + r.choices.size() + 2, d.arguments.size()) << d.name;
    // Resolving every default given explicitly changes nothing.
    std::map<std::string, std::string> all;
    for (const auto& a : d.arguments) all[a.key] = a.default_value;
    const ResolvedOptimizer explicit_defaults = resolve(d.name, all);
    EXPECT_EQ(explicit_defaults.numbers, r.numbers) << d.name;
    EXPECT_EQ(explicit_defaults.choices, r.choices) << d.name;
    EXPECT_EQ(explicit_defaults.lr, r.lr) << d.name;
  }
  for (const char* name : {"muon", "muonbp"}) {
    const auto* d = strategy::find_optimizer(name);
    for (const char* key : {"aux_lr", "aux_beta1", "aux_beta2", "aux_eps"}) {
      EXPECT_NE(d->find_argument(key), nullptr) << name << "." << key;
    }
  }
  for (const char* key : {"period", "blocks", "block_lr_ratio", "scaling", "nesterov"}) {
    EXPECT_NE(strategy::find_optimizer("muonbp")->find_argument(key), nullptr) << key;
  }
}

TEST(OptimizerCatalog, ReferenceDefaults) {
  const ResolvedOptimizer adamw = resolve("adamw");
  EXPECT_EQ(adamw.lr, 1e-3);
  EXPECT_EQ(adamw.weight_decay, 0.01);
  EXPECT_EQ(adamw.number("eps"), 1e-8);
  EXPECT_EQ(resolve("adamw-hf").number("eps"), 1e-6);
  EXPECT_EQ(resolve("lion").lr, 1e-4);
  EXPECT_EQ(resolve("lion").number("beta2"), 0.99);
  EXPECT_EQ(resolve("adan").number("beta1"), 0.98);
  EXPECT_EQ(resolve("adan").choice("decay_form"), "prox");
  const ResolvedOptimizer muon = resolve("muon");
  EXPECT_EQ(muon.lr, 0.02);
  EXPECT_EQ(muon.number("momentum"), 0.95);
  EXPECT_TRUE(muon.boolean("nesterov"));
  EXPECT_EQ(muon.integer("ns_steps"), 5);
  EXPECT_EQ(muon.number("aux_lr"), 3e-4);
  EXPECT_EQ(muon.number("aux_beta2"), 0.95);
  EXPECT_EQ(muon.number("aux_eps"), 1e-10);
  EXPECT_EQ(resolve("muonbp").integer("period"), 5);
  EXPECT_EQ(resolve("apollo").number("scale"), 1.0);
  EXPECT_EQ(resolve("apollo").integer("update_proj_gap"), 200);
  EXPECT_EQ(resolve("apollo-mini").integer("rank"), 1);
  EXPECT_EQ(resolve("apollo-mini").number("scale"), 128.0);
  EXPECT_EQ(resolve("apollo-mini").choice("scale_type"), "tensor");
  EXPECT_EQ(resolve("galore").number("scale"), 0.25);
  EXPECT_EQ(resolve("smmf").number("growth_rate"), 0.999);
}

TEST(OptimizerCatalog, PrecedenceArgsOverTrainingOverDefault) {
  using strategy::resolve_optimizer;
  EXPECT_EQ(resolve_optimizer("adamw", {}, std::nullopt, std::nullopt, 0).lr, 1e-3);
  EXPECT_EQ(resolve_optimizer("adamw", {}, 6e-4, 0.1, 0).lr, 6e-4);
  EXPECT_EQ(resolve_optimizer("adamw", {}, 6e-4, 0.1, 0).weight_decay, 0.1);
  const auto r = resolve_optimizer("adamw", {{"lr", "3e-4"}, {"weight_decay", "0"}}, 6e-4, 0.1, 9);
  EXPECT_EQ(r.lr, 3e-4);
  EXPECT_EQ(r.weight_decay, 0.0);
  EXPECT_EQ(r.seed, 9u);
  // training.lr maps to Muon's lr, never to aux_lr.
  const auto m = resolve_optimizer("muon", {}, 6e-4, std::nullopt, 0);
  EXPECT_EQ(m.lr, 6e-4);
  EXPECT_EQ(m.number("aux_lr"), 3e-4);
}

TEST(OptimizerCatalog, ErrorsNameTheFieldAndWhatIsValid) {
  using strategy::resolve_optimizer;
  std::string e = error_of([] { resolve("adamw", {{"betas", "0.9"}}); });
  EXPECT_NE(e.find("strategy.optimizer_args.betas"), std::string::npos) << e;
  EXPECT_NE(e.find("valid keys: lr, weight_decay, beta1, beta2, eps"), std::string::npos) << e;
  e = error_of([] { resolve("adamw", {{"beta1", "1.5"}}); });
  EXPECT_NE(e.find("strategy.optimizer_args.beta1"), std::string::npos) << e;
  EXPECT_NE(e.find("[0, 1)"), std::string::npos) << e;
  e = error_of([] { resolve("adamw", {{"lr", "fast"}}); });
  EXPECT_NE(e.find("strategy.optimizer_args.lr: 'fast'"), std::string::npos) << e;
  e = error_of([] { resolve("adamw", {{"lr", "1e-3x"}}); });
  EXPECT_NE(e.find("strategy.optimizer_args.lr"), std::string::npos) << e;
  e = error_of([] { resolve("muon", {{"nesterov", "yes"}}); });
  EXPECT_NE(e.find("expected true or false"), std::string::npos) << e;
  e = error_of([] { resolve("muonbp", {{"period", "2.5"}}); });
  EXPECT_NE(e.find("strategy.optimizer_args.period"), std::string::npos) << e;
  EXPECT_NE(e.find("integer"), std::string::npos) << e;
  e = error_of([] { resolve("muonbp", {{"period", "0"}}); });
  EXPECT_NE(e.find(">= 1"), std::string::npos) << e;
  e = error_of([] { resolve("muon", {{"scaling", "spectral"}}); });
  EXPECT_NE(e.find("expected one of shape, rms"), std::string::npos) << e;
  e = error_of([] { resolve("sgd"); });
  EXPECT_NE(e.find("strategy.optimizer: 'sgd'"), std::string::npos) << e;
  EXPECT_NE(e.find("adamw, adamw-hf, lion"), std::string::npos) << e;
  e = error_of([] { resolve_optimizer("adamw", {}, -1.0, std::nullopt, 0); });
  EXPECT_NE(e.find("training.lr"), std::string::npos) << e;
  e = error_of([] { resolve_optimizer("adamw", {}, std::nullopt, -0.1, 0); });
  EXPECT_NE(e.find("training.weight_decay"), std::string::npos) << e;
}

TEST(OptimizerCatalog, MostSquareFactorization) {
  using strategy::most_square_factorization;
  EXPECT_EQ(most_square_factorization(60), (std::pair<std::int64_t, std::int64_t>{10, 6}));
  EXPECT_EQ(most_square_factorization(16), (std::pair<std::int64_t, std::int64_t>{4, 4}));
  EXPECT_EQ(most_square_factorization(13), (std::pair<std::int64_t, std::int64_t>{13, 1}));
  EXPECT_EQ(most_square_factorization(768 * 3072), (std::pair<std::int64_t, std::int64_t>{1536, 1536}));
  EXPECT_EQ(most_square_factorization(2304 * 768), (std::pair<std::int64_t, std::int64_t>{1536, 1152}));
}

OptimizerTensorShape matrix(std::int64_t rows, std::int64_t cols, std::int64_t full_rows, std::int64_t full_cols) {
  return {rows, cols, full_rows, full_cols, true, true, false};
}

TEST(OptimizerTwinModel, StateBytesPerTensor) {
  using strategy::optimizer_state_bytes;
  const OptimizerTensorShape w = matrix(3072, 768, 3072, 768), bias{3072, 1, 3072, 1, false, true, true};
  const double n = 3072.0 * 768;
  EXPECT_EQ(optimizer_state_bytes(resolve("adamw"), w), 8 * n);
  EXPECT_EQ(optimizer_state_bytes(resolve("lion"), w), 4 * n);
  EXPECT_EQ(optimizer_state_bytes(resolve("adan"), w), 16 * n);
  EXPECT_EQ(optimizer_state_bytes(resolve("muon"), w), 4 * n);
  EXPECT_EQ(optimizer_state_bytes(resolve("muon"), bias), 8 * 3072.0);
  // APOLLO: r = 768/4 = 192; m, v: 2*192*3072; projection 192*768; fp32.
  EXPECT_EQ(optimizer_state_bytes(resolve("apollo"), w), 4.0 * (2 * 192 * 3072 + 192 * 768));
  EXPECT_EQ(optimizer_state_bytes(resolve("apollo-mini"), w), 4.0 * (2 * 3072 + 768));
  EXPECT_EQ(optimizer_state_bytes(resolve("galore", {{"rank", "128"}}), w), 4.0 * (2 * 128 * 3072 + 128 * 768));
  EXPECT_EQ(optimizer_state_bytes(resolve("apollo"), bias), 8 * 3072.0);
  // SMMF: 1536 x 1536 -> 2 * (1536 + 1536) floats + n/8 bytes.
  EXPECT_EQ(optimizer_state_bytes(resolve("smmf"), w), 4.0 * 2 * 3072 + n / 8);
  // Under TP the rank still follows the full matrix (hidden/4) but never exceeds the shard.
  EXPECT_EQ(strategy::low_rank_projection_rank(resolve("apollo"), matrix(3072, 96, 3072, 768)), 96);
}

TEST(OptimizerTwinModel, StepFlops) {
  using strategy::optimizer_step_flops;
  const OptimizerTensorShape w = matrix(3072, 768, 3072, 768);
  const double n = 3072.0 * 768, r = 768, c = 3072;
  EXPECT_EQ(optimizer_step_flops(resolve("adamw"), w), 14 * n);
  // Muon: elementwise 10n + NS5 on the 768 x 3072 transpose: 3rc + 5*(4r^2c + 2r^3 + 3r^2 + 2rc).
  const double ns5 = 3 * r * c + 5 * (4 * r * r * c + 2 * r * r * r + 3 * r * r + 2 * r * c);
  EXPECT_EQ(optimizer_step_flops(resolve("muon"), w), 10 * n + ns5);
  // MuonBP without TP: full every 5th step, 2 row blocks of 1536 x 768 otherwise.
  const double block = 2 * (3 * r * 1536 + 5 * (4 * r * r * 1536 + 2 * r * r * r + 3 * r * r + 2 * r * 1536));
  EXPECT_DOUBLE_EQ(optimizer_step_flops(resolve("muonbp"), w), 10 * n + (ns5 + 4 * block) / 5);
  // Splitting a tall matrix into row blocks does not shrink its Gram matrix (768 x 768 per block),
  // so block steps cost more there; a wide matrix's row blocks are cheaper.
  EXPECT_GT(optimizer_step_flops(resolve("muonbp"), w), optimizer_step_flops(resolve("muon"), w));
  const OptimizerTensorShape wide = matrix(768, 3072, 768, 3072);
  EXPECT_LT(optimizer_step_flops(resolve("muonbp"), wide), optimizer_step_flops(resolve("muon"), wide));
  // A row-parallel weight (split_dim 1) without TP splits like TP 2 would: 2 column blocks of
  // 768 x 1536, each NS5 on its 768 x 1536 (r = 768, c = 1536).
  OptimizerTensorShape wide_by_cols = wide;
  wide_by_cols.split_dim = 1;
  const double column_block = 2 * (3 * r * 1536 + 5 * (4 * r * r * 1536 + 2 * r * r * r + 3 * r * r + 2 * r * 1536));
  EXPECT_DOUBLE_EQ(optimizer_step_flops(resolve("muonbp"), wide_by_cols), 10 * n + (ns5 + 4 * column_block) / 5);
  // GaLore's SVD (4mn^2 + 22n^3) is amortised over update_proj_gap steps.
  const auto galore = resolve("galore", {{"rank", "128"}});
  const double svd = 4 * c * r * r + 22 * r * r * r;
  EXPECT_DOUBLE_EQ(optimizer_step_flops(galore, w),
                   2 * n * 128 + 10 * 128 * c + 2 * n * 128 + 5 * n + svd / 200);
  EXPECT_GT(optimizer_step_flops(resolve("apollo"), w), optimizer_step_flops(resolve("apollo-mini"), w));
}

TEST(OptimizerTwinModel, MuonGatherBytes) {
  using strategy::optimizer_step_comm_bytes;
  const OptimizerTensorShape shard = matrix(1536, 768, 3072, 768), whole = matrix(3072, 768, 3072, 768);
  const double gathered = 4.0 * 3072 * 768;
  EXPECT_EQ(optimizer_step_comm_bytes(resolve("muon"), shard, 2), gathered);
  EXPECT_EQ(optimizer_step_comm_bytes(resolve("muonbp"), shard, 2), gathered / 5);
  EXPECT_EQ(optimizer_step_comm_bytes(resolve("muonbp", {{"period", "1"}}), shard, 2), gathered);
  EXPECT_EQ(optimizer_step_comm_bytes(resolve("muon"), whole, 1), 0);
  EXPECT_EQ(optimizer_step_comm_bytes(resolve("muon"), whole, 2), 0);  // replicated weight
  EXPECT_EQ(optimizer_step_comm_bytes(resolve("adamw"), shard, 2), 0);
  EXPECT_EQ(optimizer_step_comm_bytes(resolve("apollo"), shard, 2), 0);
}

}  // namespace
}  // namespace tandem::optim_test
