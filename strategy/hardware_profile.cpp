#include "strategy/hardware_profile.hpp"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include <yaml-cpp/yaml.h>

#include "strategy/embedded_files.hpp"
#include "strategy/program.hpp"
#include "strategy/units.hpp"
#include "strategy/validation_error.hpp"

namespace tandem::strategy {

double& HardwareProfile::OpCostScale::of(ComputeKind kind) {
  switch (kind) {
    case ComputeKind::Norm: return norm;
    case ComputeKind::Embedding: return embedding;
    case ComputeKind::Loss: return loss;
    case ComputeKind::Optimizer: return optimizer;
    default: throw std::invalid_argument("compute.op_cost_scale: element-wise, GEMM and attention ops have no scale");
  }
}

double HardwareProfile::OpCostScale::of(ComputeKind kind) const {
  for (const auto& [scaled, key] : scaled_kinds())
    if (scaled == kind) return const_cast<OpCostScale*>(this)->of(kind);
  return 1.0;
}

const std::vector<std::pair<ComputeKind, std::string>>& HardwareProfile::OpCostScale::scaled_kinds() {
  static const std::vector<std::pair<ComputeKind, std::string>> kinds{
      {ComputeKind::Norm, "norm"}, {ComputeKind::Embedding, "embedding"}, {ComputeKind::Loss, "loss"},
      {ComputeKind::Optimizer, "optimizer"}};
  return kinds;
}

double& HardwareProfile::CollectiveCostScale::of(CollectiveKind kind) {
  switch (kind) {
    case CollectiveKind::AllReduce: return all_reduce;
    case CollectiveKind::ReduceScatter: return reduce_scatter;
    case CollectiveKind::AllGather: return all_gather;
    case CollectiveKind::AllToAll: return all_to_all;
    case CollectiveKind::Broadcast: return broadcast;
    default: throw std::invalid_argument("node.collective_cost_scale: send/recv is the reference and has no scale");
  }
}

double HardwareProfile::CollectiveCostScale::of(CollectiveKind kind) const {
  if (kind == CollectiveKind::SendRecv) return 1.0;
  return const_cast<CollectiveCostScale*>(this)->of(kind);
}

bool HardwareProfile::CollectiveCostScale::is_identity() const {
  for (const auto& [kind, key] : scaled_kinds())
    if (of(kind) != 1.0) return false;
  return true;
}

const std::vector<std::pair<CollectiveKind, std::string>>& HardwareProfile::CollectiveCostScale::scaled_kinds() {
  static const std::vector<std::pair<CollectiveKind, std::string>> kinds{
      {CollectiveKind::AllReduce, "all_reduce"}, {CollectiveKind::ReduceScatter, "reduce_scatter"},
      {CollectiveKind::AllGather, "all_gather"}, {CollectiveKind::AllToAll, "all_to_all"},
      {CollectiveKind::Broadcast, "broadcast"}};
  return kinds;
}

namespace {

// Every key a profile file may hold; anything else is rejected (a typo must not silently fall
// back to a default).
const std::set<std::string>& allowed_keys() {
  static const std::set<std::string> keys{
      "name", "description", "backend", "sources",
      "memory", "memory.capacity", "memory.bandwidth", "memory.efficiency",
      "compute", "compute.fp32", "compute.bf16", "compute.fp8", "compute.attention_efficiency",
      "compute.kernel_overhead", "compute.attention_kernel", "compute.attention_block_overhead", "compute.vector_efficiency",
      "compute.op_cost_scale", "compute.op_cost_scale.norm", "compute.op_cost_scale.embedding",
      "compute.op_cost_scale.loss", "compute.op_cost_scale.optimizer",
      "gemm", "gemm.peak_efficiency", "gemm.compute_units", "gemm.k_half", "gemm.tiles",
      "gemm.output_cost", "gemm.output_cost.forward", "gemm.output_cost.backward_weight",
      "node", "node.gpus_per_node", "node.intra_node", "node.intra_node.bandwidth",
      "node.intra_node.latency", "node.nic", "node.nic.count", "node.nic.bandwidth",
      "node.nic.latency", "node.collective_efficiency", "node.nic_efficiency",
      "node.reduction_bandwidth", "node.collective_latency", "node.tree_bandwidth",
      "node.ll_tree_bandwidth", "node.ll_latency_saving", "node.p2p_bandwidth",
      "node.collective_cost_scale", "node.collective_cost_scale.all_reduce",
      "node.collective_cost_scale.reduce_scatter", "node.collective_cost_scale.all_gather",
      "node.collective_cost_scale.all_to_all", "node.collective_cost_scale.broadcast",
      "cpu", "cpu.shared_cores", "cpu.cores", "cpu.parallel_grain", "cpu.all_core_compute_efficiency",
      "cpu.all_core_memory_efficiency",
  };
  return keys;
}

void check_keys(const YAML::Node& node, const std::string& prefix, const std::string& field,
                std::vector<ValidationError>& errors) {
  for (auto it = node.begin(); it != node.end(); ++it) {
    const std::string key = prefix.empty() ? it->first.as<std::string>()
                                           : prefix + "." + it->first.as<std::string>();
    if (!allowed_keys().contains(key)) {
      std::string valid;
      for (const std::string& candidate : allowed_keys()) {
        const bool same_level =
            prefix.empty() ? candidate.find('.') == std::string::npos
                           : candidate.starts_with(prefix + ".") &&
                                 candidate.find('.', prefix.size() + 1) == std::string::npos;
        if (same_level) valid += (valid.empty() ? "" : ", ") + candidate;
      }
      errors.push_back({field + " (profile key " + key + ")", key, "one of " + valid});
      continue;
    }
    if (it->second.IsMap() && key != "gemm.tiles") check_keys(it->second, key, field, errors);
  }
}

struct Reader {
  const YAML::Node& root;
  std::string field;
  std::vector<ValidationError>& errors;

