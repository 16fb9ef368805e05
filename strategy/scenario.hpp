#pragma once
// A scenario: model, cluster, strategy, training and optional collective what-if and sweep —
// the one input both executors read. load_scenario parses and validates a YAML file against the
// schema (strategy/schema.hpp) and the cross-field rules, filling every default, so the rest of
// the code never sees a missing value.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "strategy/hardware_profile.hpp"
#include "strategy/outer.hpp"
#include "strategy/program.hpp"
#include "strategy/validation_error.hpp"

namespace tandem::strategy {

enum class Activation : std::uint8_t { Gelu, SwiGlu };
enum class Norm : std::uint8_t { LayerNorm, RmsNorm };
enum class Position : std::uint8_t { Learned, Rope };
enum class Topology : std::uint8_t { FatTree, RailOptimized, Star };
enum class Schedule : std::uint8_t { GPipe, OneFOneB, Interleaved };
enum class Recompute : std::uint8_t { None, Selective, Full };
enum class LrSchedule : std::uint8_t { Constant, Cosine, Linear };

struct ModelSpec {
  std::string preset;  // "" when none
  int layers = 0;
  int hidden = 0;
  int heads = 0;
  int kv_heads = 0;
  int ffn_hidden = 0;
  int vocab = 0;
  int seq_len = 0;
  Activation activation = Activation::Gelu;
  Norm norm = Norm::LayerNorm;
  Position position = Position::Learned;
  bool tied_embeddings = false;
  double rope_theta = 10000;
  double dropout = 0;  // probability; Megatron's GPT runs use 0.1 (memory model counts masks)

  int head_dim() const { return hidden / heads; }
};

struct FabricSpec {
  Topology topology = Topology::FatTree;
  double oversubscription = 1;
  int nodes_per_leaf = 16;
  double switch_latency_s = 0.5e-6;
};

// A run of consecutive nodes with the same hardware.
struct NodeGroup {
  int first_node = 0;
  int nodes = 0;
  HardwareProfile profile;
  LinkParameters intra_node;
  NicParameters nic;
};

// A run of consecutive nodes in one datacenter; sites are joined by the cluster's WAN.
struct SiteSpec {
  std::string name;
  int first_node = 0;
  int nodes = 0;
};

struct ClusterSpec {
  std::string gpu;  // as written (built-in name or path)
  HardwareProfile profile;
  int nodes = 1;
  int gpus_per_node = 8;
  int threads_per_rank = 1;
  LinkParameters intra_node;
  NicParameters nic;
  FabricSpec fabric;
  std::vector<NodeGroup> node_groups;  // always at least one, covering every node in order
  std::vector<SiteSpec> sites;         // always at least one, covering every node in order
  LinkParameters wan;                  // between sites (bandwidth 0 with a single site)

  int gpus() const { return nodes * gpus_per_node; }
  const NodeGroup& group_of_node(int node) const;
  int group_index_of_node(int node) const;
  int site_of_node(int node) const;
  bool has_wan() const { return sites.size() > 1; }
  bool is_cpu() const { return profile.backend == "cpu"; }
};

struct StrategySpec {
  int tp = 1;
  int pp = 1;
  int dp = 1;  // resolved (auto -> gpus / (tp*pp*cp))
  bool dp_auto = true;
  int cp = 1;
  bool sequence_parallel = false;
  int zero = 0;
  int micro_batch = 1;
  int global_batch = 1;
  Schedule schedule = Schedule::OneFOneB;
  int virtual_stages = 1;
  Recompute recompute = Recompute::None;
  Precision precision = Precision::Bf16;
  std::string optimizer = "adamw";
  std::map<std::string, std::string> optimizer_args;
  double grad_bucket_bytes = 25e6;
  bool overlap_grad_reduce = true;
  bool overlap_tp_input_grad = true;
  CollectiveAlgorithm collective_algorithm = CollectiveAlgorithm::Auto;
  OuterSpec outer;  // low-communication training (strategy/outer.hpp); method none by default

  // Micro-batches each pipeline runs per step: global_batch / (micro_batch * dp).
  int micro_batches() const { return global_batch / (micro_batch * dp); }
};

struct TrainingSpec {
  std::optional<double> tokens;
  int steps = 100;
  std::optional<double> lr;
  int warmup_steps = 0;
  LrSchedule lr_schedule = LrSchedule::Cosine;
  double min_lr_ratio = 0.1;
  double grad_clip = 1.0;
  std::optional<double> weight_decay;
  std::uint64_t seed = 1234;
  std::string data = "synthetic";  // "synthetic" or an absolute path
  int eval_every = 0;
  int eval_batches = 4;
  int checkpoint_every = 0;
  std::filesystem::path checkpoint_dir;  // absolute
};

struct CollectiveSpec {
  CollectiveKind kind = CollectiveKind::AllReduce;
  std::vector<double> sizes_bytes;
  CollectiveAlgorithm algorithm = CollectiveAlgorithm::Auto;
  SendRecvPeer peer = SendRecvPeer::Half;  // send-recv only
};

struct PredictedSpec {
  std::optional<double> step_time_s;
  std::optional<double> tokens_per_s;
  std::optional<double> mfu;
  std::optional<double> peak_bytes_per_gpu;
  std::string profile;
};

struct SweepAxis {
  std::string key;                  // "strategy.tp"
  std::vector<std::string> values;  // as written, validated against the schema
};

struct Scenario {
  std::string name = "scenario";
  std::string description;
  std::filesystem::path base_dir;  // where relative paths resolve (the scenario's folder)
  std::optional<ModelSpec> model;
  ClusterSpec cluster;
  std::optional<StrategySpec> strategy;
  TrainingSpec training;
  std::optional<CollectiveSpec> collective;
  std::vector<SweepAxis> sweep;
  std::optional<PredictedSpec> predicted;
  YAML::Node document;  // the document as written (after overrides), for storing and writing back

  bool is_collective() const { return collective.has_value(); }
};

// Parses, validates and resolves a scenario; throws ScenarioError with every problem found.
Scenario load_scenario(const std::filesystem::path& path);
Scenario parse_scenario(const std::string& yaml_text, const std::filesystem::path& base_dir);
Scenario scenario_from_document(const YAML::Node& document, const std::filesystem::path& base_dir);
// The built-in scenarios (scenarios/*.yaml compiled in), e.g. "default".
Scenario load_builtin_scenario(const std::string& name);
std::vector<std::string> builtin_scenario_names();

// Sets `key_path` (e.g. "strategy.tp") to `value` (as YAML text) in a copy of the document,
// checking the key against the schema. Throws ScenarioError.
YAML::Node with_override(const YAML::Node& document, const std::string& key_path,
                         const std::string& value);
// Parses "strategy.tp=2,4,8" into an axis (throws ScenarioError).
SweepAxis parse_sweep_argument(const std::string& argument);
// The cartesian product of the axes, each point as (key, value) pairs in axis order.
std::vector<std::vector<std::pair<std::string, std::string>>> sweep_points(
    const std::vector<SweepAxis>& axes);

// YAML text of a document in a stable key order (used to write scenarios back).
std::string document_to_yaml(const YAML::Node& document);

std::string_view to_string(Activation value);
std::string_view to_string(Norm value);
std::string_view to_string(Position value);
std::string_view to_string(Topology value);
std::string_view to_string(Schedule value);
std::string_view to_string(Recompute value);
std::string_view to_string(Precision value);
std::string_view to_string(LrSchedule value);

}  // namespace tandem::strategy
