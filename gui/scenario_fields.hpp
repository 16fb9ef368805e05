#pragma once
// The editor's view of the scenario schema (strategy/schema.hpp), without Qt: which keys get a
// field in the form, in which section, and reading / writing one key of a YAML document by its
// dotted path. The form is generated from scenario_schema(); the only thing decided here is
// which of the schema's keys are "common" (shown without "Show all fields").

#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "strategy/scenario.hpp"
#include "strategy/schema.hpp"

namespace tandem::gui {

struct FormSection {
  std::string key;    // "" (top level), "model", "cluster", "strategy", "training", "collective"
  std::string title;  // "Scenario", "Model", ...
};

struct FormField {
  const strategy::SchemaKey* key = nullptr;  // into scenario_schema()
  std::string section;                       // FormSection::key
  bool common = false;                       // shown without "Show all fields"
  // Suggested values for free-text keys (built-in hardware profiles for cluster.gpu); the
  // schema's choices for Choice keys.
  std::vector<std::string> suggestions;
};

// Sections in form order.
const std::vector<FormSection>& form_sections();
// Every scalar key of the schema outside lists of sections and the `predicted:` block, in
// schema order. The list is built once.
const std::vector<FormField>& form_fields();
const FormField* find_form_field(const std::string& path);

// The scalar at `path` ("strategy.tp") as written, nullopt when absent. A sequence of scalars
// (collective.sizes) reads as "1MiB, 64MiB".
std::optional<std::string> value_at(const YAML::Node& document, const std::string& path);
// The 0-based line of the node at an error path ("strategy.tp", "cluster.node_groups[1].nic"),
// or of its closest existing ancestor; nullopt when nothing of it is in the document.
std::optional<int> line_of(const YAML::Node& document, const std::string& path);
// Sets `path` to `text` in place (intermediate maps are created). Text for a BytesList key is
// split at commas into a sequence; everything else is stored as one scalar.
void set_value(YAML::Node& document, const std::string& path, const std::string& text,
               strategy::ValueType type);
// Removes `path`; a section left empty is removed too.
void remove_value(YAML::Node& document, const std::string& path);

// The node a field's text stands for (what set_value would store), for check_value.
YAML::Node node_for_text(const std::string& text, strategy::ValueType type);
// Field-level check of text typed into a field: the schema's check_value.
std::vector<strategy::ValidationError> check_field_text(const strategy::SchemaKey& key,
                                                        const std::string& text);

// What a key resolves to in a validated scenario when the document leaves it unset (a model
// preset's layers, dp from auto, the profile's NIC bandwidth), for the form's placeholders.
std::optional<std::string> resolved_text(const strategy::Scenario& scenario, const std::string& path);

// A human-readable line about a key for tooltips: type, unit, default, valid values, doc.
std::string describe_key(const strategy::SchemaKey& key);

}  // namespace tandem::gui
