#pragma once
// Raw nccl-tests output (all_reduce_perf, all_gather_perf, reduce_scatter_perf, alltoall_perf,
// broadcast_perf, sendrecv_perf, ...) as users already have it: one or several test sections per
// file, each a header ("# nThread 1 nGpus 8 minBytes ..."), the device list ("#  Rank  0 ... on
// node-000000 device  0 [...] A100-SXM4-40GB") and the result table
//
//   size  count  type  redop  [root]  time algbw busbw #wrong|error  time algbw busbw #wrong|error
//                                     \_____ out-of-place ______/  \______ in-place ________/
//
// The parser is tolerant of what real logs contain: mpirun's "[1,0]<stdout>:" prefixes (also in
// the middle of a line, where two ranks' output interleaved), "N/A" error columns, tables with or
// without the root column, "# Reducing maxBytes" notes, several sections per file ("# Collective
// test starting: all_gather_perf"), and lines that are not table rows. A section whose test is
// not named (older nccl-tests print no "starting" line) gets its collective from the file name
// (all_reduce_perf.log) or, failing that, from busbw/algbw and the redop: 2(n-1)/n is an
// all-reduce; (n-1)/n with a reduction a reduce-scatter, without one an all-gather (alltoall has
// the same factor and no reduction: name it in the file or the log to tell them apart); 1 with
// n > 2 a broadcast. `collective_inferred` says which sections were inferred.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "strategy/program.hpp"

namespace tandem::calibration {

struct NcclMeasurement {
  double time_us = 0;
  double algbw_gbps = 0;  // GB/s (1e9 bytes/s), as nccl-tests prints
  double busbw_gbps = 0;
};

struct NcclRow {
  double size_bytes = 0;
  double count = 0;
  std::string type;   // float, double, half, ...
  std::string redop;  // sum, none, ...
  int root = -1;
  NcclMeasurement out_of_place;
  std::optional<NcclMeasurement> in_place;  // absent when the line was cut short
};

struct NcclSection {
  std::string file;          // the log it came from
  int index = 0;             // section number within the file (0-based)
  std::string test;          // "all_reduce_perf" as the log names it ("" when it does not)
  std::string collective;    // all_reduce, all_gather, reduce_scatter, alltoall, broadcast, reduce, sendrecv, ...
  bool collective_inferred = false;
  int gpus = 0;              // ranks in the device list (header nThread·nGpus when it has none)
  int nodes = 0;             // distinct host names in the device list (0 when unknown)
  int gpus_per_node = 0;     // gpus / nodes when every node has the same count, else 0
  std::string gpu_model;     // from the device list ("A100-SXM4-40GB")
  std::vector<NcclRow> rows;

  // The program's collective kind for this section, when the twin models it.
  std::optional<strategy::CollectiveKind> kind() const;
};

struct NcclLog {
  std::string file;
  std::vector<NcclSection> sections;  // sections without any table row are dropped
  std::vector<std::string> warnings;  // lines that looked like table rows but did not parse
};

// Parses one log's text; `file` names it in sections and warnings (and may name the test).
NcclLog parse_nccl_log(const std::string& text, const std::string& file = "");
// Reads and parses a file. Throws std::runtime_error naming the path when it cannot be read.
NcclLog read_nccl_log(const std::filesystem::path& path);

// nccl-tests' bus-bandwidth factor for a collective name over n ranks (0 when unknown).
double nccl_bus_factor(const std::string& collective, int n);

}  // namespace tandem::calibration
