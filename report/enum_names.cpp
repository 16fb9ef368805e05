#include "report/enum_names.hpp"

#include <limits>
#include <string>
#include <type_traits>
#include <unordered_map>

namespace tandem::report {
namespace {

// Every value of the enum's underlying type that strategy::to_string names (it answers "?" for
// values outside the enum), so codes appended to the enum later are found without a list here.
template <typename Enum>
std::unordered_map<std::string, Enum> build_name_table() {
  using Underlying = std::underlying_type_t<Enum>;
  static_assert(sizeof(Underlying) <= 2, "enum too wide to enumerate");
  std::unordered_map<std::string, Enum> table;
  for (unsigned value = 0; value <= std::numeric_limits<Underlying>::max(); ++value) {
    const auto candidate = static_cast<Enum>(static_cast<Underlying>(value));
    const std::string_view name = strategy::to_string(candidate);
    if (name != "?") table.emplace(std::string(name), candidate);
  }
  return table;
}

template <typename Enum>
std::optional<Enum> lookup(std::string_view name) {
  static const std::unordered_map<std::string, Enum> table = build_name_table<Enum>();
  const auto found = table.find(std::string(name));
  if (found == table.end()) return std::nullopt;
  return found->second;
}

}  // namespace

std::optional<strategy::OpCode> op_code_from_name(std::string_view name) {
  return lookup<strategy::OpCode>(name);
}
std::optional<strategy::Stream> stream_from_name(std::string_view name) {
  return lookup<strategy::Stream>(name);
}
std::optional<strategy::Phase> phase_from_name(std::string_view name) {
  return lookup<strategy::Phase>(name);
}

}  // namespace tandem::report
