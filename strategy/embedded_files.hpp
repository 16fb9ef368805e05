#pragma once
// Data files compiled into the binaries (cmake: tandem_embed_text_files), so an installed tool
// needs no source tree: built-in hardware profiles, model presets and example scenarios.

#include <span>
#include <string_view>

namespace tandem::strategy {

struct EmbeddedFile {
  const char* name;      // file stem, e.g. "a100-80gb"
  const char* contents;  // the YAML text
};

std::span<const EmbeddedFile> builtin_profile_files();   // strategy/data/profiles/*.yaml
std::span<const EmbeddedFile> builtin_model_files();     // strategy/data/models/*.yaml
std::span<const EmbeddedFile> builtin_scenario_files();  // scenarios/*.yaml

// nullptr when there is no such file.
const EmbeddedFile* find_embedded(std::span<const EmbeddedFile> files, std::string_view name);

}  // namespace tandem::strategy
