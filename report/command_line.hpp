#pragma once
// What every Tandem command line does the same way: exit codes, the end of argument parsing
// (--help, --version, a usage error) and where logs go.

#include <optional>
#include <string>

namespace CLI {
class App;
}

namespace tandem::report {

inline constexpr int kExitFailure = 1;   // the run failed (a simulation, a training run, a file)
inline constexpr int kExitBadInput = 2;  // the input was wrong: arguments, a scenario, a profile

// Parses argv into `app`. Returns nothing when the command should go on, else its exit code: 0
// after --help or --version (printed), kExitBadInput after a usage error (CLI11 printed why).
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv);

// Logs go to stderr as "level: message" through spdlog's default logger named `program`:
// warnings and up, info with neither flag, errors only with --quiet, debug with --verbose.
void log_to_stderr(const std::string& program, bool quiet, bool verbose);

}  // namespace tandem::report
