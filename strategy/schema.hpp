#pragma once
// The scenario schema: one table of every key a scenario file may hold (key, type, unit,
// default, valid values, documentation). Validation, defaults, the sweep syntax, the GUI's
// form and docs/scenario-reference.md all come from this table, so a key is added in one place.

#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "strategy/validation_error.hpp"

namespace tandem::strategy {

enum class ValueType {
  Section,         // a map of further keys
  SectionList,     // a list of maps (node_groups, sites)
  String,
  Path,            // a file path, relative to the scenario file
  Integer,
  IntegerOrAuto,   // an integer or the word auto
  Number,
  Boolean,
  Choice,          // one of `choices`
  Bytes,           // 25MB, 64MiB
  BytesList,       // [1MiB, 64MiB, 1GiB]
  Bandwidth,       // 300GB/s, 200Gbps
  Duration,        // 1us, 30ms
  OptimizerArguments,  // map validated by the optimizer catalog for the chosen optimizer
  SweepMap,        // map of key path -> list of values
};

std::string_view to_string(ValueType type);

struct SchemaKey {
  std::string path;            // "strategy.tp"; list items as "cluster.node_groups[].nodes"
  ValueType type = ValueType::String;
  std::string unit;            // for documentation: "GB/s", "sequences", ...
  std::string default_text;    // as a user would write it; "" = no default (optional or required)
  std::vector<std::string> choices;
  std::string doc;
  double minimum = -std::numeric_limits<double>::infinity();
  double maximum = std::numeric_limits<double>::infinity();
  bool required = false;
  bool sweepable = true;       // scalar keys can be swept
};

std::span<const SchemaKey> scenario_schema();
// Looks a key up by its path; list indices are ignored ("node_groups[1].nic" finds
// "node_groups[].nic"). Returns nullptr for unknown keys.
const SchemaKey* find_schema_key(std::string_view path);
// "cluster.node_groups[1].nic" -> "cluster.node_groups[].nic"
std::string schema_path(std::string_view indexed_path);

// Checks a parsed scenario document against the table: unknown keys (with the valid keys at
// that level), wrong types, bad units, out-of-range numbers, invalid choices, missing required
// keys. Semantic checks across keys (dp*tp*pp*cp = GPUs, ...) are validate_scenario's job.
std::vector<ValidationError> check_document(const YAML::Node& document);
// Checks one scalar value for a key (used by the sweep parser and the GUI's fields).
std::vector<ValidationError> check_value(const SchemaKey& key, const YAML::Node& value,
                                         const std::string& path);

// The reference document (docs/scenario-reference.md), generated from the table.
std::string scenario_reference_markdown();

}  // namespace tandem::strategy
