#include "strategy/schema.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "strategy/embedded_files.hpp"
#include "strategy/optimizer_catalog.hpp"
#include "strategy/units.hpp"

namespace tandem::strategy {
namespace {

using Type = ValueType;

std::vector<std::string> embedded_names(std::span<const EmbeddedFile> files) {
  std::vector<std::string> names;
  for (const EmbeddedFile& file : files) names.emplace_back(file.name);
  return names;
}

std::vector<std::string> optimizer_name_list() {
  std::vector<std::string> names;
  for (const OptimizerDescription& description : optimizer_catalog())
    names.push_back(description.name);
  return names;
}

struct Table {
  std::vector<SchemaKey> keys;

  SchemaKey& add(std::string path, Type type, std::string doc) {
    SchemaKey key;
    key.path = std::move(path);
    key.type = type;
    key.doc = std::move(doc);
    key.sweepable = type != Type::Section && type != Type::SectionList &&
                    type != Type::OptimizerArguments && type != Type::SweepMap;
    keys.push_back(std::move(key));
    return keys.back();
  }
};

SchemaKey& with_default(SchemaKey& key, std::string text) {
  key.default_text = std::move(text);
  return key;
}
SchemaKey& at_least(SchemaKey& key, double minimum) {
  key.minimum = minimum;
  return key;
}
SchemaKey& with_unit(SchemaKey& key, std::string unit) {
  key.unit = std::move(unit);
  return key;
}
SchemaKey& one_of(SchemaKey& key, std::vector<std::string> choices) {
  key.choices = std::move(choices);
  return key;
}

// The link keys (bandwidth, latency) appear at cluster level and inside node groups.
void add_link_keys(Table& table, const std::string& prefix, bool in_group) {
  const std::string where = in_group ? " for this group's nodes" : "";
  table.add(prefix + "intra_node", Type::Section,
            "GPU-to-GPU links inside a node (NVLink/NVSwitch)" + where +
                "; defaults come from the GPU profile");
  with_unit(table.add(prefix + "intra_node.bandwidth", Type::Bandwidth,
                      "bandwidth per GPU, per direction, into the node's switch"),
            "GB/s");
  with_unit(table.add(prefix + "intra_node.latency", Type::Duration,
                      "one-way latency of an intra-node transfer"),
            "us");
  table.add(prefix + "nic", Type::Section, "network interfaces per node" + where);
  at_least(table.add(prefix + "nic.count", Type::Integer,
                     "NICs per node; GPUs are spread evenly over them (rail i serves GPUs "
                     "i*gpus_per_node/count ...)"),
           1);
  with_unit(table.add(prefix + "nic.bandwidth", Type::Bandwidth, "bandwidth of each NIC, per direction"),
            "Gbps");
  with_unit(table.add(prefix + "nic.latency", Type::Duration,
                      "one-way latency through the fabric between two NICs"),
            "us");
}

Table build_table() {
  Table t;
  with_default(t.add("name", Type::String, "a short name for the scenario, shown in reports"),
               "scenario");
  t.add("description", Type::String, "free text describing the scenario");

  // ---- model -------------------------------------------------------------------------------
  t.add("model", Type::Section,
        "the GPT-style model; a preset fills every field, explicit fields override it");
  one_of(t.add("model.preset", Type::Choice, "a built-in model whose fields are the defaults"),
         embedded_names(builtin_model_files()));
  at_least(with_unit(t.add("model.layers", Type::Integer, "transformer layers"), "layers"), 1);
  at_least(t.add("model.hidden", Type::Integer, "hidden size h"), 1);
  at_least(t.add("model.heads", Type::Integer, "attention (query) heads a"), 1);
  at_least(with_default(t.add("model.kv_heads", Type::Integer,
                              "key/value heads; fewer than heads = grouped-query attention"),
                        "heads"),
           1);
  at_least(with_default(t.add("model.ffn_hidden", Type::Integer,
                              "MLP inner size; default 4*hidden for gelu, 8/3*hidden rounded "
                              "up to a multiple of 256 for swiglu"),
                        "by activation"),
           1);
  at_least(t.add("model.vocab", Type::Integer, "vocabulary size V"), 2);
  at_least(with_unit(t.add("model.seq_len", Type::Integer, "sequence length s"), "tokens"), 1);
  one_of(with_default(t.add("model.activation", Type::Choice, "MLP activation"), "gelu"),
         {"gelu", "swiglu"});
  one_of(with_default(t.add("model.norm", Type::Choice, "normalisation"), "layernorm"),
         {"layernorm", "rmsnorm"});
  one_of(with_default(t.add("model.position", Type::Choice,
                            "position encoding: learned table or rotary (RoPE)"),
                      "learned"),
         {"learned", "rope"});
  with_default(t.add("model.tied_embeddings", Type::Boolean,
                     "share the input embedding with the output head"),
               "false");
  at_least(with_default(t.add("model.rope_theta", Type::Number, "RoPE base frequency"), "10000"),
           1);
  at_least(with_default(t.add("model.dropout", Type::Number,
                              "dropout probability (hidden and attention); with dropout the "
                              "memory model keeps its masks, as Megatron does; the engine "
                              "trains with 0 only"),
                        "0"),
           0)
      .maximum = 0.9;

  // ---- cluster -----------------------------------------------------------------------------
  auto& cluster = t.add("cluster", Type::Section, "the machines the step runs on");
  cluster.required = true;
  auto& gpu = t.add("cluster.gpu", Type::String,
                    "hardware profile: a built-in name (" +
                        [] {
                          std::string list;
                          for (const auto& name : embedded_names(builtin_profile_files()))
                            list += (list.empty() ? "" : ", ") + name;
                          return list;
                        }() +
                        ") or a path to a profile YAML (e.g. one written by tandem-calibrate)");
  gpu.required = true;
  at_least(with_default(t.add("cluster.nodes", Type::Integer, "number of nodes"), "1"), 1);
  at_least(with_default(t.add("cluster.gpus_per_node", Type::Integer,
                              "GPUs per node; with gpu: cpu, ranks = nodes * gpus_per_node = the "
                              "MPI world size"),
                        "from profile"),
           1);
  at_least(with_default(t.add("cluster.threads_per_rank", Type::Integer,
                              "kernel threads per rank (cpu only)"),
                        "1"),
           1);
  add_link_keys(t, "cluster.", false);
  t.add("cluster.fabric", Type::Section, "the network joining the nodes' NICs");
  one_of(with_default(t.add("cluster.fabric.topology", Type::Choice,
                            "fat-tree: leaf switches under spine switches; rail-optimized: NIC "
                            "i of every node on leaf switch (rail) i; star: one ideal switch"),
                      "fat-tree"),
         {"fat-tree", "rail-optimized", "star"});
  at_least(with_default(t.add("cluster.fabric.oversubscription", Type::Number,
                              "leaf downlink to uplink bandwidth ratio (1 = full bisection)"),
                        "1"),
           1);
  at_least(with_default(t.add("cluster.fabric.nodes_per_leaf", Type::Integer,
                              "nodes under one leaf switch (fat-tree) or per rail switch "
                              "(rail-optimized)"),
                        "16"),
           1);
  with_unit(with_default(t.add("cluster.fabric.switch_latency", Type::Duration,
                               "latency added by each switch hop above the leaf"),
                         "0.5us"),
            "us");
  t.add("cluster.node_groups", Type::SectionList,
        "optional heterogeneous nodes: groups in node order whose counts sum to nodes; a "
        "group's keys override the cluster-level ones for its nodes");
  at_least(t.add("cluster.node_groups[].nodes", Type::Integer, "nodes in this group"), 1)
      .required = true;
  t.add("cluster.node_groups[].gpu", Type::String,
        "hardware profile of this group's GPUs (default: cluster.gpu)");
  add_link_keys(t, "cluster.node_groups[].", true);
  t.add("cluster.sites", Type::SectionList,
        "optional sites (datacenters) in node order whose counts sum to nodes; traffic between "
        "sites crosses cluster.wan (each site has one WAN uplink and downlink)");
  t.add("cluster.sites[].name", Type::String, "the site's name, shown in reports (default site<i>)");
  at_least(t.add("cluster.sites[].nodes", Type::Integer, "nodes in this site"), 1).required = true;
  t.add("cluster.wan", Type::Section,
        "the wide-area link between sites (required with two or more sites): every site reaches "
        "the others through its own uplink and downlink of this bandwidth");
  with_unit(t.add("cluster.wan.bandwidth", Type::Bandwidth,
                  "bandwidth of each site's WAN link, per direction"),
            "Gbps");
  with_unit(t.add("cluster.wan.latency", Type::Duration, "one-way latency between two sites"), "ms");

  // ---- strategy ----------------------------------------------------------------------------
  t.add("strategy", Type::Section, "how the model is split and trained");
  at_least(with_default(t.add("strategy.tp", Type::Integer, "tensor-parallel size"), "1"), 1);
  at_least(with_default(t.add("strategy.pp", Type::Integer, "pipeline-parallel size (stages)"),
                        "1"),
           1);
  at_least(with_default(t.add("strategy.dp", Type::IntegerOrAuto,
                              "data-parallel size; auto = gpus / (tp * pp * cp)"),
                        "auto"),
           1);
  at_least(with_default(t.add("strategy.cp", Type::Integer,
                              "context-parallel size (ring attention over the sequence)"),
                        "1"),
           1);
  with_default(t.add("strategy.sequence_parallel", Type::Boolean,
                     "Megatron sequence parallelism: norms and dropout sharded over tp, "
                     "all-gather/reduce-scatter instead of all-reduce"),
               "false");
  one_of(with_default(t.add("strategy.zero", Type::Choice,
                            "ZeRO stage: 1 shards optimizer state, 2 also gradients, 3 also "
                            "parameters, over the data-parallel group"),
                      "0"),
         {"0", "1", "2", "3"});
  at_least(with_unit(with_default(t.add("strategy.micro_batch", Type::Integer,
                                        "sequences per micro-batch per rank"),
                                  "1"),
                     "sequences"),
           1);
  at_least(with_unit(with_default(t.add("strategy.global_batch", Type::Integer,
                                        "sequences per step summed over data-parallel ranks; "
                                        "micro-batches per pipeline = global_batch / "
                                        "(micro_batch * dp)"),
                                  "micro_batch * dp"),
                     "sequences"),
           1);
  one_of(with_default(t.add("strategy.schedule", Type::Choice,
                            "pipeline schedule: gpipe (all forwards then all backwards), 1f1b, "
                            "interleaved 1f1b (virtual_stages chunks per rank)"),
                      "1f1b"),
         {"gpipe", "1f1b", "interleaved"});
  at_least(with_default(t.add("strategy.virtual_stages", Type::Integer,
                              "pipeline chunks per rank (interleaved schedule)"),
                        "1"),
           1);
  one_of(with_default(t.add("strategy.recompute", Type::Choice,
                            "activation recomputation: selective recomputes attention's "
                            "softmax/scores (Korthikanti et al.), full recomputes each layer"),
                      "none"),
         {"none", "selective", "full"});
  one_of(with_default(t.add("strategy.precision", Type::Choice,
                            "training precision (mixed precision with fp32 master weights for "
                            "bf16/fp8); cpu profiles default to fp32"),
                      "bf16"),
         {"fp32", "bf16", "fp8"});
  one_of(with_default(t.add("strategy.optimizer", Type::Choice, "the inner optimizer"), "adamw"),
         optimizer_name_list());
  t.add("strategy.optimizer_args", Type::OptimizerArguments,
        "hyperparameters of the chosen optimizer (see the optimizer table below); they take "
        "precedence over training.lr / training.weight_decay");
  with_unit(with_default(t.add("strategy.grad_bucket", Type::Bytes,
                               "size of a data-parallel gradient bucket"),
                         "25MB"),
            "bytes");
  with_default(t.add("strategy.overlap_grad_reduce", Type::Boolean,
                     "start each bucket's reduction as soon as its gradients are ready, "
                     "overlapping backward"),
               "true");
  with_default(t.add("strategy.overlap_tp_input_grad", Type::Boolean,
                     "overlap the tensor-parallel reduction of each linear layer's input gradient "
                     "with its weight-gradient GEMM (Megatron-LM since September 2021); false: "
                     "the reduction runs after it, exposed (Megatron-LM before)"),
               "true");
  one_of(with_default(t.add("strategy.collective_algorithm", Type::Choice,
                            "algorithm for the data-parallel collectives"),
                      "auto"),
         {"auto", "ring", "tree", "hierarchical"});
  t.add("strategy.outer", Type::Section,
        "low-communication training: workers are the data-parallel replicas (W = dp), train "
        "locally (no gradient all-reduce across workers) and meet every inner_steps steps "
        "(OPTIMIZERS.md, outer optimizers)");
  one_of(with_default(t.add("strategy.outer.method", Type::Choice,
                            "none: synchronous data parallelism; snoo: one worker, Nesterov step on "
                            "(slow - fast) every K steps; diloco: all-reduce of fp32 pseudo-gradients "
                            "every H steps, outer Nesterov SGD; streaming-diloco: one fragment at a "
                            "time every H/fragments steps, overlapped with delay steps, optionally "
                            "quantized; noloco: averaging within seeded random groups of group_size, "
                            "no all-reduce"),
                      "none"),
         {"none", "snoo", "diloco", "streaming-diloco", "noloco"});
  at_least(with_unit(with_default(t.add("strategy.outer.inner_steps", Type::Integer,
                                        "inner steps between two synchronisations of the same "
                                        "parameters (H; K for SNOO); defaults snoo 28, diloco 500, "
                                        "streaming-diloco 100, noloco 50"),
                                  "by method"),
                     "steps"),
           1);
  at_least(with_default(t.add("strategy.outer.outer_lr", Type::Number,
                              "outer learning rate; defaults snoo 0.68, diloco 0.7, "
                              "streaming-diloco 0.7, noloco 0.7"),
                        "by method"),
           0);
  at_least(with_default(t.add("strategy.outer.momentum", Type::Number,
                              "outer momentum (Nesterov for snoo and the DiLoCo family, heavy-ball "
                              "for noloco); defaults snoo 0.37, diloco 0.9, streaming-diloco 0.9, "
                              "noloco 0.5"),
                        "by method"),
           0)
      .maximum = 1;
  at_least(with_default(t.add("strategy.outer.fragments", Type::Integer,
                              "streaming-diloco: contiguous, equal parts of each rank's parameters, "
                              "synchronised one at a time (at most model.layers; must divide "
                              "inner_steps)"),
                        "4"),
           1);
  at_least(with_unit(with_default(t.add("strategy.outer.delay", Type::Integer,
                                        "streaming-diloco: inner steps a fragment's exchange "
                                        "overlaps before its outer update is applied (tau; less "
                                        "than inner_steps / fragments; 0 = blocking)"),
                                  "1"),
                     "steps"),
           0);
  at_least(with_default(t.add("strategy.outer.mix", Type::Number,
                              "streaming-diloco: alpha in theta = (1 - alpha) * global + alpha * "
                              "local after a fragment's outer update"),
                        "0.5"),
           0)
      .maximum = 1;
  one_of(with_default(t.add("strategy.outer.quantize", Type::Choice,
                            "streaming-diloco: exchanged values as fp8 (E4M3, 1 byte) or int4 "
                            "(0.5 byte), each block of 256 with an fp32 scale, accumulated in "
                            "fp32; none = fp32"),
                      "none"),
         {"none", "fp8", "int4"});
  at_least(with_default(t.add("strategy.outer.group_size", Type::Integer,
                              "noloco: workers averaged together at each outer step (divides dp)"),
                        "2"),
           2);

  // ---- training ----------------------------------------------------------------------------
  t.add("training", Type::Section,
        "what a real run needs (engine train); the twin uses tokens for time-to-train");
  at_least(with_unit(t.add("training.tokens", Type::Number,
                           "tokens to train on, for the time and GPU-hours to train"),
                     "tokens"),
           1);
  at_least(with_default(t.add("training.steps", Type::Integer,
                                "optimizer steps to run (inner steps with strategy.outer)"), "100"),
           1);
  at_least(t.add("training.lr", Type::Number,
                 "peak learning rate; overrides the optimizer's default"),
           0);
  at_least(with_default(t.add("training.warmup_steps", Type::Integer,
                              "linear warm-up steps from 0 to the peak learning rate"),
                        "0"),
           0);
  one_of(with_default(t.add("training.lr_schedule", Type::Choice,
                            "learning-rate schedule after warm-up"),
                      "cosine"),
         {"constant", "cosine", "linear"});
  at_least(with_default(t.add("training.min_lr_ratio", Type::Number,
                              "final learning rate of cosine/linear decay as a fraction of the "
                              "peak"),
                        "0.1"),
           0)
      .maximum = 1;
  at_least(with_default(t.add("training.grad_clip", Type::Number,
                              "clip the global gradient norm to this value; 0 = off"),
                        "1.0"),
           0);
  at_least(t.add("training.weight_decay", Type::Number,
                 "decoupled weight decay; overrides the optimizer's default"),
           0);
  at_least(with_default(t.add("training.seed", Type::Integer,
                              "seed for initialisation, data order and every random choice"),
                        "1234"),
           0);
  with_default(t.add("training.data", Type::String,
                     "synthetic (built-in corpus of known entropy), a path to a text file "
                     "(byte-level tokens) or an llm.c .bin token shard"),
               "synthetic");
  at_least(with_default(t.add("training.eval_every", Type::Integer,
                              "steps between evaluations on held-out data; 0 = only at the end"),
                        "0"),
           0);
  at_least(with_default(t.add("training.eval_batches", Type::Integer,
                              "global batches of held-out data per evaluation"),
                        "4"),
           1);
  at_least(with_default(t.add("training.checkpoint_every", Type::Integer,
                              "steps between checkpoints; 0 = never"),
                        "0"),
           0);
  with_default(t.add("training.checkpoint_dir", Type::Path,
                     "where checkpoints go, relative to the scenario file"),
               "runs/checkpoints");

  // ---- collective what-ifs -----------------------------------------------------------------
  t.add("collective", Type::Section,
        "a collective benchmark on the whole cluster instead of a training step (use either "
        "model+strategy or collective)");
  one_of(t.add("collective.kind", Type::Choice,
               "the operation; send-recv's pattern is collective.peer"),
         {"all-reduce", "all-gather", "reduce-scatter", "all-to-all", "broadcast", "send-recv"})
      .required = true;
  with_unit(t.add("collective.sizes", Type::BytesList,
                  "message sizes S (nccl-tests convention: the all-reduce buffer, the gathered "
                  "output of all-gather, the input of reduce-scatter)"),
            "bytes")
      .required = true;
  one_of(with_default(t.add("collective.algorithm", Type::Choice,
                            "ring, tree (double binary tree), hierarchical (intra-node then "
                            "inter-node), auto (fastest of these)"),
                      "auto"),
         {"auto", "ring", "tree", "hierarchical"});
  one_of(with_default(t.add("collective.peer", Type::Choice,
                            "send-recv only: half, rank i and rank i + n/2 exchange S both ways; "
                            "next, rank i sends S to i + 1 and receives from i - 1 (nccl-tests' "
                            "sendrecv)"),
                      "half"),
         {"half", "next"});

  // ---- sweep and prediction ----------------------------------------------------------------
  t.add("sweep", Type::SweepMap,
        "key path -> list of values; the cartesian product of all lists is simulated");
  t.add("predicted", Type::Section,
        "the twin's prediction for this scenario (written by simrun --best); engine train prints "
        "it beside the measured values");
  at_least(with_unit(t.add("predicted.step_time_s", Type::Number, "predicted step time"), "s"), 0);
  at_least(with_unit(t.add("predicted.tokens_per_s", Type::Number, "predicted throughput"),
                     "tokens/s"),
           0);
  at_least(t.add("predicted.mfu", Type::Number, "predicted model FLOPs utilisation"), 0);
  at_least(with_unit(t.add("predicted.peak_bytes_per_gpu", Type::Number,
                           "predicted peak memory per GPU"),
                     "bytes"),
           0);
  t.add("predicted.profile", Type::String, "the hardware profile the prediction used");
  for (SchemaKey& key : t.keys) {
    if (key.path.starts_with("predicted") || key.path == "name" || key.path == "description")
      key.sweepable = false;
  }
  return t;
}

const Table& table() {
  static const Table instance = build_table();
  return instance;
}

std::string scalar_text(const YAML::Node& node) {
  if (node.IsScalar()) return node.Scalar();
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a map";
  return "";
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += separator;
    out += items[i];
  }
  return out;
}

std::vector<std::string> child_keys(std::string_view parent) {
  std::vector<std::string> names;
  const std::string prefix = parent.empty() ? std::string() : std::string(parent) + ".";
  for (const SchemaKey& key : table().keys) {
    if (!key.path.starts_with(prefix)) continue;
    const std::string rest = key.path.substr(prefix.size());
    if (rest.empty() || rest.find('.') != std::string::npos) continue;
    names.push_back(rest.ends_with("[]") ? rest.substr(0, rest.size() - 2) : rest);
  }
  return names;
}

bool parse_integer(const std::string& text, long long& value) {
  try {
    std::size_t used = 0;
    value = std::stoll(text, &used);
    return used == text.size();
  } catch (...) {
    return false;
  }
}

void check_range(const SchemaKey& key, double value, const std::string& path,
                 const std::string& text, std::vector<ValidationError>& errors) {
  if (value < key.minimum || value > key.maximum) {
    std::ostringstream expected;
    if (std::isfinite(key.minimum) && std::isfinite(key.maximum))
      expected << "a value between " << key.minimum << " and " << key.maximum;
    else if (std::isfinite(key.minimum))
      expected << "a value of at least " << key.minimum;
    else
      expected << "a value of at most " << key.maximum;
    errors.push_back({path, text, expected.str()});
  }
}

void check_section(const YAML::Node& node, const std::string& schema_prefix,
                   const std::string& path_prefix, std::vector<ValidationError>& errors);

void check_node(const SchemaKey& key, const YAML::Node& node, const std::string& path,
                std::vector<ValidationError>& errors) {
  switch (key.type) {
    case Type::Section:
      if (!node.IsMap()) {
        errors.push_back({path, scalar_text(node), "a map with keys: " + join(child_keys(key.path), ", ")});
        return;
      }
      check_section(node, key.path, path, errors);
      return;
    case Type::SectionList:
      if (!node.IsSequence()) {
        errors.push_back({path, scalar_text(node), "a list of maps"});
        return;
      }
      for (std::size_t i = 0; i < node.size(); ++i) {
        const std::string item_path = path + "[" + std::to_string(i) + "]";
        if (!node[i].IsMap()) {
          errors.push_back({item_path, scalar_text(node[i]),
                            "a map with keys: " + join(child_keys(key.path + "[]"), ", ")});
          continue;
        }
        check_section(node[i], key.path + "[]", item_path, errors);
      }
      return;
    case Type::OptimizerArguments:
      // Keys depend on the optimizer chosen; validate_scenario checks them with the catalog.
      if (!node.IsMap()) errors.push_back({path, scalar_text(node), "a map of optimizer arguments"});
      return;
    case Type::SweepMap:
      if (!node.IsMap()) {
        errors.push_back({path, scalar_text(node), "a map of key path -> list of values"});
        return;
      }
      for (auto it = node.begin(); it != node.end(); ++it) {
        const std::string swept = it->first.as<std::string>();
        const SchemaKey* target = find_schema_key(swept);
        const std::string item_path = path + "." + swept;
        if (target == nullptr || !target->sweepable) {
          errors.push_back({item_path, swept,
                            "a scalar scenario key such as strategy.tp or model.layers"});
          continue;
        }
        if (!it->second.IsSequence() || it->second.size() == 0) {
          errors.push_back({item_path, scalar_text(it->second), "a non-empty list of values"});
          continue;
        }
        for (std::size_t i = 0; i < it->second.size(); ++i) {
          auto more = check_value(*target, it->second[i], item_path + "[" + std::to_string(i) + "]");
          errors.insert(errors.end(), more.begin(), more.end());
        }
      }
      return;
    default: {
      auto more = check_value(key, node, path);
      errors.insert(errors.end(), more.begin(), more.end());
    }
  }
}

void check_section(const YAML::Node& node, const std::string& schema_prefix,
                   const std::string& path_prefix, std::vector<ValidationError>& errors) {
  const std::string key_prefix = schema_prefix.empty() ? "" : schema_prefix + ".";
  const std::string shown_prefix = path_prefix.empty() ? "" : path_prefix + ".";
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar()) {
      errors.push_back({path_prefix, "a non-scalar key", "plain key names"});
      continue;
    }
    const std::string name = it->first.Scalar();
    const SchemaKey* key = find_schema_key(key_prefix + name);
    if (key == nullptr) key = find_schema_key(key_prefix + name + "[]");
    if (key == nullptr) {
      errors.push_back({shown_prefix + name, name,
                        "one of the keys " +
                            (path_prefix.empty() ? std::string("at the top level")
                                                 : "of " + path_prefix) +
                            ": " + join(child_keys(schema_prefix), ", ")});
      continue;
    }
    if (it->second.IsNull()) {
      errors.push_back({shown_prefix + name, "", "a value (" + std::string(to_string(key->type)) + ")"});
      continue;
    }
    check_node(*key, it->second, shown_prefix + name, errors);
  }
  // Required keys of this section.
  for (const SchemaKey& key : table().keys) {
    if (!key.required || !key.path.starts_with(key_prefix)) continue;
    const std::string rest = key.path.substr(key_prefix.size());
    if (rest.find('.') != std::string::npos || rest.ends_with("[]")) continue;
    if (!node[rest]) {
      // cluster is required at the top level; the rest only inside a section that is present.
      errors.push_back({shown_prefix + rest, "", "this key is required: " + key.doc});
    }
  }
}

}  // namespace

