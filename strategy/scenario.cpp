#include "strategy/scenario.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>

#include "strategy/embedded_files.hpp"
#include "strategy/optimizer_catalog.hpp"
#include "strategy/schema.hpp"
#include "strategy/units.hpp"

namespace tandem::strategy {

std::string ValidationError::message() const {
  std::string text = path;
  if (!value.empty())
    text += ": '" + value + "' is invalid; expected " + expected;
  else
    text += ": missing; expected " + expected;
  return text;
}

namespace {

std::string join_messages(const std::vector<ValidationError>& errors) {
  std::string text;
  for (const ValidationError& error : errors) text += (text.empty() ? "" : "\n") + error.message();
  return text;
}

}  // namespace

ScenarioError::ScenarioError(std::vector<ValidationError> errors)
    : std::runtime_error(join_messages(errors)), errors_(std::move(errors)) {}

namespace {

// Reads typed values out of a schema-checked document, falling back to the schema's defaults
// (the table is the one source of defaults).
class Values {
 public:
  explicit Values(const YAML::Node& document) : document_(document) {}

  // yaml-cpp: operator= on a Node assigns through it; reset() rebinds.
  YAML::Node node(const std::string& path) const {
    YAML::Node current;
    current.reset(document_);
    std::stringstream stream(path);
    std::string part;
    while (std::getline(stream, part, '.')) {
      const YAML::Node& view = current;
      if (!view.IsMap() || !view[part]) return YAML::Node(YAML::NodeType::Undefined);
      current.reset(view[part]);
    }
    return current;
  }

  bool has(const std::string& path) const { return static_cast<bool>(node(path)); }

  std::string text(const std::string& path) const {
    const YAML::Node value = node(path);
    if (value && value.IsScalar()) return value.Scalar();
    const SchemaKey* key = find_schema_key(path);
    return key ? key->default_text : std::string();
  }

  int integer(const std::string& path) const { return std::stoi(text(path)); }
  double number(const std::string& path) const { return parse_number(text(path)); }
  bool boolean(const std::string& path) const { return text(path) == "true"; }

