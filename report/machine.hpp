#pragma once
// Provenance helpers: what machine a run ran on, and content hashes of the inputs it used
// (hardware profiles, scenarios), so a stored result can be traced back to exactly what
// produced it.

#include <cstdint>
#include <string>
#include <string_view>

namespace tandem::report {

struct MachineDescription {
  std::string hostname;
  std::string cpu_model;        // "model name" from /proc/cpuinfo ("unknown CPU" if absent)
  int logical_cores = 0;        // online logical CPUs
  std::uint64_t memory_bytes = 0;  // MemTotal from /proc/meminfo (0 if unknown)
  std::string operating_system;    // uname: "Linux 6.1.0-18-amd64 x86_64"

  // One line for the run store's `host` column:
  // "node17: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz, 64 logical cores, 503.5 GiB, Linux ..."
  std::string summary() const;
};

// Reads /proc/cpuinfo, /proc/meminfo and uname; never throws (missing facts stay "unknown"/0).
MachineDescription describe_machine();

// SHA-256 (FIPS 180-4) of `bytes` as 64 lowercase hex digits: the same string `sha256sum`
// prints for the file, so a user can check a stored profile_hash against a profile on disk.
std::string sha256_hex(std::string_view bytes);

}  // namespace tandem::report