std::string_view to_string(ValueType type) {
  switch (type) {
    case Type::Section: return "section";
    case Type::SectionList: return "list of sections";
    case Type::String: return "string";
    case Type::Path: return "path";
    case Type::Integer: return "integer";
    case Type::IntegerOrAuto: return "integer or auto";
    case Type::Number: return "number";
    case Type::Boolean: return "boolean";
    case Type::Choice: return "choice";
    case Type::Bytes: return "bytes";
    case Type::BytesList: return "list of bytes";
    case Type::Bandwidth: return "bandwidth";
    case Type::Duration: return "duration";
    case Type::OptimizerArguments: return "optimizer arguments";
    case Type::SweepMap: return "sweep map";
  }
  return "?";
}

std::span<const SchemaKey> scenario_schema() { return table().keys; }

std::string schema_path(std::string_view indexed_path) {
  std::string out;
  bool in_index = false;
  for (char c : indexed_path) {
    if (c == '[') {
      in_index = true;
      out += "[]";
      continue;
    }
    if (c == ']') {
      in_index = false;
      continue;
    }
    if (!in_index) out += c;
  }
  return out;
}

const SchemaKey* find_schema_key(std::string_view path) {
  const std::string normalized = schema_path(path);
  for (const SchemaKey& key : table().keys)
    if (key.path == normalized) return &key;
  return nullptr;
}