 private:
  YAML::Node document_;
};

template <typename Enum>
Enum choose(const std::string& text, std::initializer_list<std::pair<const char*, Enum>> options) {
  for (const auto& [name, value] : options)
    if (text == name) return value;
  return options.begin()->second;  // unreachable after schema checks
}

CollectiveKind collective_kind_from(const std::string& text) {
  return choose<CollectiveKind>(text, {{"all-reduce", CollectiveKind::AllReduce},
                                       {"all-gather", CollectiveKind::AllGather},
                                       {"reduce-scatter", CollectiveKind::ReduceScatter},
                                       {"all-to-all", CollectiveKind::AllToAll},
                                       {"broadcast", CollectiveKind::Broadcast},
                                       {"send-recv", CollectiveKind::SendRecv}});
}

CollectiveAlgorithm algorithm_from(const std::string& text) {
  return choose<CollectiveAlgorithm>(text, {{"auto", CollectiveAlgorithm::Auto},
                                            {"ring", CollectiveAlgorithm::Ring},
                                            {"tree", CollectiveAlgorithm::Tree},
                                            {"hierarchical", CollectiveAlgorithm::Hierarchical}});
}

// Merges the preset's fields under the explicit ones.
YAML::Node resolve_model_node(const YAML::Node& model, std::vector<ValidationError>& errors) {
  YAML::Node merged(YAML::NodeType::Map);
  if (model["preset"]) {
    const std::string preset = model["preset"].as<std::string>();
    if (const EmbeddedFile* file = find_embedded(builtin_model_files(), preset)) {
      const YAML::Node preset_node = YAML::Load(file->contents);
      for (auto it = preset_node.begin(); it != preset_node.end(); ++it) {
        const std::string key = it->first.as<std::string>();
        if (key != "source") merged[key] = it->second;
      }
    } else {
      errors.push_back({"model.preset", preset, "a built-in model preset"});
    }
  }
  for (auto it = model.begin(); it != model.end(); ++it) merged[it->first.as<std::string>()] = it->second;
  return merged;
}

ModelSpec build_model(const YAML::Node& document, std::vector<ValidationError>& errors) {
  const YAML::Node merged = resolve_model_node(document["model"], errors);
  YAML::Node wrapper;
  wrapper["model"] = merged;
  Values v(wrapper);
  ModelSpec m;
  for (const char* required : {"layers", "hidden", "heads", "vocab", "seq_len"}) {
    if (!merged[required])
      errors.push_back({std::string("model.") + required, "",
                        "a value (set it, or choose a model.preset that does)"});
  }
  if (!errors.empty()) return m;
  m.preset = merged["preset"] ? merged["preset"].as<std::string>() : "";
  m.layers = v.integer("model.layers");
  m.hidden = v.integer("model.hidden");
  m.heads = v.integer("model.heads");
  m.kv_heads = merged["kv_heads"] ? v.integer("model.kv_heads") : m.heads;
  m.vocab = v.integer("model.vocab");
  m.seq_len = v.integer("model.seq_len");
  m.activation = choose<Activation>(v.text("model.activation"),
                                    {{"gelu", Activation::Gelu}, {"swiglu", Activation::SwiGlu}});
  m.norm = choose<Norm>(v.text("model.norm"), {{"layernorm", Norm::LayerNorm}, {"rmsnorm", Norm::RmsNorm}});
  m.position = choose<Position>(v.text("model.position"),
                                {{"learned", Position::Learned}, {"rope", Position::Rope}});
  m.tied_embeddings = v.boolean("model.tied_embeddings");
  m.rope_theta = v.number("model.rope_theta");
  m.dropout = v.number("model.dropout");
  if (merged["ffn_hidden"]) {
    m.ffn_hidden = v.integer("model.ffn_hidden");
  } else if (m.activation == Activation::SwiGlu) {
    // LLaMA's rule: 2/3 of 4h, rounded up to a multiple of 256.
    const int raw = (8 * m.hidden + 2) / 3;
    m.ffn_hidden = (raw + 255) / 256 * 256;
  } else {
    m.ffn_hidden = 4 * m.hidden;
  }
  if (m.hidden % m.heads != 0)
    errors.push_back({"model.hidden", std::to_string(m.hidden),
                      "a multiple of model.heads (" + std::to_string(m.heads) + ")"});
  if (m.heads % m.kv_heads != 0)
    errors.push_back({"model.kv_heads", std::to_string(m.kv_heads),
                      "a divisor of model.heads (" + std::to_string(m.heads) + ")"});
  if (m.position == Position::Rope && m.hidden % m.heads == 0 && m.head_dim() % 2 != 0)
    errors.push_back({"model.position", "rope", "an even head dimension (hidden/heads) for RoPE"});
  return m;
}

LinkParameters read_link(const Values& v, const std::string& prefix, LinkParameters fallback) {
  if (v.has(prefix + ".bandwidth")) fallback.bandwidth_bytes_per_s = parse_bandwidth(v.text(prefix + ".bandwidth"));
  if (v.has(prefix + ".latency")) fallback.latency_s = parse_duration(v.text(prefix + ".latency"));
  return fallback;
}

NicParameters read_nic(const Values& v, const std::string& prefix, NicParameters fallback) {
  if (v.has(prefix + ".count")) fallback.count = v.integer(prefix + ".count");
  if (v.has(prefix + ".bandwidth")) fallback.bandwidth_bytes_per_s = parse_bandwidth(v.text(prefix + ".bandwidth"));
  if (v.has(prefix + ".latency")) fallback.latency_s = parse_duration(v.text(prefix + ".latency"));
  return fallback;
}

// cluster.sites and cluster.wan: sites in node order covering every node, a WAN between them.
void read_sites(const Values& v, ClusterSpec& c, std::vector<ValidationError>& errors) {
  const YAML::Node sites = v.node("cluster.sites");
  const bool wan_given = v.has("cluster.wan");
  if (!sites || sites.size() == 0) {
    c.sites.push_back({"cluster", 0, c.nodes});
    if (wan_given)
      errors.push_back({"cluster.wan", "a map", "two or more cluster.sites for a wide-area link to join"});
    return;
  }
  int first = 0;
  for (std::size_t i = 0; i < sites.size(); ++i) {
    YAML::Node wrapper;
    wrapper["site"] = sites[i];
    Values site(wrapper);
    SiteSpec spec;
    spec.name = site.has("site.name") ? site.text("site.name") : "site" + std::to_string(i);
    spec.first_node = first;
    spec.nodes = site.integer("site.nodes");
    for (const SiteSpec& other : c.sites)
      if (other.name == spec.name)
        errors.push_back({"cluster.sites[" + std::to_string(i) + "].name", spec.name, "a name no other site has"});
    first += spec.nodes;
    c.sites.push_back(spec);
  }
  if (first != c.nodes)
    errors.push_back({"cluster.sites", std::to_string(first) + " nodes in sites",
                      "site node counts that sum to cluster.nodes (" + std::to_string(c.nodes) + ")"});
  if (c.sites.size() < 2) {
    if (wan_given)
      errors.push_back({"cluster.wan", "a map", "two or more cluster.sites for a wide-area link to join"});
    return;
  }
  if (!v.has("cluster.wan.bandwidth"))
    errors.push_back({"cluster.wan.bandwidth", "",
                      "the bandwidth of each site's wide-area link (e.g. 10Gbps) with " +
                          std::to_string(c.sites.size()) + " sites"});
  else
    c.wan.bandwidth_bytes_per_s = parse_bandwidth(v.text("cluster.wan.bandwidth"));
  if (!v.has("cluster.wan.latency"))
    errors.push_back({"cluster.wan.latency", "",
                      "the one-way latency between sites (e.g. 30ms) with " + std::to_string(c.sites.size()) +
                          " sites"});
  else
    c.wan.latency_s = parse_duration(v.text("cluster.wan.latency"));
}

ClusterSpec build_cluster(const YAML::Node& document, const std::filesystem::path& base_dir,
                          std::vector<ValidationError>& errors) {
  Values v(document);
  ClusterSpec c;
  c.gpu = v.text("cluster.gpu");
  try {
    c.profile = load_hardware_profile(c.gpu, base_dir, "cluster.gpu");
  } catch (const ScenarioError& error) {
    errors.insert(errors.end(), error.errors().begin(), error.errors().end());
    return c;
  }
  c.nodes = v.integer("cluster.nodes");
  c.gpus_per_node = v.has("cluster.gpus_per_node") ? v.integer("cluster.gpus_per_node")
                                                   : c.profile.default_gpus_per_node;
  c.threads_per_rank = v.integer("cluster.threads_per_rank");
  c.intra_node = read_link(v, "cluster.intra_node", c.profile.intra_node);
  c.nic = read_nic(v, "cluster.nic", c.profile.nic);
  c.fabric.topology = choose<Topology>(v.text("cluster.fabric.topology"),
                                       {{"fat-tree", Topology::FatTree},
                                        {"rail-optimized", Topology::RailOptimized},
                                        {"star", Topology::Star}});
  c.fabric.oversubscription = v.number("cluster.fabric.oversubscription");
  c.fabric.nodes_per_leaf = v.integer("cluster.fabric.nodes_per_leaf");
  c.fabric.switch_latency_s = parse_duration(v.text("cluster.fabric.switch_latency"));
  if (c.threads_per_rank > 1 && !c.is_cpu())
    errors.push_back({"cluster.threads_per_rank", std::to_string(c.threads_per_rank),
                      "1 for GPU profiles (threads_per_rank applies to gpu: cpu)"});

  read_sites(v, c, errors);

  const YAML::Node groups = v.node("cluster.node_groups");
  if (!groups || groups.size() == 0) {
    c.node_groups.push_back({0, c.nodes, c.profile, c.intra_node, c.nic});
    return c;
  }
  int first = 0;
  for (std::size_t i = 0; i < groups.size(); ++i) {
    YAML::Node wrapper;
    wrapper["group"] = groups[i];
    Values g(wrapper);
    const std::string path = "cluster.node_groups[" + std::to_string(i) + "]";
    NodeGroup group;
    group.first_node = first;
    group.nodes = g.integer("group.nodes");
    group.profile = c.profile;
    if (g.has("group.gpu")) {
      try {
        group.profile = load_hardware_profile(g.text("group.gpu"), base_dir, path + ".gpu");
      } catch (const ScenarioError& error) {
        errors.insert(errors.end(), error.errors().begin(), error.errors().end());
      }
    }
    // A group's own profile supplies its link defaults unless the group overrides them.
    const bool own_profile = g.has("group.gpu");
    group.intra_node = read_link(g, "group.intra_node", own_profile ? group.profile.intra_node : c.intra_node);
    group.nic = read_nic(g, "group.nic", own_profile ? group.profile.nic : c.nic);
    first += group.nodes;
    c.node_groups.push_back(group);
  }
  if (first != c.nodes)
    errors.push_back({"cluster.node_groups", std::to_string(first) + " nodes in groups",
                      "group node counts that sum to cluster.nodes (" + std::to_string(c.nodes) + ")"});
  return c;
}

OuterSpec read_outer(const Values& v) {
  OuterSpec o;
  o.method = choose<OuterMethod>(v.text("strategy.outer.method"), {{"none", OuterMethod::None},
                                                                  {"snoo", OuterMethod::Snoo},
                                                                  {"diloco", OuterMethod::DiLoCo},
                                                                  {"streaming-diloco", OuterMethod::StreamingDiLoCo},
                                                                  {"noloco", OuterMethod::NoLoCo}});
  const OuterDefaults defaults = outer_defaults(o.method);
  o.inner_steps = v.has("strategy.outer.inner_steps") ? v.integer("strategy.outer.inner_steps") : defaults.inner_steps;
  o.outer_lr = v.has("strategy.outer.outer_lr") ? v.number("strategy.outer.outer_lr") : defaults.outer_lr;
  o.momentum = v.has("strategy.outer.momentum") ? v.number("strategy.outer.momentum") : defaults.momentum;
  o.fragments = v.integer("strategy.outer.fragments");
  o.delay = v.integer("strategy.outer.delay");
  o.mix = v.number("strategy.outer.mix");
  o.quantize = choose<OuterQuantization>(v.text("strategy.outer.quantize"), {{"none", OuterQuantization::None},
                                                                           {"fp8", OuterQuantization::Fp8},
                                                                           {"int4", OuterQuantization::Int4}});
  o.group_size = v.integer("strategy.outer.group_size");
  if (o.method != OuterMethod::StreamingDiLoCo) {
    // Fragments, delay, mixing and quantization belong to Streaming DiLoCo; the other methods
    // exchange everything at once, in fp32, and take the synchronised parameters as they are.
    o.fragments = 1;
    o.delay = 0;
    o.mix = 0;
    o.quantize = OuterQuantization::None;
  }
  return o;
}

void check_outer(const ModelSpec& m, const StrategySpec& s, std::vector<ValidationError>& errors) {
  const OuterSpec& o = s.outer;
  if (!o.enabled()) return;
  const std::string method(to_string(o.method));
  if (o.method == OuterMethod::Snoo && s.dp != 1)
    errors.push_back({"strategy.outer.method", method,
                      "dp = 1 for snoo (SNOO runs one worker; dp is " + std::to_string(s.dp) +
                          "): use diloco, streaming-diloco or noloco for several workers"});
  if (o.method == OuterMethod::NoLoCo && s.dp % o.group_size != 0)
    errors.push_back({"strategy.outer.group_size", std::to_string(o.group_size),
                      "a divisor of dp (" + std::to_string(s.dp) + ") of at least 2: NoLoCo averages groups of "
                      "group_size workers"});
  if (o.method == OuterMethod::StreamingDiLoCo) {
    if (o.fragments > m.layers)
      errors.push_back({"strategy.outer.fragments", std::to_string(o.fragments),
                        "at most model.layers (" + std::to_string(m.layers) + ")"});
    if (o.inner_steps % o.fragments != 0)
      errors.push_back({"strategy.outer.inner_steps", std::to_string(o.inner_steps),
                        "a multiple of strategy.outer.fragments (" + std::to_string(o.fragments) +
                            "): one fragment is synchronised every inner_steps / fragments steps"});
    else if (o.delay >= o.inner_steps / o.fragments)
      errors.push_back({"strategy.outer.delay", std::to_string(o.delay),
                        "less than inner_steps / fragments (" + std::to_string(o.inner_steps / o.fragments) +
                            "): one fragment's exchange at a time"});
  }
  if (s.zero > 0)
    errors.push_back({"strategy.zero", std::to_string(s.zero),
                      "0 with strategy.outer.method: " + method +
                          " (ZeRO shards across the data-parallel replicas, which are the outer method's "
                          "independent workers)"});
}

StrategySpec build_strategy(const YAML::Node& document, const ClusterSpec& cluster,
                            std::vector<ValidationError>& errors) {
  Values v(document);
  StrategySpec s;
  s.tp = v.integer("strategy.tp");
  s.pp = v.integer("strategy.pp");
  s.cp = v.integer("strategy.cp");
  s.dp_auto = v.text("strategy.dp") == "auto";
  const int gpus = cluster.gpus();
  const int model_parallel = s.tp * s.pp * s.cp;
  if (s.dp_auto) {
    if (gpus % model_parallel != 0) {
      errors.push_back({"strategy.dp", "auto",
                        "tp*pp*cp (" + std::to_string(model_parallel) + ") to divide the " +
                            std::to_string(gpus) + " GPUs (nodes * gpus_per_node)"});
      s.dp = 1;
    } else {
      s.dp = gpus / model_parallel;
    }
  } else {
    s.dp = v.integer("strategy.dp");
    if (s.dp * model_parallel != gpus)
      errors.push_back({"strategy.dp", std::to_string(s.dp),
                        "dp*tp*pp*cp = " + std::to_string(s.dp * model_parallel) +
                            " to equal the " + std::to_string(gpus) +
                            " GPUs (nodes * gpus_per_node); use dp: auto or dp = " +
                            (gpus % model_parallel == 0 ? std::to_string(gpus / model_parallel)
                                                        : std::string("(no integer works)"))});
  }
  s.sequence_parallel = v.boolean("strategy.sequence_parallel");
  s.zero = v.integer("strategy.zero");
  s.micro_batch = v.integer("strategy.micro_batch");
  s.global_batch = v.has("strategy.global_batch") ? v.integer("strategy.global_batch")
                                                  : s.micro_batch * s.dp;
  s.schedule = choose<Schedule>(v.text("strategy.schedule"), {{"gpipe", Schedule::GPipe},
                                                              {"1f1b", Schedule::OneFOneB},
                                                              {"interleaved", Schedule::Interleaved}});
  s.virtual_stages = v.integer("strategy.virtual_stages");
  s.recompute = choose<Recompute>(v.text("strategy.recompute"), {{"none", Recompute::None},
                                                                 {"selective", Recompute::Selective},
                                                                 {"full", Recompute::Full}});
  const std::string precision = v.has("strategy.precision") ? v.text("strategy.precision")
                                : cluster.is_cpu()          ? std::string("fp32")
                                                            : v.text("strategy.precision");
  s.precision = choose<Precision>(precision, {{"fp32", Precision::Fp32},
                                              {"bf16", Precision::Bf16},
                                              {"fp8", Precision::Fp8}});
  s.optimizer = v.text("strategy.optimizer");
  if (const YAML::Node args = v.node("strategy.optimizer_args"); args && args.IsMap()) {
    for (auto it = args.begin(); it != args.end(); ++it) {
      if (!it->second.IsScalar()) {
        errors.push_back({"strategy.optimizer_args." + it->first.as<std::string>(), "a non-scalar",
                          "a number, integer, boolean or choice"});
        continue;
      }
      s.optimizer_args[it->first.as<std::string>()] = it->second.Scalar();
    }
  }
  s.grad_bucket_bytes = parse_bytes(v.text("strategy.grad_bucket"));
  s.overlap_grad_reduce = v.boolean("strategy.overlap_grad_reduce");
  s.overlap_tp_input_grad = v.boolean("strategy.overlap_tp_input_grad");
  s.collective_algorithm = algorithm_from(v.text("strategy.collective_algorithm"));
  s.outer = read_outer(v);
  return s;
}

void check_strategy(const ModelSpec& m, const StrategySpec& s, const ClusterSpec& cluster,
                    std::vector<ValidationError>& errors) {
  auto divisors = [](int n) {
    std::string text;
    for (int d = 1; d <= n; ++d)
      if (n % d == 0) text += (text.empty() ? "" : ", ") + std::to_string(d);
    return text;
  };
  if (m.heads % s.tp != 0)
    errors.push_back({"strategy.tp", std::to_string(s.tp),
                      "a divisor of model.heads (" + std::to_string(m.heads) + "): " + divisors(m.heads)});
  else if (m.kv_heads % s.tp != 0)
    errors.push_back({"strategy.tp", std::to_string(s.tp),
                      "a divisor of model.kv_heads (" + std::to_string(m.kv_heads) + "): " + divisors(m.kv_heads)});
  if (m.ffn_hidden % s.tp != 0)
    errors.push_back({"strategy.tp", std::to_string(s.tp),
                      "a divisor of model.ffn_hidden (" + std::to_string(m.ffn_hidden) + ")"});
  const int chunks = s.pp * s.virtual_stages;
  if (m.layers % chunks != 0)
    errors.push_back({"strategy.pp", std::to_string(s.pp),
                      "pp * virtual_stages (" + std::to_string(chunks) +
                          ") to divide model.layers (" + std::to_string(m.layers) + ")"});
  if (s.global_batch % (s.micro_batch * s.dp) != 0)
    errors.push_back({"strategy.global_batch", std::to_string(s.global_batch),
                      "a multiple of micro_batch * dp (" + std::to_string(s.micro_batch) + " * " +
                          std::to_string(s.dp) + " = " + std::to_string(s.micro_batch * s.dp) + ")"});
  if (s.schedule == Schedule::Interleaved) {
    if (s.virtual_stages < 2)
      errors.push_back({"strategy.virtual_stages", std::to_string(s.virtual_stages),
                        "at least 2 with schedule: interleaved"});
    if (s.pp < 2)
      errors.push_back({"strategy.schedule", "interleaved", "pp of at least 2 (or schedule: 1f1b)"});
    else if (s.global_batch % (s.micro_batch * s.dp) == 0 && s.micro_batches() % s.pp != 0)
      errors.push_back({"strategy.global_batch", std::to_string(s.global_batch),
                        "micro-batches per pipeline (" + std::to_string(s.micro_batches()) +
                            ") to be a multiple of pp (" + std::to_string(s.pp) +
                            ") for the interleaved schedule"});
  } else if (s.virtual_stages != 1) {
    errors.push_back({"strategy.virtual_stages", std::to_string(s.virtual_stages),
                      "1 unless schedule: interleaved"});
  }
  if (m.seq_len % s.cp != 0)
    errors.push_back({"strategy.cp", std::to_string(s.cp),
                      "a divisor of model.seq_len (" + std::to_string(m.seq_len) + ")"});
  if (s.sequence_parallel && (m.seq_len / s.cp) % s.tp != 0)
    errors.push_back({"strategy.sequence_parallel", "true",
                      "seq_len / cp (" + std::to_string(m.seq_len / s.cp) + ") divisible by tp (" +
                          std::to_string(s.tp) + ")"});
  check_outer(m, s, errors);
  for (const NodeGroup& group : cluster.node_groups) {
    if (s.precision == Precision::Fp8 && group.profile.peak_flops_fp8 <= 0)
      errors.push_back({"strategy.precision", "fp8",
                        "fp32 or bf16: the " + group.profile.name + " profile has no FP8 peak"});
  }
}

TrainingSpec build_training(const YAML::Node& document, const std::filesystem::path& base_dir) {
  Values v(document);
  TrainingSpec t;
  if (v.has("training.tokens")) t.tokens = v.number("training.tokens");
  t.steps = v.integer("training.steps");
  if (v.has("training.lr")) t.lr = v.number("training.lr");
  t.warmup_steps = v.integer("training.warmup_steps");
  t.lr_schedule = choose<LrSchedule>(v.text("training.lr_schedule"), {{"constant", LrSchedule::Constant},
                                                                      {"cosine", LrSchedule::Cosine},
                                                                      {"linear", LrSchedule::Linear}});
  t.min_lr_ratio = v.number("training.min_lr_ratio");
  t.grad_clip = v.number("training.grad_clip");
  if (v.has("training.weight_decay")) t.weight_decay = v.number("training.weight_decay");
  t.seed = static_cast<std::uint64_t>(std::stoull(v.text("training.seed")));
  t.data = v.text("training.data");
  if (t.data != "synthetic") {
    std::filesystem::path data(t.data);
    if (data.is_relative()) data = base_dir / data;
    t.data = data.lexically_normal().string();
  }
  t.eval_every = v.integer("training.eval_every");
  t.eval_batches = v.integer("training.eval_batches");
  t.checkpoint_every = v.integer("training.checkpoint_every");
  std::filesystem::path checkpoints(v.text("training.checkpoint_dir"));
  if (checkpoints.is_relative()) checkpoints = base_dir / checkpoints;
  t.checkpoint_dir = checkpoints.lexically_normal();
  return t;
}

std::vector<SweepAxis> build_sweep(const YAML::Node& document) {
  std::vector<SweepAxis> axes;
  const YAML::Node sweep = document["sweep"];
  if (!sweep || !sweep.IsMap()) return axes;
  for (auto it = sweep.begin(); it != sweep.end(); ++it) {
    SweepAxis axis;
    axis.key = it->first.as<std::string>();
    // A named copy: `it->second` belongs to a temporary that a range-for would outlive.
    const YAML::Node values = it->second;
    for (const auto& value : values) axis.values.push_back(value.Scalar());
    axes.push_back(std::move(axis));
  }
  return axes;
}

YAML::Node parse_yaml(const std::string& text) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& error) {
    throw ScenarioError({{"(yaml)", "line " + std::to_string(error.mark.line + 1) + ", column " +
                                        std::to_string(error.mark.column + 1),
                          "well-formed YAML (" + error.msg + ")"}});
  }
}

}  // namespace

