#include "strategy/embedded_files.hpp"

namespace tandem::strategy {

const EmbeddedFile* find_embedded(std::span<const EmbeddedFile> files, std::string_view name) {
  for (const EmbeddedFile& file : files)
    if (name == file.name) return &file;
  return nullptr;
}

}  // namespace tandem::strategy
