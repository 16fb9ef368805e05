#include "gui/scenario_fields.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "strategy/hardware_profile.hpp"
#include "strategy/units.hpp"

namespace tandem::gui {
namespace {

using strategy::SchemaKey;
using strategy::ValueType;

// The fields issue 5 asks the form to show up front; every other scalar key of the schema is
// one click away ("Show all fields") and always shown when the document sets it.
const std::set<std::string>& common_paths() {
  static const std::set<std::string> paths{
      "name",
      "model.preset", "model.layers", "model.hidden", "model.heads", "model.kv_heads",
      "model.ffn_hidden", "model.vocab", "model.seq_len",
      "cluster.gpu", "cluster.nodes", "cluster.gpus_per_node", "cluster.nic.count",
      "cluster.nic.bandwidth", "cluster.fabric.topology", "cluster.fabric.oversubscription",
      "strategy.tp", "strategy.pp", "strategy.dp", "strategy.cp", "strategy.sequence_parallel",
      "strategy.zero", "strategy.micro_batch", "strategy.global_batch", "strategy.schedule",
      "strategy.virtual_stages", "strategy.recompute", "strategy.precision", "strategy.optimizer",
      "training.tokens",
  };
  return paths;
}

bool is_scalar_type(ValueType type) {
  switch (type) {
    case ValueType::Section:
    case ValueType::SectionList:
    case ValueType::OptimizerArguments:
    case ValueType::SweepMap:
      return false;
    default:
      return true;
  }
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::stringstream stream(path);
  std::string part;
  while (std::getline(stream, part, '.')) parts.push_back(part);
  return parts;
}

std::string trim(const std::string& text) {
  const auto begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return {};
  const auto end = text.find_last_not_of(" \t\r\n");
  return text.substr(begin, end - begin + 1);
}

std::string number_text(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

}  // namespace

const std::vector<FormSection>& form_sections() {
  static const std::vector<FormSection> sections{
      {"", "Scenario"},        {"model", "Model"},       {"cluster", "Cluster"},
      {"strategy", "Strategy"}, {"training", "Training"}, {"collective", "Collective what-if"},
  };
  return sections;
}

const std::vector<FormField>& form_fields() {
  static const std::vector<FormField> fields = [] {
    std::vector<FormField> out;
    for (const SchemaKey& key : strategy::scenario_schema()) {
      if (!is_scalar_type(key.type)) continue;
      if (key.path.find("[]") != std::string::npos) continue;  // node groups: YAML tab
      if (key.path.starts_with("predicted")) continue;         // written by simrun --best
      FormField field;
      field.key = &key;
      const auto dot = key.path.find('.');
      field.section = dot == std::string::npos ? std::string() : key.path.substr(0, dot);
      field.common = common_paths().contains(key.path);
      if (key.type == ValueType::Choice) field.suggestions = key.choices;
      if (key.path == "cluster.gpu") field.suggestions = strategy::builtin_profile_names();
      out.push_back(std::move(field));
    }
    return out;
  }();
  return fields;
}

const FormField* find_form_field(const std::string& path) {
  for (const FormField& field : form_fields())
    if (field.key->path == path) return &field;
  return nullptr;
}

std::optional<std::string> value_at(const YAML::Node& document, const std::string& path) {
  if (!document || !document.IsMap()) return std::nullopt;
  YAML::Node current;
  current.reset(document);
  for (const std::string& part : split_path(path)) {
    if (!current.IsMap()) return std::nullopt;
    const YAML::Node view = current;  // const lookup: never inserts the key
    YAML::Node next = view[part];
    if (!next) return std::nullopt;
    current.reset(next);
  }
  if (current.IsScalar()) return current.Scalar();
  if (current.IsSequence()) {
    std::string joined;
    for (const auto& item : current) {
      if (!joined.empty()) joined += ", ";
      joined += item.IsScalar() ? item.Scalar() : std::string("?");
    }
    return joined;
  }
  if (current.IsNull()) return std::string();
  return std::nullopt;  // a map where a scalar belongs: the YAML tab shows it
}

std::optional<int> line_of(const YAML::Node& document, const std::string& path) {
  if (!document || !document.IsMap()) return std::nullopt;
  // Split "a.b[2].c" into a, b, [2], c.
  std::vector<std::string> parts;
  std::string current_part;
  for (char c : path) {
    if (c == '.') {
      if (!current_part.empty()) parts.push_back(current_part);
      current_part.clear();
    } else if (c == '[') {
      if (!current_part.empty()) parts.push_back(current_part);
      current_part = "[";
    } else if (c == ']') {
      parts.push_back(current_part + "]");
      current_part.clear();
    } else {
      current_part += c;
    }
  }
  if (!current_part.empty()) parts.push_back(current_part);

  std::optional<int> line;
  YAML::Node current;
  current.reset(document);
  for (const std::string& part : parts) {
    YAML::Node next;
    if (part.starts_with('[')) {
      if (!current.IsSequence()) break;
      std::size_t index = 0;
      try {
        index = std::stoul(part.substr(1, part.size() - 2));
      } catch (...) {
        break;
      }
      if (index >= current.size()) break;
      const YAML::Node view = current;
      next.reset(view[index]);
    } else {
      const YAML::Node view = current;  // const lookup: never inserts the key
      if (!view.IsMap() || !view[part]) break;
      next.reset(view[part]);
    }
    current.reset(next);
    if (current.Mark().line >= 0) line = current.Mark().line;
  }
  return line;
}

YAML::Node node_for_text(const std::string& text, ValueType type) {
  if (type == ValueType::BytesList) {
    std::string body = trim(text);
    if (body.starts_with('[') && body.ends_with(']')) body = body.substr(1, body.size() - 2);
    YAML::Node sequence(YAML::NodeType::Sequence);
    std::stringstream stream(body);
    std::string item;
    while (std::getline(stream, item, ',')) {
      item = trim(item);
      if (!item.empty()) sequence.push_back(item);
    }
    sequence.SetStyle(YAML::EmitterStyle::Flow);
    return sequence;
  }
  return YAML::Node(trim(text));
}

void set_value(YAML::Node& document, const std::string& path, const std::string& text,
               ValueType type) {
  if (!document || !document.IsMap()) document = YAML::Node(YAML::NodeType::Map);
  const std::vector<std::string> parts = split_path(path);
  // yaml-cpp nodes are handles: operator= writes through them, reset() rebinds.
  YAML::Node current;
  current.reset(document);
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    if (!current[parts[i]].IsMap()) current[parts[i]] = YAML::Node(YAML::NodeType::Map);
    YAML::Node next = current[parts[i]];
    current.reset(next);
  }
  current[parts.back()] = node_for_text(text, type);
}

void remove_value(YAML::Node& document, const std::string& path) {
  if (!document || !document.IsMap()) return;
  const std::vector<std::string> parts = split_path(path);
  std::vector<YAML::Node> chain;
  YAML::Node current;
  current.reset(document);
  chain.push_back(current);
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    const YAML::Node view = current;  // const lookup: never inserts the key
    if (!view.IsMap() || !view[parts[i]]) return;
    YAML::Node next = view[parts[i]];
    current.reset(next);
    chain.push_back(current);
  }
  if (!current.IsMap()) return;
  current.remove(parts.back());
  // Drop sections the removal left empty, innermost first.
  for (std::size_t i = chain.size() - 1; i > 0; --i) {
    if (chain[i].IsMap() && chain[i].size() == 0) chain[i - 1].remove(parts[i - 1]);
    else break;
  }
}