  // yaml-cpp: operator= on a Node assigns through it; reset() rebinds.
  YAML::Node at(const std::string& dotted) const {
    YAML::Node node;
    node.reset(root);
    std::stringstream stream(dotted);
    std::string part;
    while (std::getline(stream, part, '.')) {
      const YAML::Node& current = node;
      if (!current.IsMap() || !current[part]) return YAML::Node(YAML::NodeType::Undefined);
      node.reset(current[part]);
    }
    return node;
  }

  template <typename Parse>
  void read(const std::string& key, double& out, Parse parse, bool required) const {
    const YAML::Node node = at(key);
    if (!node) {
      if (required) errors.push_back({field + " (profile key " + key + ")", "", "a value"});
      return;
    }
    try {
      if (!node.IsScalar()) throw std::invalid_argument("expected a single value");
      out = parse(node.Scalar());
    } catch (const std::exception& error) {
      errors.push_back({field + " (profile key " + key + ")", node.IsScalar() ? node.Scalar() : "a map", error.what()});
    }
  }

  void read_int(const std::string& key, int& out) const {
    const YAML::Node node = at(key);
    if (!node) return;
    try {
      out = node.as<int>();
    } catch (const std::exception&) {
      errors.push_back({field + " (profile key " + key + ")", node.IsScalar() ? node.Scalar() : "a map", "an integer"});
    }
  }
};

}  // namespace

double HardwareProfile::peak_flops(Precision precision) const {
  switch (precision) {
    case Precision::Fp32: return peak_flops_fp32;
    case Precision::Bf16: return peak_flops_bf16;
    case Precision::Fp8: return peak_flops_fp8;
  }
  return peak_flops_fp32;
}

double HardwareProfile::bytes_per_element(Precision precision) {
  return precision == Precision::Fp32 ? 4.0 : 2.0;
}

std::vector<std::string> builtin_profile_names() {
  std::vector<std::string> names;
  for (const EmbeddedFile& file : builtin_profile_files()) names.emplace_back(file.name);
  return names;
}

HardwareProfile parse_hardware_profile(const std::string& yaml_text, const std::string& origin,
                                       const std::string& field) {
  std::vector<ValidationError> errors;
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& error) {
    throw ScenarioError({{field, origin, "a valid YAML hardware profile (" + error.msg + " at line " +
                                             std::to_string(error.mark.line + 1) + ")"}});
  }
  if (!root.IsMap()) throw ScenarioError({{field, origin, "a YAML map describing a hardware profile"}});
  check_keys(root, "", field, errors);