std::vector<ValidationError> check_value(const SchemaKey& key, const YAML::Node& node,
                                         const std::string& path) {
  std::vector<ValidationError> errors;
  if (!node.IsScalar() && key.type != Type::BytesList) {
    errors.push_back({path, scalar_text(node), "a single " + std::string(to_string(key.type))});
    return errors;
  }
  const std::string text = node.IsScalar() ? node.Scalar() : std::string();
  switch (key.type) {
    case Type::String:
    case Type::Path:
      if (text.empty()) errors.push_back({path, text, "a non-empty " + std::string(to_string(key.type))});
      break;
    case Type::Integer:
    case Type::IntegerOrAuto: {
      if (key.type == Type::IntegerOrAuto && text == "auto") break;
      long long value = 0;
      if (!parse_integer(text, value)) {
        errors.push_back({path, text, key.type == Type::IntegerOrAuto ? "an integer or auto" : "an integer"});
        break;
      }
      check_range(key, static_cast<double>(value), path, text, errors);
      break;
    }
    case Type::Number: {
      try {
        check_range(key, parse_number(text), path, text, errors);
      } catch (const UnitError&) {
        errors.push_back({path, text, "a number (e.g. 0.1, 6e-4, 300e9)"});
      }
      break;
    }
    case Type::Boolean:
      if (text != "true" && text != "false")
        errors.push_back({path, text, "true or false"});
      break;
    case Type::Choice:
      if (std::find(key.choices.begin(), key.choices.end(), text) == key.choices.end())
        errors.push_back({path, text, "one of " + join(key.choices, ", ")});
      break;
    case Type::Bytes:
      try {
        check_range(key, parse_bytes(text), path, text, errors);
      } catch (const UnitError&) {
        errors.push_back({path, text, kBytesExpected});
      }
      break;
    case Type::BytesList:
      if (!node.IsSequence() || node.size() == 0) {
        errors.push_back({path, scalar_text(node), "a non-empty list of sizes, e.g. [1MiB, 64MiB, 1GiB]"});
        break;
      }
      for (std::size_t i = 0; i < node.size(); ++i) {
        const std::string item = path + "[" + std::to_string(i) + "]";
        if (!node[i].IsScalar()) {
          errors.push_back({item, scalar_text(node[i]), kBytesExpected});
          continue;
        }
        try {
          if (parse_bytes(node[i].Scalar()) <= 0) errors.push_back({item, node[i].Scalar(), "a size above 0"});
        } catch (const UnitError&) {
          errors.push_back({item, node[i].Scalar(), kBytesExpected});
        }
      }
      break;
    case Type::Bandwidth:
      try {
        if (parse_bandwidth(text) <= 0) errors.push_back({path, text, "a bandwidth above 0"});
      } catch (const UnitError&) {
        errors.push_back({path, text, kBandwidthExpected});
      }
      break;
    case Type::Duration:
      try {
        parse_duration(text);
      } catch (const UnitError&) {
        errors.push_back({path, text, kDurationExpected});
      }
      break;
    default:
      errors.push_back({path, text, "a value of type " + std::string(to_string(key.type))});
  }
  return errors;
}