const NodeGroup& ClusterSpec::group_of_node(int node) const {
  return node_groups.at(static_cast<std::size_t>(group_index_of_node(node)));
}

int ClusterSpec::site_of_node(int node) const {
  for (std::size_t i = 0; i < sites.size(); ++i)
    if (node >= sites[i].first_node && node < sites[i].first_node + sites[i].nodes) return static_cast<int>(i);
  return sites.empty() ? 0 : static_cast<int>(sites.size()) - 1;
}

int ClusterSpec::group_index_of_node(int node) const {
  for (std::size_t i = 0; i < node_groups.size(); ++i) {
    const NodeGroup& group = node_groups[i];
    if (node >= group.first_node && node < group.first_node + group.nodes) return static_cast<int>(i);
  }
  return static_cast<int>(node_groups.size()) - 1;
}

Scenario scenario_from_document(const YAML::Node& document, const std::filesystem::path& base_dir) {
  std::vector<ValidationError> errors = check_document(document);
  if (!errors.empty()) throw ScenarioError(std::move(errors));

  Scenario scenario;
  scenario.document = YAML::Clone(document);
  scenario.base_dir = base_dir;
  Values v(document);
  scenario.name = v.text("name");
  scenario.description = v.text("description");

  const bool has_model = static_cast<bool>(document["model"]);
  const bool has_collective = static_cast<bool>(document["collective"]);
  if (has_model == has_collective) {
    errors.push_back({has_model ? "collective" : "model", "",
                      has_model ? "either model (+ strategy) or collective, not both"
                                : "a model section (with strategy) or a collective section"});
  }
  if (has_collective && document["strategy"])
    errors.push_back({"strategy", "a map", "no strategy section in a collective scenario"});

  scenario.cluster = build_cluster(document, base_dir, errors);
  scenario.training = build_training(document, base_dir);
  scenario.sweep = build_sweep(document);
  if (document["predicted"]) {
    PredictedSpec predicted;
    if (v.has("predicted.step_time_s")) predicted.step_time_s = v.number("predicted.step_time_s");
    if (v.has("predicted.tokens_per_s")) predicted.tokens_per_s = v.number("predicted.tokens_per_s");
    if (v.has("predicted.mfu")) predicted.mfu = v.number("predicted.mfu");
    if (v.has("predicted.peak_bytes_per_gpu"))
      predicted.peak_bytes_per_gpu = v.number("predicted.peak_bytes_per_gpu");
    predicted.profile = v.text("predicted.profile");
    scenario.predicted = predicted;
  }
  if (!errors.empty()) throw ScenarioError(std::move(errors));

  if (has_collective) {
    CollectiveSpec collective;
    collective.kind = collective_kind_from(v.text("collective.kind"));
    for (const auto& size : document["collective"]["sizes"]) collective.sizes_bytes.push_back(parse_bytes(size.Scalar()));
    collective.algorithm = algorithm_from(v.text("collective.algorithm"));
    collective.peer = v.text("collective.peer") == "next" ? SendRecvPeer::Next : SendRecvPeer::Half;
    if (scenario.cluster.gpus() < 2)
      errors.push_back({"cluster.nodes", std::to_string(scenario.cluster.nodes),
                        "at least 2 GPUs in the cluster for a collective"});
    scenario.collective = collective;
  } else {
    ModelSpec model = build_model(document, errors);
    if (errors.empty()) {
      StrategySpec strategy = build_strategy(document, scenario.cluster, errors);
      if (errors.empty()) check_strategy(model, strategy, scenario.cluster, errors);
      if (errors.empty()) {
        try {
          resolve_optimizer(strategy.optimizer, strategy.optimizer_args, scenario.training.lr,
                            scenario.training.weight_decay, scenario.training.seed);
        } catch (const std::invalid_argument& error) {
          // The catalog names the key in its message: "strategy.optimizer_args.<key>: ...".
          const std::string message = error.what();
          const auto colon = message.find(": ");
          errors.push_back({colon == std::string::npos ? "strategy.optimizer_args" : message.substr(0, colon),
                            "", colon == std::string::npos ? message : message.substr(colon + 2)});
        }
      }
      scenario.strategy = strategy;
    }
    scenario.model = model;
  }
  if (!errors.empty()) throw ScenarioError(std::move(errors));
  return scenario;
}

