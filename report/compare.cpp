#include "report/compare.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

namespace tandem::report {
namespace {

// --- scenarios ---------------------------------------------------------------------------------

struct Leaf {
  std::string text;
  bool scalar = false;
};

std::string flow_text(const YAML::Node& node) {
  YAML::Emitter out;
  out.SetSeqFormat(YAML::Flow);
  out.SetMapFormat(YAML::Flow);
  out << node;
  return out.c_str();
}

void flatten_yaml(const YAML::Node& node, const std::string& prefix,
                  std::map<std::string, Leaf>& leaves) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      if (node.size() == 0) {
        leaves[prefix] = Leaf{"{}", false};
        return;
      }
      for (const auto& entry : node) {
        const std::string key =
            entry.first.IsScalar() ? entry.first.Scalar() : flow_text(entry.first);
        flatten_yaml(entry.second, prefix.empty() ? key : prefix + "." + key, leaves);
      }
      return;
    case YAML::NodeType::Sequence:
      leaves[prefix] = Leaf{flow_text(node), false};
      return;
    case YAML::NodeType::Scalar:
      leaves[prefix] = Leaf{node.Scalar(), true};
      return;
    case YAML::NodeType::Null:
      if (!prefix.empty()) leaves[prefix] = Leaf{"null", false};
      return;
    case YAML::NodeType::Undefined:
      return;
  }
}

std::optional<double> as_number(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) return std::nullopt;
  return value;
}

bool same_value(const Leaf& a, const Leaf& b) {
  if (a.text == b.text) return true;
  if (!a.scalar || !b.scalar) return false;
  const auto number_a = as_number(a.text);
  const auto number_b = as_number(b.text);
  return number_a && number_b && *number_a == *number_b;
}

std::map<std::string, Leaf> parse_scenario(std::string_view text, const char* side) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& error) {
    throw CompareError(std::string(side) + " is not valid YAML: line " +
                       std::to_string(error.mark.line + 1) + ", column " +
                       std::to_string(error.mark.column + 1) + ": " + error.msg);
  }
  std::map<std::string, Leaf> leaves;
  flatten_yaml(root, "", leaves);
  return leaves;
}

// --- results ------------------------------------------------------------------------------------

void flatten_json(const nlohmann::json& value, const std::string& prefix,
                  std::map<std::string, double>& numbers) {
  if (value.is_object()) {
    for (const auto& [key, child] : value.items()) {
      flatten_json(child, prefix.empty() ? key : prefix + "." + key, numbers);
    }
  } else if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i) {
      flatten_json(value[i], prefix + "[" + std::to_string(i) + "]", numbers);
    }
  } else if (value.is_boolean()) {
    numbers[prefix] = value.get<bool>() ? 1.0 : 0.0;
  } else if (value.is_number()) {
    numbers[prefix] = value.get<double>();
  }
}

std::map<std::string, double> parse_result(std::string_view text, const char* side) {
  nlohmann::json document;
  try {
    document = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& error) {
    throw CompareError(std::string(side) + " is not valid JSON: " + error.what());
  }
  std::map<std::string, double> numbers;
  flatten_json(document, "", numbers);
  return numbers;
}

// --- traces -------------------------------------------------------------------------------------

struct Samples {
  const TraceRecord* first = nullptr;  // descriptive fields
  std::vector<double> durations;
};

std::map<OpKey, Samples> group_records(std::span<const TraceRecord> records, AlignBy by,
                                       const char* side) {
  std::map<OpKey, Samples> groups;
  for (const TraceRecord& record : records) {
    const OpKey key{by == AlignBy::Rank ? record.rank : record.rank_class, record.op_id};
    Samples& samples = groups[key];
    if (samples.first == nullptr) {
      samples.first = &record;
    } else if (samples.first->code != record.code) {
      throw CompareError(std::string("the ") + side + " trace has two different ops as op " +
                         std::to_string(record.op_id) + " of " +
                         (by == AlignBy::Rank ? "rank " : "rank class ") +
                         std::to_string(key.group) + ": " +
                         std::string(strategy::to_string(samples.first->code)) + " and " +
                         std::string(strategy::to_string(record.code)));
    }
    samples.durations.push_back(record.end_s - record.start_s);
  }
  return groups;
}

double aggregate(std::vector<double> values, Aggregate how) {
  switch (how) {
    case Aggregate::Mean: {
      double sum = 0;
      for (const double value : values) sum += value;
      return sum / static_cast<double>(values.size());
    }
    case Aggregate::Min:
      return *std::min_element(values.begin(), values.end());
    case Aggregate::Median:
      break;
  }
  std::sort(values.begin(), values.end());
  const std::size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle] : 0.5 * (values[middle - 1] + values[middle]);
}

}  // namespace

