#include "engine/checkpoint/fault_injection.hpp"

#include <signal.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <cstdlib>
#include <string>

#include "engine/checkpoint/checkpoint.hpp"

namespace tandem::engine::checkpoint {
namespace {

constexpr std::array<KillPhase, 7> kPhases{
    KillPhase::ShardPartial,    KillPhase::ShardWritten,    KillPhase::ShardRenamed,
    KillPhase::Barrier,         KillPhase::ManifestWritten, KillPhase::ManifestRenamed,
    KillPhase::Retention};

std::string valid_phases() {
  std::string text;
  for (const KillPhase phase : kPhases) {
    if (!text.empty()) text += ", ";
    text += to_string(phase);
  }
  return text;
}

[[noreturn]] void refuse(std::string_view text, const std::string& why) {
  throw CheckpointError(std::string(kKillEnvironmentVariable) + "='" + std::string(text) +
                        "': " + why + " (expected <phase>[:<rank>][@<step>] with phase one of " +
                        valid_phases() + ")");
}

template <typename Integer>
Integer parse_integer(std::string_view whole, std::string_view digits, const char* what) {
  Integer value{};
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || error != std::errc() || end != digits.data() + digits.size() || value < 0) {
    refuse(whole, std::string("the ") + what + " '" + std::string(digits) +
                      "' is not a non-negative integer");
  }
  return value;
}

}  // namespace

std::string_view to_string(KillPhase phase) {
  switch (phase) {
    case KillPhase::ShardPartial: return "shard-partial";
    case KillPhase::ShardWritten: return "shard-written";
    case KillPhase::ShardRenamed: return "shard-renamed";
    case KillPhase::Barrier: return "barrier";
    case KillPhase::ManifestWritten: return "manifest-written";
    case KillPhase::ManifestRenamed: return "manifest-renamed";
    case KillPhase::Retention: return "retention";
  }
  return "?";
}

std::span<const KillPhase> all_kill_phases() { return kPhases; }

KillRequest parse_kill_request(std::string_view text) {
  KillRequest request;
  std::string_view rest = text;
  if (const auto at = rest.find('@'); at != std::string_view::npos) {
    request.step = parse_integer<std::int64_t>(text, rest.substr(at + 1), "step");
    rest = rest.substr(0, at);
  }
  if (const auto colon = rest.find(':'); colon != std::string_view::npos) {
    request.rank = parse_integer<int>(text, rest.substr(colon + 1), "rank");
    rest = rest.substr(0, colon);
  }
  for (const KillPhase phase : kPhases) {
    if (rest == to_string(phase)) {
      request.phase = phase;
      return request;
    }
  }
  refuse(text, "unknown phase '" + std::string(rest) + "'");
}

std::optional<KillRequest> kill_request_from_environment() {
  const char* value = std::getenv(kKillEnvironmentVariable);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return parse_kill_request(value);
}

void kill_point(const std::optional<KillRequest>& request, KillPhase phase, int rank,
                std::int64_t step) {
  if (!request || request->phase != phase) return;
  if (request->rank && *request->rank != rank) return;
  if (request->step && *request->step != step) return;
  const std::string line = std::string(kKillEnvironmentVariable) + ": killing rank " +
                           std::to_string(rank) + " at phase " + std::string(to_string(phase)) +
                           " of step " + std::to_string(step) + "\n";
  [[maybe_unused]] const ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  ::kill(::getpid(), SIGKILL);
  ::_exit(137);  // not reached
}

}  // namespace tandem::engine::checkpoint