std::vector<ValidationError> check_document(const YAML::Node& document) {
  std::vector<ValidationError> errors;
  if (!document.IsMap()) {
    errors.push_back({"(document)", scalar_text(document),
                      "a YAML map with the sections name, model, cluster, strategy, training, "
                      "collective, sweep"});
    return errors;
  }
  check_section(document, "", "", errors);
  return errors;
}

std::string scenario_reference_markdown() {
  std::ostringstream out;
  out << "# Scenario reference\n\n"
         "Generated from the schema table in `strategy/schema.cpp` (`simrun --schema-doc`); do "
         "not edit by hand.\n\n"
         "Units: `MB`/`GB` are 10^6/10^9 bytes, `MiB`/`GiB` are 2^20/2^30; `GB/s` is bytes per "
         "second, `Gbps` (or `Gb/s`) bits per second; durations take `ns`, `us`, `ms`, `s`. "
         "Relative paths are relative to the scenario file. Any scalar key can be swept: "
         "`sweep: {strategy.tp: [2, 4, 8]}` or `simrun --sweep strategy.tp=2,4,8`.\n\n"
         "| key | type | unit | default | valid values | meaning |\n"
         "|---|---|---|---|---|---|\n";
  for (const SchemaKey& key : table().keys) {
    std::string valid = join(key.choices, ", ");
    if (valid.empty() && std::isfinite(key.minimum)) {
      std::ostringstream range;
      range << ">= " << key.minimum;
      if (std::isfinite(key.maximum)) range << ", <= " << key.maximum;
      valid = range.str();
    }
    std::string default_text = key.required ? "required" : key.default_text;
    out << "| `" << key.path << "` | " << to_string(key.type) << " | " << key.unit << " | "
        << default_text << " | " << valid << " | " << key.doc << " |\n";
  }
  out << "\n## Optimizers\n\n"
         "`strategy.optimizer_args` takes the keys of the chosen optimizer; they override "
         "`training.lr` and `training.weight_decay`, which override the reference defaults.\n";
  for (const OptimizerDescription& optimizer : optimizer_catalog()) {
    out << "\n### `" << optimizer.name << "`\n\n" << optimizer.summary << " (" << optimizer.reference
        << ")\n\n| key | type | default | meaning |\n|---|---|---|---|\n";
    for (const OptimizerArgument& argument : optimizer.arguments) {
      std::string type;
      switch (argument.type) {
        case ArgumentType::Number: type = "number"; break;
        case ArgumentType::Integer: type = "integer"; break;
        case ArgumentType::Boolean: type = "boolean"; break;
        case ArgumentType::Choice: type = "one of " + join(argument.choices, ", "); break;
      }
      out << "| `" << argument.key << "` | " << type << " | " << argument.default_value << " | "
          << argument.doc << " |\n";
    }
  }
  return out.str();
}

}  // namespace tandem::strategy