  HardwareProfile profile;
  profile.origin = origin;
  profile.source_text = yaml_text;
  Reader reader{root, field, errors};
  profile.name = root["name"] ? root["name"].as<std::string>() : origin;
  if (root["description"]) profile.description = root["description"].as<std::string>();
  if (root["backend"]) profile.backend = root["backend"].as<std::string>();
  if (profile.backend != "cuda" && profile.backend != "cpu")
    errors.push_back({field + " (profile key backend)", profile.backend, "cuda or cpu"});
  if (root["sources"] && root["sources"].IsSequence())
    for (const auto& source : root["sources"]) profile.sources.push_back(source.as<std::string>());

  reader.read("memory.capacity", profile.memory_capacity_bytes, parse_bytes, true);
  reader.read("memory.bandwidth", profile.memory_bandwidth_bytes_per_s, parse_bandwidth, true);
  reader.read("memory.efficiency", profile.memory_efficiency, parse_number, false);
  reader.read("compute.fp32", profile.peak_flops_fp32, parse_flop_rate, true);
  reader.read("compute.bf16", profile.peak_flops_bf16, parse_flop_rate, false);
  reader.read("compute.fp8", profile.peak_flops_fp8, parse_flop_rate, false);
  reader.read("compute.attention_efficiency", profile.attention_efficiency, parse_number, false);
  reader.read("compute.kernel_overhead", profile.kernel_overhead_s, parse_duration, false);
  reader.read("compute.attention_block_overhead", profile.attention_block_overhead_s, parse_duration, false);
  reader.read("compute.vector_efficiency", profile.vector_efficiency, parse_number, false);
  for (const auto& [kind, key] : HardwareProfile::OpCostScale::scaled_kinds()) {
    const std::string name = "compute.op_cost_scale." + key;
    double& scale = profile.op_cost_scale.of(kind);
    reader.read(name, scale, parse_number, false);
    if (!(scale > 0))
      errors.push_back({field + " (profile key " + name + ")", std::to_string(scale), "a multiplier > 0 (1: the roofline)"});
  }
  if (const YAML::Node kernel = reader.at("compute.attention_kernel"); kernel) {
    const std::string text = kernel.IsScalar() ? kernel.Scalar() : "";
    if (text == "fused" || text == "unfused")
      profile.attention_fused = text == "fused";
    else
      errors.push_back({field + " (profile key compute.attention_kernel)", text, "fused or unfused"});
  }
  reader.read("gemm.peak_efficiency", profile.gemm.peak_efficiency, parse_number, false);
  reader.read_int("gemm.compute_units", profile.gemm.compute_units);
  reader.read("gemm.k_half", profile.gemm.k_half, parse_number, false);
  reader.read("gemm.output_cost.forward", profile.gemm.output_cost.forward_s, parse_duration, false);
  reader.read("gemm.output_cost.backward_weight", profile.gemm.output_cost.backward_weight_s, parse_duration, false);
  if (const YAML::Node tiles = reader.at("gemm.tiles"); tiles) {
    profile.gemm.tiles.clear();
    bool ok = tiles.IsSequence() && tiles.size() > 0;
    for (std::size_t i = 0; ok && i < tiles.size(); ++i) {
      const YAML::Node& tile = tiles[i];
      ok = tile.IsSequence() && tile.size() == 3;
      if (ok) {
        try {
          profile.gemm.tiles.push_back({tile[0].as<int>(), tile[1].as<int>(), tile[2].as<double>()});
        } catch (const std::exception&) {
          ok = false;
        }
      }
    }
    if (!ok)
      errors.push_back({field + " (profile key gemm.tiles)", "",
                        "a list of [tile_m, tile_n, relative_efficiency] triples"});
  }
  reader.read_int("node.gpus_per_node", profile.default_gpus_per_node);
  reader.read("node.intra_node.bandwidth", profile.intra_node.bandwidth_bytes_per_s, parse_bandwidth, true);
  reader.read("node.intra_node.latency", profile.intra_node.latency_s, parse_duration, true);
  reader.read_int("node.nic.count", profile.nic.count);
  reader.read("node.nic.bandwidth", profile.nic.bandwidth_bytes_per_s, parse_bandwidth, true);
  reader.read("node.nic.latency", profile.nic.latency_s, parse_duration, true);
  reader.read("node.collective_efficiency", profile.collective_efficiency, parse_number, false);
  reader.read("node.nic_efficiency", profile.nic_efficiency, parse_number, false);
  reader.read("node.reduction_bandwidth", profile.reduction_bandwidth_bytes_per_s, parse_bandwidth, false);
  reader.read("node.collective_latency", profile.collective_latency_s, parse_duration, false);
  reader.read("node.tree_bandwidth", profile.tree_bandwidth_bytes_per_s, parse_bandwidth, false);
  reader.read("node.ll_tree_bandwidth", profile.ll_tree_bandwidth_bytes_per_s, parse_bandwidth, false);
  reader.read("node.ll_latency_saving", profile.ll_latency_saving_s, parse_duration, false);
  reader.read("node.p2p_bandwidth", profile.p2p_bandwidth_bytes_per_s, parse_bandwidth, false);
  for (const auto& [kind, key] : HardwareProfile::CollectiveCostScale::scaled_kinds()) {
    const std::string name = "node.collective_cost_scale." + key;
    double& scale = profile.collective_cost_scale.of(kind);
    reader.read(name, scale, parse_number, false);
    if (!(scale > 0))
      errors.push_back({field + " (profile key " + name + ")", std::to_string(scale),
                        "a multiplier > 0 (1: the links' bandwidth)"});
  }
  if (const YAML::Node shared = reader.at("cpu.shared_cores"); shared) profile.shared_cores = shared.as<bool>();
  reader.read_int("cpu.cores", profile.cores);
  reader.read("cpu.parallel_grain", profile.parallel_grain_flops, parse_number, false);
  for (auto [key, efficiency] : {std::pair{"cpu.all_core_compute_efficiency", &profile.all_core_compute_efficiency},
                                 {"cpu.all_core_memory_efficiency", &profile.all_core_memory_efficiency}}) {
    reader.read(key, *efficiency, parse_number, false);
    if (!(*efficiency > 0 && *efficiency <= 1))
      errors.push_back({field + " (profile key " + key + ")", std::to_string(*efficiency), "a fraction in (0, 1]"});
  }
  if (!(profile.vector_efficiency > 0 && profile.vector_efficiency <= 1))
    errors.push_back({field + " (profile key compute.vector_efficiency)", std::to_string(profile.vector_efficiency),
                      "a fraction in (0, 1]"});
  if (profile.parallel_grain_flops < 0)
    errors.push_back({field + " (profile key cpu.parallel_grain)", std::to_string(profile.parallel_grain_flops),
                      "a FLOP count >= 0 (0: every op uses every thread)"});