Scenario parse_scenario(const std::string& yaml_text, const std::filesystem::path& base_dir) {
  return scenario_from_document(parse_yaml(yaml_text), base_dir);
}

Scenario load_scenario(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) {
    throw ScenarioError({{"(file)", path.string(),
                          "a readable scenario YAML file (built-in scenarios: " +
                              [] {
                                std::string names;
                                for (const auto& name : builtin_scenario_names())
                                  names += (names.empty() ? "" : ", ") + name;
                                return names;
                              }() +
                              ")"}});
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::filesystem::path absolute = std::filesystem::absolute(path);
  return parse_scenario(buffer.str(), absolute.parent_path());
}

std::vector<std::string> builtin_scenario_names() {
  std::vector<std::string> names;
  for (const EmbeddedFile& file : builtin_scenario_files()) names.emplace_back(file.name);
  return names;
}

Scenario load_builtin_scenario(const std::string& name) {
  const EmbeddedFile* file = find_embedded(builtin_scenario_files(), name);
  if (file == nullptr) {
    std::string names;
    for (const auto& candidate : builtin_scenario_names()) names += (names.empty() ? "" : ", ") + candidate;
    throw ScenarioError({{"(scenario)", name, "a built-in scenario: " + names}});
  }
  // Relative paths in a built-in scenario resolve against the working directory.
  return parse_scenario(file->contents, std::filesystem::current_path());
}

