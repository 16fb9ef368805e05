#pragma once
// Chrome trace event format (the JSON object form, {"traceEvents": [...]}) that opens in
// Perfetto (ui.perfetto.dev) and chrome://tracing.
//
// Layout: one process per rank (pid = rank, named "rank R (class C)"), one thread per stream
// (tid = the stream's index, named "compute", "tp-comm", ...), one complete event ("ph":"X") per
// op with ts/dur in microseconds, name = the op code plus layer and micro-batch
// ("qkv-fwd L3 mb1"), cat = the phase, and args {op_id, phase, layer, micro_batch, bytes,
// flops}. Several traces (a prediction and a measurement) can go into one file side by side:
// each gets its own block of pids and its label in the process names.
//
// The JSON is streamed (no document is built in memory), so 10^6 events cost a buffer, not a
// DOM; files are written with AtomicFileWriter.

#include <filesystem>
#include <ostream>
#include <span>
#include <string>

#include "report/trace_record.hpp"

namespace tandem::report {

struct LabeledTrace {
  std::string label;  // "predicted", "measured"; "" for none
  std::span<const TraceRecord> records;
};

// Process ids: with one trace, pid = rank. With several, trace i's rank r gets
// pid = r + i * stride, stride the smallest power of ten above every rank in the file
// (ranks 0..999 -> 1000, so "measured" rank 3 is pid 1003 next to "predicted" rank 3 at pid 3).

// Writes the traces (one or several) as a Chrome trace to `out`.
void write_chrome_trace(std::ostream& out, std::span<const LabeledTrace> traces);
void write_chrome_trace(std::ostream& out, std::span<const TraceRecord> records);

// Same, replacing `path` atomically. Throws FileError naming the path on failure.
void write_chrome_trace(const std::filesystem::path& path, std::span<const LabeledTrace> traces);
void write_chrome_trace(const std::filesystem::path& path, std::span<const TraceRecord> records);

}  // namespace tandem::report