std::vector<strategy::ValidationError> check_field_text(const SchemaKey& key,
                                                        const std::string& text) {
  return strategy::check_value(key, node_for_text(text, key.type), key.path);
}

std::optional<std::string> resolved_text(const strategy::Scenario& scenario,
                                         const std::string& path) {
  using strategy::to_string;
  if (scenario.model) {
    const strategy::ModelSpec& m = *scenario.model;
    if (path == "model.layers") return std::to_string(m.layers);
    if (path == "model.hidden") return std::to_string(m.hidden);
    if (path == "model.heads") return std::to_string(m.heads);
    if (path == "model.kv_heads") return std::to_string(m.kv_heads);
    if (path == "model.ffn_hidden") return std::to_string(m.ffn_hidden);
    if (path == "model.vocab") return std::to_string(m.vocab);
    if (path == "model.seq_len") return std::to_string(m.seq_len);
    if (path == "model.activation") return std::string(to_string(m.activation));
    if (path == "model.norm") return std::string(to_string(m.norm));
    if (path == "model.position") return std::string(to_string(m.position));
    if (path == "model.tied_embeddings") return m.tied_embeddings ? "true" : "false";
  }
  if (scenario.strategy) {
    const strategy::StrategySpec& s = *scenario.strategy;
    if (path == "strategy.dp") return std::to_string(s.dp);
    if (path == "strategy.global_batch") return std::to_string(s.global_batch);
    if (path == "strategy.precision") return std::string(to_string(s.precision));
  }
  const strategy::ClusterSpec& c = scenario.cluster;
  if (path == "cluster.gpus_per_node") return std::to_string(c.gpus_per_node);
  if (path == "cluster.nic.count") return std::to_string(c.nic.count);
  if (path == "cluster.nic.bandwidth")
    return strategy::bandwidth_to_scenario_text(c.nic.bandwidth_bytes_per_s);
  if (path == "cluster.nic.latency") return strategy::duration_to_scenario_text(c.nic.latency_s);
  if (path == "cluster.intra_node.bandwidth")
    return strategy::bandwidth_to_scenario_text(c.intra_node.bandwidth_bytes_per_s);
  if (path == "cluster.intra_node.latency")
    return strategy::duration_to_scenario_text(c.intra_node.latency_s);
  return std::nullopt;
}

std::string describe_key(const SchemaKey& key) {
  std::ostringstream out;
  out << key.path << " (" << strategy::to_string(key.type);
  if (!key.unit.empty()) out << ", " << key.unit;
  out << ")\n" << key.doc;
  if (key.required) out << "\nRequired.";
  else if (!key.default_text.empty()) out << "\nDefault: " << key.default_text;
  if (!key.choices.empty()) {
    out << "\nValid values: ";
    for (std::size_t i = 0; i < key.choices.size(); ++i) out << (i ? ", " : "") << key.choices[i];
  } else if (std::isfinite(key.minimum) || std::isfinite(key.maximum)) {
    out << "\nValid range: ";
    if (std::isfinite(key.minimum)) out << ">= " << number_text(key.minimum);
    if (std::isfinite(key.minimum) && std::isfinite(key.maximum)) out << ", ";
    if (std::isfinite(key.maximum)) out << "<= " << number_text(key.maximum);
  }
  return out.str();
}

}  // namespace tandem::gui