YAML::Node with_override(const YAML::Node& document, const std::string& key_path,
                         const std::string& value) {
  const SchemaKey* key = find_schema_key(key_path);
  if (key == nullptr || !key->sweepable)
    throw ScenarioError({{key_path, value, "a scalar scenario key such as strategy.tp or model.layers"}});
  YAML::Node parsed;
  try {
    parsed = YAML::Load(value);
  } catch (const YAML::Exception&) {
    parsed = YAML::Node(value);
  }
  auto errors = check_value(*key, parsed, key_path);
  if (!errors.empty()) throw ScenarioError(std::move(errors));

  YAML::Node copy = YAML::Clone(document);
  std::vector<std::string> parts;
  std::stringstream stream(key_path);
  std::string part;
  while (std::getline(stream, part, '.')) parts.push_back(part);
  // yaml-cpp nodes are handles: operator= writes through them, reset() rebinds.
  YAML::Node current;
  current.reset(copy);
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    if (!current[parts[i]].IsMap()) current[parts[i]] = YAML::Node(YAML::NodeType::Map);
    YAML::Node next = current[parts[i]];
    current.reset(next);
  }
  current[parts.back()] = parsed;
  return copy;
}

SweepAxis parse_sweep_argument(const std::string& argument) {
  const auto equals = argument.find('=');
  if (equals == std::string::npos || equals == 0 || equals + 1 == argument.size())
    throw ScenarioError({{"--sweep", argument, "KEY=V1,V2,... e.g. strategy.tp=2,4,8"}});
  SweepAxis axis;
  axis.key = argument.substr(0, equals);
  const SchemaKey* key = find_schema_key(axis.key);
  if (key == nullptr || !key->sweepable)
    throw ScenarioError({{"--sweep", axis.key, "a scalar scenario key such as strategy.tp or model.layers"}});
  std::stringstream values(argument.substr(equals + 1));
  std::string value;
  std::vector<ValidationError> errors;
  while (std::getline(values, value, ',')) {
    auto more = check_value(*key, YAML::Load(value), "--sweep " + axis.key);
    errors.insert(errors.end(), more.begin(), more.end());
    axis.values.push_back(value);
  }
  if (!errors.empty()) throw ScenarioError(std::move(errors));
  return axis;
}

