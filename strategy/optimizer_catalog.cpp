// The optimizer catalog: keys, reference defaults, resolution and the twin's cost model.
// Update rules and the provenance of every default: ../shared/reference/OPTIMIZERS.md.
#include "strategy/optimizer_catalog.hpp"

#include "strategy/model_formulas.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <system_error>

namespace tandem::strategy {
namespace {

OptimizerArgument number(std::string key, std::string default_value, std::string doc,
                         std::optional<double> minimum = std::nullopt,
                         std::optional<double> maximum = std::nullopt,
                         bool maximum_exclusive = false) {
  OptimizerArgument argument;
  argument.key = std::move(key);
  argument.type = ArgumentType::Number;
  argument.default_value = std::move(default_value);
  argument.doc = std::move(doc);
  argument.minimum = minimum;
  argument.maximum = maximum;
  argument.maximum_exclusive = maximum_exclusive;
  return argument;
}

OptimizerArgument integer(std::string key, std::string default_value, std::string doc,
                          double minimum) {
  OptimizerArgument argument = number(std::move(key), std::move(default_value), std::move(doc),
                                      minimum);
  argument.type = ArgumentType::Integer;
  return argument;
}

OptimizerArgument boolean(std::string key, std::string default_value, std::string doc) {
  OptimizerArgument argument;
  argument.key = std::move(key);
  argument.type = ArgumentType::Boolean;
  argument.default_value = std::move(default_value);
  argument.doc = std::move(doc);
  return argument;
}

OptimizerArgument choice(std::string key, std::string default_value,
                         std::vector<std::string> choices, std::string doc) {
  OptimizerArgument argument;
  argument.key = std::move(key);
  argument.type = ArgumentType::Choice;
  argument.default_value = std::move(default_value);
  argument.choices = std::move(choices);
  argument.doc = std::move(doc);
  return argument;
}

OptimizerArgument learning_rate(std::string default_value) {
  return number("lr", std::move(default_value),
                "peak learning rate (the engine's schedule scales it each step)", 0.0);
}
OptimizerArgument weight_decay(std::string default_value) {
  return number("weight_decay", std::move(default_value),
                "decoupled weight decay, applied to 2-D parameters only", 0.0);
}
OptimizerArgument beta(std::string key, std::string default_value, std::string doc) {
  return number(std::move(key), std::move(default_value), std::move(doc), 0.0, 1.0, true);
}
OptimizerArgument epsilon(std::string default_value, std::string doc) {
  return number("eps", std::move(default_value), std::move(doc), 0.0);
}

// Muon's AdamW for embeddings, the output head and 1-D parameters (KellerJordan/Muon
// MuonWithAuxAdam: lr 3e-4, betas (0.9, 0.95), eps 1e-10, weight decay 0).
void add_muon_arguments(std::vector<OptimizerArgument>& arguments) {
  arguments.push_back(learning_rate("0.02"));
  arguments.push_back(weight_decay("0"));
  arguments.push_back(beta("momentum", "0.95", "momentum coefficient beta: M = beta*M + (1-beta)*g"));
  arguments.push_back(boolean("nesterov", "true",
                              "orthogonalise (1-beta)*g + beta*M instead of M (Nesterov momentum)"));
  arguments.push_back(integer("ns_steps", "5",
                              "Newton-Schulz iterations with (a,b,c) = (3.4445, -4.7750, 2.0315)", 1));
  arguments.push_back(choice("scaling", "shape", {"shape", "rms"},
                             "update scale: shape = sqrt(max(1, rows/cols)) (KellerJordan/Muon); "
                             "rms = 0.2*sqrt(max(rows, cols)) (Moonlight, reuses AdamW's lr and "
                             "weight_decay)"));
  arguments.push_back(number("aux_lr", "3e-4",
                             "AdamW learning rate for embeddings, output head and 1-D parameters "
                             "(scheduled like lr)", 0.0));
  arguments.push_back(beta("aux_beta1", "0.9", "AdamW beta1 for the non-Muon parameters"));
  arguments.push_back(beta("aux_beta2", "0.95", "AdamW beta2 for the non-Muon parameters"));
  arguments.push_back(number("aux_eps", "1e-10", "AdamW epsilon for the non-Muon parameters", 0.0));
  arguments.push_back(number("aux_weight_decay", "0",
                             "AdamW decoupled weight decay for embeddings and the output head", 0.0));
}

void add_low_rank_arguments(std::vector<OptimizerArgument>& arguments, const char* lr,
                            const char* rank, const char* rank_doc, const char* scale,
                            const char* scale_doc) {
  arguments.push_back(learning_rate(lr));
  arguments.push_back(weight_decay("0"));
  arguments.push_back(beta("beta1", "0.9", "Adam beta1 (subspace moments and the AdamW fallback)"));
  arguments.push_back(beta("beta2", "0.999", "Adam beta2 (subspace moments and the AdamW fallback)"));
  arguments.push_back(epsilon("1e-6", "Adam epsilon, denominator sqrt(v) + eps (HF style)"));
  arguments.push_back(integer("rank", rank, rank_doc, 0));
  arguments.push_back(integer("update_proj_gap", "200",
                              "steps between projection refreshes (refresh at steps 1, T+1, 2T+1, ...)",
                              1));
  arguments.push_back(number("scale", scale, scale_doc, 0.0));
}

std::vector<OptimizerDescription> build_catalog() {
  std::vector<OptimizerDescription> catalog;

  {
    OptimizerDescription d;
    d.name = "adamw";
    d.summary = "AdamW with PyTorch semantics: decay first, eps added to the bias-corrected sqrt(v)";
    d.reference = "torch.optim.AdamW";
    d.arguments.push_back(learning_rate("1e-3"));
    d.arguments.push_back(weight_decay("0.01"));
    d.arguments.push_back(beta("beta1", "0.9", "first-moment decay"));
    d.arguments.push_back(beta("beta2", "0.999", "second-moment decay"));
    d.arguments.push_back(epsilon("1e-8", "added to sqrt(v)/sqrt(1-beta2^t)"));
    catalog.push_back(std::move(d));
  }
  {
    OptimizerDescription d;
    d.name = "adamw-hf";
    d.summary = "AdamW as in HuggingFace transformers (GaLore/APOLLO): sqrt(v)+eps, decay after the update";
    d.reference = "transformers.optimization.AdamW (copied into GaLore and APOLLO)";
    d.arguments.push_back(learning_rate("1e-3"));
    d.arguments.push_back(weight_decay("0"));
    d.arguments.push_back(beta("beta1", "0.9", "first-moment decay"));
    d.arguments.push_back(beta("beta2", "0.999", "second-moment decay"));
    d.arguments.push_back(epsilon("1e-6", "added to sqrt(v); step size lr*sqrt(1-beta2^t)/(1-beta1^t)"));
    catalog.push_back(std::move(d));
  }
  {
    OptimizerDescription d;
    d.name = "lion";
    d.summary = "Lion: sign of an interpolated momentum; 1 state tensor";
    d.reference = "google/automl lion_pytorch.py (use 3-10x smaller lr and larger weight_decay than AdamW)";
    d.arguments.push_back(learning_rate("1e-4"));
    d.arguments.push_back(weight_decay("0"));
    d.arguments.push_back(beta("beta1", "0.9", "interpolation for the update direction sign(beta1*m + (1-beta1)*g)"));
    d.arguments.push_back(beta("beta2", "0.99", "momentum decay, applied after the step"));
    catalog.push_back(std::move(d));
  }
  {
    OptimizerDescription d;
    d.name = "adan";
    d.summary = "Adan: Nesterov-style adaptive momentum with a gradient-difference term; 4 state tensors";
    d.reference = "sail-sg/Adan adan.py (betas are 1 - the paper's; README recommends weight_decay 0.02)";
    d.arguments.push_back(learning_rate("1e-3"));
    d.arguments.push_back(weight_decay("0"));
    d.arguments.push_back(beta("beta1", "0.98", "first-moment decay"));
    d.arguments.push_back(beta("beta2", "0.92", "gradient-difference moment decay"));
    d.arguments.push_back(beta("beta3", "0.99", "second-moment decay"));
    d.arguments.push_back(epsilon("1e-8", "added to sqrt(n)/sqrt(1-beta3^t)"));
    d.arguments.push_back(number("max_grad_norm", "0",
                                 "clip the global gradient norm of the tensors passed to one step "
                                 "to this (0: off; under TP/PP prefer the engine's clip)", 0.0));
    d.arguments.push_back(choice("decay_form", "prox", {"prox", "decoupled"},
                                 "prox: p = (p - upd)/(1 + lr*wd) (reference default); decoupled: "
                                 "p *= 1 - lr*wd, then p -= upd"));
    catalog.push_back(std::move(d));
  }
  {
    OptimizerDescription d;
    d.name = "muon";
    d.summary = "Muon: Newton-Schulz-orthogonalised momentum for hidden matrices, AdamW for the rest";
    d.reference = "KellerJordan/Muon muon.py (MuonWithAuxAdam); Moonlight for scaling = rms";
    add_muon_arguments(d.arguments);
    catalog.push_back(std::move(d));
  }
  {
    OptimizerDescription d;
    d.name = "muonbp";
    d.summary = "MuonBP: Muon orthogonalising each tensor-parallel shard locally, the full matrix every period steps";
    d.reference = "arXiv 2510.16981 (paper only; open choices documented per argument)";
    add_muon_arguments(d.arguments);
    // Open choices (OPTIMIZERS.md: scaling form, period, eta_block/eta_full, Nesterov):
    //  - scaling, nesterov, lr, momentum: Muon's defaults, so `period 1` is exactly `muon` and a
    //    muon -> muonbp comparison changes nothing but the block steps.
    //  - period 5: the one third-party choice OPTIMIZERS.md records; full steps at t = 1, 6, 11,
    //    ... (the paper's t mod P = 0 with t counted from 0), so the first update is a full one.
    //  - block_lr_ratio 0 = automatic 1/sqrt(k) for k blocks: k orthogonal blocks stacked have
    //    operator norm up to sqrt(k), so eta_block = eta_full/sqrt(k) bounds a block step's
    //    spectral norm by a full step's, the quantity the paper's two-step-size analysis
    //    controls; the paper reports that tying the two (ratio 1) converges worse.
    //  - blocks 2 (only without tensor parallelism): the smallest split for which block steps
    //    differ from full ones. The blocks are the shards tensor parallelism of that degree would
    //    make (rows of column-parallel weights, per Q/K/V and gate/up section; columns of
    //    row-parallel ones), so blocks = k on one process reproduces a TP = k run.
    d.arguments.push_back(integer("period", "5",
                                  "full orthogonalisation (all-gather over the TP group) every "
                                  "period steps, at t = 1, P+1, 2P+1, ...; block steps otherwise "
                                  "(1 = Muon; default 5, a published third-party choice)", 1));
    d.arguments.push_back(number("block_lr_ratio", "0",
                                 "eta_block / eta_full; 0 = automatic 1/sqrt(blocks), bounding a "
                                 "block step's spectral norm by a full step's (the paper: tying "
                                 "them converges worse)", 0.0));
    d.arguments.push_back(integer("blocks", "2",
                                  "without tensor parallelism, block steps split each hidden matrix "
                                  "into this many blocks exactly as tensor parallelism of that degree "
                                  "would shard it (so blocks k on one process = a TP k run; default "
                                  "2: the smallest split that differs from Muon); ignored under TP, "
                                  "where the shards are the blocks", 1));
    catalog.push_back(std::move(d));
  }
  {
    OptimizerDescription d;
    d.name = "apollo";
    d.summary = "APOLLO: channel-wise gradient scaling estimated in a random low-rank space; HF AdamW elsewhere";
    d.reference = "zhuhanqing/APOLLO apollo_torch (AdamW + GradientProjector)";
    add_low_rank_arguments(d.arguments, "0.01", "0",
                           "projection rank r; 0 = min(rows, cols)/4 of the full matrix (hidden/4)",
                           "1", "gradient scale factor; the reference multiplies by sqrt(scale)");
    d.arguments.push_back(choice("scale_type", "channel", {"channel", "tensor"},
                                 "channel: per-row or per-column norm ratio; tensor: one ratio per matrix"));
    d.arguments.push_back(boolean("norm_growth_limiter", "true",
                                  "limit the scaled gradient's norm growth per step (Fira)"));
    d.arguments.push_back(number("norm_growth_limit", "1.01",
                                 "largest allowed ratio of the scaled gradient's norm to last step's",
                                 1.0));
    d.arguments.push_back(boolean("scale_front", "false",
                                  "apply sqrt(scale) before the norm-growth limiter instead of after"));
    catalog.push_back(std::move(d));
  }
  {
    OptimizerDescription d;
    d.name = "apollo-mini";
    d.summary = "APOLLO-Mini: rank-1 random projection, one tensor-wise scaling factor; HF AdamW elsewhere";
    d.reference = "zhuhanqing/APOLLO apollo_torch (rank 1, scale_type tensor, scale 128)";
    add_low_rank_arguments(d.arguments, "0.01", "1", "projection rank r (0 = min(rows, cols)/4)",
                           "128", "gradient scale factor; the reference multiplies by sqrt(scale)");
    d.arguments.push_back(choice("scale_type", "tensor", {"channel", "tensor"},
                                 "channel: per-row or per-column norm ratio; tensor: one ratio per matrix"));
    d.arguments.push_back(boolean("norm_growth_limiter", "true",
                                  "limit the scaled gradient's norm growth per step (Fira)"));
    d.arguments.push_back(number("norm_growth_limit", "1.01",
                                 "largest allowed ratio of the scaled gradient's norm to last step's",
                                 1.0));
    d.arguments.push_back(boolean("scale_front", "false",
                                  "apply sqrt(scale) before the norm-growth limiter instead of after"));
    catalog.push_back(std::move(d));
  }
  {
    OptimizerDescription d;
    d.name = "galore";
    d.summary = "GaLore: Adam in the top-r singular subspace of the gradient (SVD every T steps); HF AdamW elsewhere";
    d.reference = "jiaweizzhao/GaLore galore_torch (AdamW + GaLoreProjector, proj_type std)";
    add_low_rank_arguments(d.arguments, "0.01", "0",
                           "projection rank r; 0 = min(rows, cols)/4 of the full matrix (hidden/4)",
                           "0.25", "scale of the update projected back to the full space");
    catalog.push_back(std::move(d));
  }
  {
    OptimizerDescription d;
    d.name = "smmf";
    d.summary = "SMMF: rank-1 non-negative factorised moments of the most-square reshape plus 1-bit momentum signs";
    d.reference = "KwangryeolPark/Official.SMMF SMMF.py (weight_decay_mode adamw)";
    d.arguments.push_back(learning_rate("1e-3"));
    d.arguments.push_back(weight_decay("0"));
    d.arguments.push_back(beta("beta", "0.9", "momentum decay at t = 1; b_m = beta*growth_rate^(t-1)"));
    d.arguments.push_back(epsilon("1e-8", "added to sqrt(v)"));
    // The code's default is -0.5 but its own docstring and the paper give -0.8 for transformers,
    // which is all Tandem trains.
    d.arguments.push_back(number("decay_rate", "-0.8",
                                 "second-moment schedule b_v = 1 - t^decay_rate (-0.8 for "
                                 "transformers per the paper; the code's generic default is -0.5)",
                                 -1.0, 0.0));
    d.arguments.push_back(number("growth_rate", "0.999", "momentum schedule growth", 0.0, 1.0));
    d.arguments.push_back(boolean("vector_reshape", "true",
                                  "factorise 1-D parameters too (reshaped to most square)"));
    catalog.push_back(std::move(d));
  }
  return catalog;
}

const std::vector<OptimizerDescription>& catalog_storage() {
  static const std::vector<OptimizerDescription> catalog = build_catalog();
  return catalog;
}

std::string describe_valid(const OptimizerArgument& argument) {
  std::ostringstream out;
  switch (argument.type) {
    case ArgumentType::Boolean: return "expected true or false";
    case ArgumentType::Choice: {
      out << "expected one of ";
      for (std::size_t i = 0; i < argument.choices.size(); ++i) {
        out << (i ? ", " : "") << argument.choices[i];
      }
      return out.str();
    }
    case ArgumentType::Number:
    case ArgumentType::Integer: break;
  }
  out << (argument.type == ArgumentType::Integer ? "expected an integer" : "expected a number");
  if (argument.minimum && argument.maximum) {
    out << " in " << (argument.minimum_exclusive ? "(" : "[") << *argument.minimum << ", "
        << *argument.maximum << (argument.maximum_exclusive ? ")" : "]");
  } else if (argument.minimum) {
    out << (argument.minimum_exclusive ? " > " : " >= ") << *argument.minimum;
  } else if (argument.maximum) {
    out << (argument.maximum_exclusive ? " < " : " <= ") << *argument.maximum;
  }
  return out.str();
}

bool in_range(const OptimizerArgument& argument, double value) {
  if (!std::isfinite(value)) return false;
  if (argument.minimum) {
    if (argument.minimum_exclusive ? value <= *argument.minimum : value < *argument.minimum) return false;
  }
  if (argument.maximum) {
    if (argument.maximum_exclusive ? value >= *argument.maximum : value > *argument.maximum) return false;
  }
  return true;
}

std::optional<double> parse_number(std::string_view text) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

std::optional<std::int64_t> parse_integer(std::string_view text) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

[[noreturn]] void bad_value(const OptimizerDescription& optimizer, const OptimizerArgument& argument,
                            const std::string& value, const char* origin) {
  throw std::invalid_argument(std::string(origin) + ": '" + value + "' is not valid for " +
                              argument.key + " of optimizer '" + optimizer.name + "'; " +
                              describe_valid(argument));
}

bool applies_low_rank(const OptimizerTensorShape& shape) {
  return shape.attention_or_mlp && !shape.is_vector && shape.rows > 1 && shape.cols > 1;
}

bool applies_muon(const OptimizerTensorShape& shape) {
  return shape.hidden_matrix && !shape.is_vector && shape.rows > 1 && shape.cols > 1;
}

// Newton-Schulz on an r x c matrix (transposed to r <= c first): normalisation, then per
// iteration A = X X^T (2r^2c), A*A (2r^3), B = b*A + c*A*A (3r^2), B*X (2r^2c), a*X + B*X (2rc).
double newton_schulz_flops(std::int64_t rows, std::int64_t cols, std::int64_t iterations) {
  const double r = static_cast<double>(std::min(rows, cols));
  const double c = static_cast<double>(std::max(rows, cols));
  const double per_iteration = 4 * r * r * c + 2 * r * r * r + 3 * r * r + 2 * r * c;
  return 3 * r * c + static_cast<double>(iterations) * per_iteration;
}

// Elementwise FLOPs per parameter (one per add, multiply, divide, square root, sign):
constexpr double kAdamWFlopsPerElement = 14;    // decay 1, m 3, v 4, denominator 3, update 3
constexpr double kAdamWHfFlopsPerElement = 14;  // m 3, v 4, denominator 2, update 3, decay 2
constexpr double kLionFlopsPerElement = 10;     // decay 1, interpolation 3, sign 1, update 2, m 3
constexpr double kAdanFlopsPerElement = 23;     // diff 1, m 3, d 3, n 6, den 3, upd 5, p 2
constexpr double kMuonFlopsPerElement = 10;     // momentum 3, nesterov 3, scale 1, decay 1, update 2
constexpr double kSmmfFlopsPerElement = 21;     // decompress 3, m 3, v 4, |m| 1, sums 4, den 2,
                                                // divide 1, update 2, decay 1
constexpr double kLowRankMomentFlops = 10;      // subspace Adam without the parameter update
constexpr double kGaussianFlops = 20;           // one projection entry (Box-Muller, amortised)

}  // namespace

const OptimizerArgument* OptimizerDescription::find_argument(std::string_view key) const {
  for (const OptimizerArgument& argument : arguments) {
    if (argument.key == key) return &argument;
  }
  return nullptr;
}

std::span<const OptimizerDescription> optimizer_catalog() { return catalog_storage(); }

const OptimizerDescription* find_optimizer(std::string_view name) {
  for (const OptimizerDescription& description : catalog_storage()) {
    if (description.name == name) return &description;
  }
  return nullptr;
}

std::string optimizer_names() {
  std::string names;
  for (const OptimizerDescription& description : catalog_storage()) {
    if (!names.empty()) names += ", ";
    names += description.name;
  }
  return names;
}

double ResolvedOptimizer::number(const std::string& key) const {
  const auto it = numbers.find(key);
  if (it == numbers.end()) {
    throw std::out_of_range("optimizer '" + name + "' has no numeric argument '" + key + "'");
  }
  return it->second;
}

std::int64_t ResolvedOptimizer::integer(const std::string& key) const {
  return static_cast<std::int64_t>(std::llround(number(key)));
}

bool ResolvedOptimizer::boolean(const std::string& key) const { return number(key) != 0.0; }

const std::string& ResolvedOptimizer::choice(const std::string& key) const {
  const auto it = choices.find(key);
  if (it == choices.end()) {
    throw std::out_of_range("optimizer '" + name + "' has no choice argument '" + key + "'");
  }
  return it->second;
}

ResolvedOptimizer resolve_optimizer(std::string_view name,
                                    const std::map<std::string, std::string>& optimizer_args,
                                    std::optional<double> training_lr,
                                    std::optional<double> training_weight_decay,
                                    std::uint64_t seed) {
  const OptimizerDescription* description = find_optimizer(name);
  if (description == nullptr) {
    throw std::invalid_argument("strategy.optimizer: '" + std::string(name) +
                                "' is not a known optimizer; valid: " + optimizer_names());
  }
  for (const auto& [key, value] : optimizer_args) {
    if (description->find_argument(key) == nullptr) {
      std::string keys;
      for (const OptimizerArgument& argument : description->arguments) {
        keys += (keys.empty() ? "" : ", ") + argument.key;
      }
      throw std::invalid_argument("strategy.optimizer_args." + key +
                                  ": unknown argument for optimizer '" + description->name +
                                  "'; valid keys: " + keys);
    }
  }
  if (training_lr && (!std::isfinite(*training_lr) || *training_lr < 0)) {
    throw std::invalid_argument("training.lr: " + std::to_string(*training_lr) +
                                " is not a valid learning rate; expected a number >= 0");
  }
  if (training_weight_decay && (!std::isfinite(*training_weight_decay) || *training_weight_decay < 0)) {
    throw std::invalid_argument("training.weight_decay: " + std::to_string(*training_weight_decay) +
                                " is not a valid weight decay; expected a number >= 0");
  }

  ResolvedOptimizer resolved;
  resolved.name = description->name;
  resolved.seed = seed;
  for (const OptimizerArgument& argument : description->arguments) {
    const auto given = optimizer_args.find(argument.key);
    const bool from_user = given != optimizer_args.end();
    const std::string text = from_user ? given->second : argument.default_value;
    const std::string origin = from_user ? "strategy.optimizer_args." + argument.key
                                         : "optimizer catalog default " + argument.key;
    switch (argument.type) {
      case ArgumentType::Choice: {
        if (std::find(argument.choices.begin(), argument.choices.end(), text) ==
            argument.choices.end()) {
          bad_value(*description, argument, text, origin.c_str());
        }
        resolved.choices[argument.key] = text;
        break;
      }
      case ArgumentType::Boolean: {
        if (text != "true" && text != "false") bad_value(*description, argument, text, origin.c_str());
        resolved.numbers[argument.key] = text == "true" ? 1.0 : 0.0;
        break;
      }
      case ArgumentType::Integer: {
        const auto value = parse_integer(text);
        if (!value || !in_range(argument, static_cast<double>(*value))) {
          bad_value(*description, argument, text, origin.c_str());
        }
        resolved.numbers[argument.key] = static_cast<double>(*value);
        break;
      }
      case ArgumentType::Number: {
        const auto value = parse_number(text);
        if (!value || !in_range(argument, *value)) bad_value(*description, argument, text, origin.c_str());
        double chosen = *value;
        if (!from_user && argument.key == "lr" && training_lr) chosen = *training_lr;
        if (!from_user && argument.key == "weight_decay" && training_weight_decay) {
          chosen = *training_weight_decay;
        }
        if (argument.key == "lr") {
          resolved.lr = chosen;
        } else if (argument.key == "weight_decay") {
          resolved.weight_decay = chosen;
        } else {
          resolved.numbers[argument.key] = chosen;
        }
        break;
      }
    }
  }
  return resolved;
}

std::int64_t low_rank_projection_rank(const ResolvedOptimizer& optimizer,
                                      const OptimizerTensorShape& shape) {
  std::int64_t rank = optimizer.integer("rank");
  if (rank <= 0) rank = std::max<std::int64_t>(1, std::min(shape.full_rows, shape.full_cols) / 4);
  return std::min(rank, std::min(shape.rows, shape.cols));
}

std::pair<std::int64_t, std::int64_t> most_square_factorization(std::int64_t n) {
  if (n <= 0) return {0, 0};
  std::int64_t root = static_cast<std::int64_t>(std::sqrt(static_cast<double>(n)));
  while (root * root > n) --root;
  while ((root + 1) * (root + 1) <= n) ++root;
  for (std::int64_t b = root; b >= 1; --b) {
    if (n % b == 0) return {n / b, b};
  }
  return {n, 1};
}

double optimizer_state_bytes(const ResolvedOptimizer& optimizer, const OptimizerTensorShape& shape) {
  const double n = static_cast<double>(shape.rows) * static_cast<double>(shape.cols);
  const std::string& name = optimizer.name;
  if (name == "adamw" || name == "adamw-hf") return 8 * n;
  if (name == "lion") return 4 * n;
  if (name == "adan") return 16 * n;
  if (name == "muon" || name == "muonbp") return applies_muon(shape) ? 4 * n : 8 * n;
  if (name == "apollo" || name == "apollo-mini" || name == "galore") {
    if (!applies_low_rank(shape)) return 8 * n;
    const double r = static_cast<double>(low_rank_projection_rank(optimizer, shape));
    const double longer = static_cast<double>(std::max(shape.rows, shape.cols));
    const double shorter = static_cast<double>(std::min(shape.rows, shape.cols));
    return 4 * (2 * r * longer + r * shorter);  // subspace m and v, plus the stored projection
  }
  if (name == "smmf") {
    if (shape.is_vector && !optimizer.boolean("vector_reshape")) return 8 * n;
    const auto [a, b] = most_square_factorization(shape.rows * shape.cols);
    return 4 * 2 * static_cast<double>(a + b) + std::ceil(n / 8);
  }
  throw std::invalid_argument("strategy.optimizer: '" + name + "' is not a known optimizer");
}

double optimizer_step_flops(const ResolvedOptimizer& optimizer, const OptimizerTensorShape& shape) {
  const double n = static_cast<double>(shape.rows) * static_cast<double>(shape.cols);
  const std::string& name = optimizer.name;
  if (name == "adamw") return kAdamWFlopsPerElement * n;
  if (name == "adamw-hf") return kAdamWHfFlopsPerElement * n;
  if (name == "lion") return kLionFlopsPerElement * n;
  if (name == "adan") return kAdanFlopsPerElement * n;
  if (name == "muon" || name == "muonbp") {
    if (!applies_muon(shape)) return kAdamWFlopsPerElement * n;
    const std::int64_t iterations = optimizer.integer("ns_steps");
    const bool sharded = shape.rows != shape.full_rows || shape.cols != shape.full_cols;
    // Full steps orthogonalise the whole matrix (every tensor-parallel rank redundantly).
    const double full = newton_schulz_flops(shape.full_rows, shape.full_cols, iterations);
    if (name == "muon") return kMuonFlopsPerElement * n + full;
    // Block steps: the local TP shard, or the `blocks` parts tensor parallelism of that degree
    // would make of an unsharded matrix (row blocks, or column blocks for split_dim 1).
    double block = 0;
    if (sharded) {
      block = newton_schulz_flops(shape.rows, shape.cols, iterations);
    } else {
      const bool by_rows = shape.split_dim != 1;
      const std::int64_t extent = by_rows ? shape.rows : shape.cols;
      const std::int64_t blocks = std::min<std::int64_t>(optimizer.integer("blocks"), extent);
      for (std::int64_t i = 0; i < blocks; ++i) {
        const std::int64_t width = extent * (i + 1) / blocks - extent * i / blocks;
        block += by_rows ? newton_schulz_flops(width, shape.cols, iterations)
                         : newton_schulz_flops(shape.rows, width, iterations);
      }
    }
    const double period = static_cast<double>(optimizer.integer("period"));
    return kMuonFlopsPerElement * n + (full + (period - 1) * block) / period;
  }
  if (name == "apollo" || name == "apollo-mini" || name == "galore") {
    if (!applies_low_rank(shape)) return kAdamWHfFlopsPerElement * n;
    const double r = static_cast<double>(low_rank_projection_rank(optimizer, shape));
    const double longer = static_cast<double>(std::max(shape.rows, shape.cols));
    const double shorter = static_cast<double>(std::min(shape.rows, shape.cols));
    const double gap = static_cast<double>(optimizer.integer("update_proj_gap"));
    const double project = 2 * n * r;                    // R = G P^T or P^T G
    const double moments = kLowRankMomentFlops * r * longer;
    if (name == "galore") {
      // Thin SVD (R-SVD, Golub & Van Loan: 4*m*n^2 + 22*n^3 for m >= n) every gap steps, the
      // back-projection P*N (2*n*r), then scale, update and decay (5 per element).
      const double svd = 4 * longer * shorter * shorter + 22 * shorter * shorter * shorter;
      return project + moments + 2 * n * r + 5 * n + svd / gap;
    }
    // Norms of N and R (4 per subspace element), G*s, the limiter's norm and division,
    // sqrt(scale), update and decay (9 per element), a new Gaussian projection every gap steps.
    return project + moments + 4 * r * longer + 9 * n + kGaussianFlops * r * shorter / gap;
  }
  if (name == "smmf") {
    const auto [a, b] = most_square_factorization(shape.rows * shape.cols);
    return kSmmfFlopsPerElement * n + 4 * static_cast<double>(a + b);
  }
  throw std::invalid_argument("strategy.optimizer: '" + name + "' is not a known optimizer");
}

double optimizer_step_comm_bytes(const ResolvedOptimizer& optimizer,
                                 const OptimizerTensorShape& shape, int tensor_parallel) {
  if (optimizer.name != "muon" && optimizer.name != "muonbp") return 0;
  if (tensor_parallel <= 1 || !applies_muon(shape)) return 0;
  const bool sharded = shape.rows != shape.full_rows || shape.cols != shape.full_cols;
  if (!sharded) return 0;
  const double gathered = 4.0 * static_cast<double>(shape.full_rows) * static_cast<double>(shape.full_cols);
  if (optimizer.name == "muon") return gathered;
  return gathered / static_cast<double>(optimizer.integer("period"));
}

OptimizerTensorShape local_optimizer_shape(const ParameterTensorSpec& tensor, int tp) {
  OptimizerTensorShape shape;
  shape.rows = tensor.tp_shard_dim == 0 ? tensor.rows / tp : tensor.rows;
  shape.cols = tensor.tp_shard_dim == 1 ? tensor.cols / tp : tensor.cols;
  shape.full_rows = tensor.rows;
  shape.full_cols = tensor.cols;
  shape.hidden_matrix = tensor.role == TensorRole::HiddenMatrix;
  shape.attention_or_mlp = tensor.attention_or_mlp;
  shape.is_vector = tensor.role == TensorRole::Vector;
  shape.split_dim = tensor.tp_shard_dim == 1 ? 1 : 0;
  return shape;
}

}  // namespace tandem::strategy
