#pragma once
// Structured validation errors: the CLI prints one line each, the GUI shows them beside the
// field named by `path` (e.g. "strategy.tp", "cluster.node_groups[1].nic.count").

#include <stdexcept>
#include <string>
#include <vector>

namespace tandem::strategy {

struct ValidationError {
  std::string path;      // dotted key path; list items as [i]
  std::string value;     // the offending value as written ("" when missing)
  std::string expected;  // what would be valid

  // "strategy.tp: 3 is invalid; expected a divisor of heads (96): 1, 2, 3, 4, 6, 8, ..."
  std::string message() const;
};

// Thrown by load_scenario and friends when the input is invalid; what() joins every message.
class ScenarioError : public std::runtime_error {
 public:
  explicit ScenarioError(std::vector<ValidationError> errors);
  const std::vector<ValidationError>& errors() const { return errors_; }

 private:
  std::vector<ValidationError> errors_;
};

}  // namespace tandem::strategy