std::vector<ScenarioDifference> diff_scenarios(std::string_view yaml_a, std::string_view yaml_b) {
  const auto leaves_a = parse_scenario(yaml_a, "scenario A");
  const auto leaves_b = parse_scenario(yaml_b, "scenario B");
  std::set<std::string> keys;
  for (const auto& [key, leaf] : leaves_a) keys.insert(key);
  for (const auto& [key, leaf] : leaves_b) keys.insert(key);

  std::vector<ScenarioDifference> differences;
  for (const std::string& key : keys) {
    const auto a = leaves_a.find(key);
    const auto b = leaves_b.find(key);
    ScenarioDifference difference{key, std::nullopt, std::nullopt};
    if (a != leaves_a.end()) difference.value_a = a->second.text;
    if (b != leaves_b.end()) difference.value_b = b->second.text;
    if (a != leaves_a.end() && b != leaves_b.end() && same_value(a->second, b->second)) continue;
    differences.push_back(std::move(difference));
  }
  return differences;
}

std::vector<ResultDifference> diff_results(std::string_view json_a, std::string_view json_b) {
  const auto numbers_a = parse_result(json_a, "result A");
  const auto numbers_b = parse_result(json_b, "result B");
  std::set<std::string> keys;
  for (const auto& [key, value] : numbers_a) keys.insert(key);
  for (const auto& [key, value] : numbers_b) keys.insert(key);

  std::vector<ResultDifference> differences;
  for (const std::string& key : keys) {
    ResultDifference difference;
    difference.key = key;
    if (const auto a = numbers_a.find(key); a != numbers_a.end()) difference.value_a = a->second;
    if (const auto b = numbers_b.find(key); b != numbers_b.end()) difference.value_b = b->second;
    if (difference.value_a && difference.value_b) {
      difference.absolute = *difference.value_b - *difference.value_a;
      if (*difference.value_a != 0) {
        difference.relative = *difference.absolute / std::abs(*difference.value_a);
      }
    }
    differences.push_back(std::move(difference));
  }
  return differences;
}

TraceAlignment align_traces(std::span<const TraceRecord> predicted,
                            std::span<const TraceRecord> measured, const AlignOptions& options) {
  const auto predicted_groups = group_records(predicted, options.by, "predicted");
  const auto measured_groups = group_records(measured, options.by, "measured");

  TraceAlignment alignment;
  for (const auto& [key, prediction] : predicted_groups) {
    const auto found = measured_groups.find(key);
    if (found == measured_groups.end()) {
      alignment.only_predicted.push_back(key);
      continue;
    }
    const Samples& measurement = found->second;
    const TraceRecord& op = *prediction.first;
    if (measurement.first->code != op.code) {
      throw CompareError(
          "op " + std::to_string(key.op_id) + " of " +
          (options.by == AlignBy::Rank ? "rank " : "rank class ") + std::to_string(key.group) +
          " is " + std::string(strategy::to_string(op.code)) + " in the prediction but " +
          std::string(strategy::to_string(measurement.first->code)) +
          " in the measurement: the traces come from different programs");
    }
    OpAlignment aligned;
    aligned.group = key.group;
    aligned.op_id = key.op_id;
    aligned.code = op.code;
    aligned.stream = op.stream;
    aligned.phase = op.phase;
    aligned.layer = op.layer;
    aligned.micro_batch = op.micro_batch;
    aligned.predicted_s = aggregate(prediction.durations, options.aggregate);
    aligned.measured_s = aggregate(measurement.durations, options.aggregate);
    aligned.predicted_samples = prediction.durations.size();
    aligned.measured_samples = measurement.durations.size();
    if (aligned.measured_s != 0) {
      aligned.relative_error = (aligned.predicted_s - aligned.measured_s) / aligned.measured_s;
    }
    alignment.ops.push_back(aligned);
  }
  for (const auto& [key, measurement] : measured_groups) {
    if (!predicted_groups.contains(key)) alignment.only_measured.push_back(key);
  }
  return alignment;
}

std::vector<OpAlignment> worst_ops(const TraceAlignment& alignment, std::size_t n,
                                   double min_measured_s) {
  std::vector<OpAlignment> candidates;
  for (const OpAlignment& op : alignment.ops) {
    if (op.relative_error && op.measured_s >= min_measured_s) candidates.push_back(op);
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const OpAlignment& a, const OpAlignment& b) {
                     return std::abs(*a.relative_error) > std::abs(*b.relative_error);
                   });
  if (candidates.size() > n) candidates.resize(n);
  return candidates;
}

}  // namespace tandem::report