  if (profile.peak_flops_bf16 == 0) profile.peak_flops_bf16 = profile.peak_flops_fp32;
  if (profile.gemm.compute_units < 1)
    errors.push_back({field + " (profile key gemm.compute_units)", std::to_string(profile.gemm.compute_units), "at least 1"});
  if (!errors.empty()) throw ScenarioError(std::move(errors));
  return profile;
}

HardwareProfile load_hardware_profile(const std::string& name_or_path,
                                      const std::filesystem::path& base_dir,
                                      const std::string& field) {
  if (const EmbeddedFile* file = find_embedded(builtin_profile_files(), name_or_path)) {
    HardwareProfile profile = parse_hardware_profile(file->contents, "built-in", field);
    profile.origin = "built-in";
    return profile;
  }
  std::filesystem::path path(name_or_path);
  if (path.is_relative()) path = base_dir / path;
  std::ifstream in(path);
  if (!in) {
    std::string names;
    for (const std::string& name : builtin_profile_names()) names += (names.empty() ? "" : ", ") + name;
    throw ScenarioError({{field, name_or_path,
                          "a built-in profile (" + names + ") or the path of a profile YAML file "
                          "(no file at " + path.string() + ")"}});
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return parse_hardware_profile(buffer.str(), path.string(), field);
}

std::string hardware_profile_to_yaml(const HardwareProfile& p) {
  YAML::Emitter out;
  out.SetDoublePrecision(10);
  out << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << p.name;
  if (!p.description.empty()) out << YAML::Key << "description" << YAML::Value << p.description;
  out << YAML::Key << "backend" << YAML::Value << p.backend;
  if (!p.sources.empty()) {
    out << YAML::Key << "sources" << YAML::Value << YAML::BeginSeq;
    for (const std::string& source : p.sources) out << source;
    out << YAML::EndSeq;
  }
  auto flops = [](double value) {
    std::ostringstream text;
    text.precision(10);
    text << value / 1e12 << "TFLOP/s";
    return text.str();
  };
  auto number = [](double value) {
    std::ostringstream text;
    text.precision(10);
    text << value;
    return text.str();
  };
  out << YAML::Key << "memory" << YAML::Value << YAML::BeginMap
      << YAML::Key << "capacity" << YAML::Value << bytes_to_scenario_text(p.memory_capacity_bytes)
      << YAML::Key << "bandwidth" << YAML::Value << bandwidth_to_scenario_text(p.memory_bandwidth_bytes_per_s)
      << YAML::Key << "efficiency" << YAML::Value << number(p.memory_efficiency) << YAML::EndMap;
  out << YAML::Key << "compute" << YAML::Value << YAML::BeginMap
      << YAML::Key << "fp32" << YAML::Value << flops(p.peak_flops_fp32)
      << YAML::Key << "bf16" << YAML::Value << flops(p.peak_flops_bf16)
      << YAML::Key << "fp8" << YAML::Value << flops(p.peak_flops_fp8)
      << YAML::Key << "attention_efficiency" << YAML::Value << number(p.attention_efficiency)
      << YAML::Key << "kernel_overhead" << YAML::Value << duration_to_scenario_text(p.kernel_overhead_s)
      << YAML::Key << "attention_kernel" << YAML::Value << (p.attention_fused ? "fused" : "unfused");
  if (p.attention_block_overhead_s > 0)
    out << YAML::Key << "attention_block_overhead" << YAML::Value << duration_to_scenario_text(p.attention_block_overhead_s);
  if (p.vector_efficiency != 1.0) out << YAML::Key << "vector_efficiency" << YAML::Value << number(p.vector_efficiency);
  if (!p.op_cost_scale.is_identity()) {
    out << YAML::Key << "op_cost_scale" << YAML::Value << YAML::Flow << YAML::BeginMap;
    for (const auto& [kind, key] : HardwareProfile::OpCostScale::scaled_kinds())
      out << YAML::Key << key << YAML::Value << number(p.op_cost_scale.of(kind));
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
  out << YAML::Key << "gemm" << YAML::Value << YAML::BeginMap
      << YAML::Key << "peak_efficiency" << YAML::Value << number(p.gemm.peak_efficiency)
      << YAML::Key << "compute_units" << YAML::Value << p.gemm.compute_units
      << YAML::Key << "k_half" << YAML::Value << number(p.gemm.k_half)
      << YAML::Key << "tiles" << YAML::Value << YAML::BeginSeq;
  for (const GemmTile& tile : p.gemm.tiles)
    out << YAML::Flow << YAML::BeginSeq << tile.m << tile.n << number(tile.efficiency) << YAML::EndSeq;
  out << YAML::EndSeq;
  if (p.gemm.output_cost.forward_s > 0 || p.gemm.output_cost.backward_weight_s > 0)
    out << YAML::Key << "output_cost" << YAML::Value << YAML::Flow << YAML::BeginMap
        << YAML::Key << "forward" << YAML::Value << duration_to_scenario_text(p.gemm.output_cost.forward_s)
        << YAML::Key << "backward_weight" << YAML::Value << duration_to_scenario_text(p.gemm.output_cost.backward_weight_s)
        << YAML::EndMap;
  out << YAML::EndMap;
  out << YAML::Key << "node" << YAML::Value << YAML::BeginMap
      << YAML::Key << "gpus_per_node" << YAML::Value << p.default_gpus_per_node
      << YAML::Key << "intra_node" << YAML::Value << YAML::Flow << YAML::BeginMap
      << YAML::Key << "bandwidth" << YAML::Value << bandwidth_to_scenario_text(p.intra_node.bandwidth_bytes_per_s)
      << YAML::Key << "latency" << YAML::Value << duration_to_scenario_text(p.intra_node.latency_s)
      << YAML::EndMap
      << YAML::Key << "nic" << YAML::Value << YAML::Flow << YAML::BeginMap
      << YAML::Key << "count" << YAML::Value << p.nic.count
      << YAML::Key << "bandwidth" << YAML::Value << bandwidth_to_scenario_text(p.nic.bandwidth_bytes_per_s)
      << YAML::Key << "latency" << YAML::Value << duration_to_scenario_text(p.nic.latency_s)
      << YAML::EndMap
      << YAML::Key << "collective_efficiency" << YAML::Value << number(p.collective_efficiency);
  if (p.nic_efficiency > 0) out << YAML::Key << "nic_efficiency" << YAML::Value << number(p.nic_efficiency);
  if (p.reduction_bandwidth_bytes_per_s > 0)
    out << YAML::Key << "reduction_bandwidth" << YAML::Value
        << bandwidth_to_scenario_text(p.reduction_bandwidth_bytes_per_s);
  if (p.collective_latency_s > 0)
    out << YAML::Key << "collective_latency" << YAML::Value << duration_to_scenario_text(p.collective_latency_s);
  if (p.tree_bandwidth_bytes_per_s > 0)
    out << YAML::Key << "tree_bandwidth" << YAML::Value << bandwidth_to_scenario_text(p.tree_bandwidth_bytes_per_s);
  if (p.ll_tree_bandwidth_bytes_per_s > 0)
    out << YAML::Key << "ll_tree_bandwidth" << YAML::Value
        << bandwidth_to_scenario_text(p.ll_tree_bandwidth_bytes_per_s);
  if (p.ll_latency_saving_s > 0)
    out << YAML::Key << "ll_latency_saving" << YAML::Value << duration_to_scenario_text(p.ll_latency_saving_s);
  if (p.p2p_bandwidth_bytes_per_s > 0)
    out << YAML::Key << "p2p_bandwidth" << YAML::Value << bandwidth_to_scenario_text(p.p2p_bandwidth_bytes_per_s);
  if (!p.collective_cost_scale.is_identity()) {
    out << YAML::Key << "collective_cost_scale" << YAML::Value << YAML::Flow << YAML::BeginMap;
    for (const auto& [kind, key] : HardwareProfile::CollectiveCostScale::scaled_kinds())
      out << YAML::Key << key << YAML::Value << number(p.collective_cost_scale.of(kind));
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
  if (p.backend == "cpu" || p.shared_cores) {
    out << YAML::Key << "cpu" << YAML::Value << YAML::BeginMap
        << YAML::Key << "shared_cores" << YAML::Value << p.shared_cores
        << YAML::Key << "cores" << YAML::Value << p.cores;
    if (p.parallel_grain_flops > 0) out << YAML::Key << "parallel_grain" << YAML::Value << number(p.parallel_grain_flops);
    if (p.all_core_compute_efficiency != 1.0)
      out << YAML::Key << "all_core_compute_efficiency" << YAML::Value << number(p.all_core_compute_efficiency);
    if (p.all_core_memory_efficiency != 1.0)
      out << YAML::Key << "all_core_memory_efficiency" << YAML::Value << number(p.all_core_memory_efficiency);
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace tandem::strategy
