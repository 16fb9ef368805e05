#pragma once
// The inverse of strategy's to_string: a program enum from the name it is stored under (in the
// run store, in trace JSON). Names, not numeric values, are what Tandem persists, so adding an
// OpCode in the middle of the enum does not change the meaning of stored traces.

#include <optional>
#include <string_view>

#include "strategy/program.hpp"

namespace tandem::report {

std::optional<strategy::OpCode> op_code_from_name(std::string_view name);
std::optional<strategy::Stream> stream_from_name(std::string_view name);
std::optional<strategy::Phase> phase_from_name(std::string_view name);

}  // namespace tandem::report