std::vector<std::vector<std::pair<std::string, std::string>>> sweep_points(
    const std::vector<SweepAxis>& axes) {
  std::vector<std::vector<std::pair<std::string, std::string>>> points{{}};
  for (const SweepAxis& axis : axes) {
    std::vector<std::vector<std::pair<std::string, std::string>>> next;
    for (const auto& point : points) {
      for (const std::string& value : axis.values) {
        auto extended = point;
        extended.emplace_back(axis.key, value);
        next.push_back(std::move(extended));
      }
    }
    points = std::move(next);
  }
  return points;
}

std::string document_to_yaml(const YAML::Node& document) {
  YAML::Emitter out;
  out << document;
  return std::string(out.c_str()) + "\n";
}

std::string_view to_string(Activation value) { return value == Activation::Gelu ? "gelu" : "swiglu"; }
std::string_view to_string(Norm value) { return value == Norm::LayerNorm ? "layernorm" : "rmsnorm"; }
std::string_view to_string(Position value) { return value == Position::Learned ? "learned" : "rope"; }
std::string_view to_string(Topology value) {
  switch (value) {
    case Topology::FatTree: return "fat-tree";
    case Topology::RailOptimized: return "rail-optimized";
    case Topology::Star: return "star";
  }
  return "?";
}
std::string_view to_string(Schedule value) {
  switch (value) {
    case Schedule::GPipe: return "gpipe";
    case Schedule::OneFOneB: return "1f1b";
    case Schedule::Interleaved: return "interleaved";
  }
  return "?";
}
std::string_view to_string(Recompute value) {
  switch (value) {
    case Recompute::None: return "none";
    case Recompute::Selective: return "selective";
    case Recompute::Full: return "full";
  }
  return "?";
}
std::string_view to_string(Precision value) {
  switch (value) {
    case Precision::Fp32: return "fp32";
    case Precision::Bf16: return "bf16";
    case Precision::Fp8: return "fp8";
  }
  return "?";
}
std::string_view to_string(LrSchedule value) {
  switch (value) {
    case LrSchedule::Constant: return "constant";
    case LrSchedule::Cosine: return "cosine";
    case LrSchedule::Linear: return "linear";
  }
  return "?";
}

}  // namespace tandem::strategy
