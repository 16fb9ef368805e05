#include "report/chrome_trace.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <set>
#include <string_view>
#include <utility>

#include "report/atomic_file.hpp"

namespace tandem::report {
namespace {

// Collects output in a buffer and hands it to `sink` in large pieces.
class BufferedOutput {
 public:
  explicit BufferedOutput(std::function<void(std::string_view)> sink) : sink_(std::move(sink)) {
    buffer_.reserve(kFlushBytes + 4096);
  }
  BufferedOutput& operator<<(std::string_view text) {
    buffer_.append(text);
    if (buffer_.size() >= kFlushBytes) flush();
    return *this;
  }
  BufferedOutput& operator<<(char c) {
    buffer_.push_back(c);
    return *this;
  }
  BufferedOutput& integer(long long value) {
    char text[32];
    const auto result = std::to_chars(text, text + sizeof text, value);
    return *this << std::string_view(text, static_cast<std::size_t>(result.ptr - text));
  }
  BufferedOutput& integer_after(std::string_view prefix, long long value) {
    *this << prefix;
    return integer(value);
  }
  // A JSON number: fixed decimals (microsecond times to the nanosecond), or the shortest form
  // that reads back as the same double; non-finite values are not JSON and become null.
  BufferedOutput& number(double value, int fixed_decimals = -1) {
    if (!std::isfinite(value)) return *this << "null";
    char text[400];
    const auto result =
        fixed_decimals >= 0
            ? std::to_chars(text, text + sizeof text, value, std::chars_format::fixed,
                            fixed_decimals)
            : std::to_chars(text, text + sizeof text, value);
    return *this << std::string_view(text, static_cast<std::size_t>(result.ptr - text));
  }
  // A JSON string literal with ", \ and control characters escaped.
  BufferedOutput& string(std::string_view text) {
    buffer_.push_back('"');
    for (const char c : text) {
      switch (c) {
        case '"': buffer_.append("\\\""); break;
        case '\\': buffer_.append("\\\\"); break;
        case '\n': buffer_.append("\\n"); break;
        case '\t': buffer_.append("\\t"); break;
        case '\r': buffer_.append("\\r"); break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
            buffer_.append(escaped);
          } else {
            buffer_.push_back(c);
          }
      }
    }
    buffer_.push_back('"');
    return *this;
  }
  void flush() {
    if (!buffer_.empty()) sink_(buffer_);
    buffer_.clear();
  }

 private:
  static constexpr std::size_t kFlushBytes = 1 << 20;
  std::function<void(std::string_view)> sink_;
  std::string buffer_;
};

// "qkv-fwd L3 mb1": the op code (a name from strategy::to_string, which needs no escaping),
// then the layer and micro-batch when the op has them.
void write_event_name(BufferedOutput& out, const TraceRecord& record) {
  out << '"' << strategy::to_string(record.code);
  if (record.layer >= 0) out.integer_after(" L", record.layer);
  if (record.micro_batch >= 0) out.integer_after(" mb", record.micro_batch);
  out << '"';
}

void write_events(BufferedOutput& out, std::span<const LabeledTrace> traces) {
  int max_rank = 0;
  for (const LabeledTrace& trace : traces) {
    for (const TraceRecord& record : trace.records) max_rank = std::max(max_rank, record.rank);
  }
  long long pid_stride = 10;
  while (pid_stride <= max_rank) pid_stride *= 10;

  out << "{\"traceEvents\":[\n";
  bool first = true;
  const auto begin_event = [&] {
    if (!first) out << ",\n";
    first = false;
  };

  for (std::size_t index = 0; index < traces.size(); ++index) {
    const LabeledTrace& trace = traces[index];
    const long long pid_offset = traces.size() == 1 ? 0 : static_cast<long long>(index) * pid_stride;
    const std::string prefix = trace.label.empty() ? "" : trace.label + ": ";

    // Metadata first: name and order every process (rank) and thread (stream) that appears.
    std::map<int, int> class_of_rank;
    std::set<std::pair<int, int>> streams_of_rank;
    for (const TraceRecord& record : trace.records) {
      class_of_rank.emplace(record.rank, record.rank_class);
      streams_of_rank.emplace(record.rank, static_cast<int>(record.stream));
    }
    for (const auto& [rank, rank_class] : class_of_rank) {
      const long long pid = pid_offset + rank;
      begin_event();
      out << "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":";
      out.integer(pid) << ",\"tid\":0,\"args\":{\"name\":";
      out.string(prefix + "rank " + std::to_string(rank) + " (class " +
                 std::to_string(rank_class) + ")");
      out << "}}";
      begin_event();
      out << "{\"ph\":\"M\",\"name\":\"process_sort_index\",\"pid\":";
      out.integer(pid) << ",\"tid\":0,\"args\":{\"sort_index\":";
      out.integer(pid) << "}}";
    }
    for (const auto& [rank, stream] : streams_of_rank) {
      const long long pid = pid_offset + rank;
      begin_event();
      out << "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":";
      out.integer(pid) << ",\"tid\":";
      out.integer(stream) << ",\"args\":{\"name\":";
      out.string(strategy::to_string(static_cast<strategy::Stream>(stream)));
      out << "}}";
      begin_event();
      out << "{\"ph\":\"M\",\"name\":\"thread_sort_index\",\"pid\":";
      out.integer(pid) << ",\"tid\":";
      out.integer(stream) << ",\"args\":{\"sort_index\":";
      out.integer(stream) << "}}";
    }

    for (const TraceRecord& record : trace.records) {
      begin_event();
      out << "{\"ph\":\"X\",\"name\":";
      write_event_name(out, record);
      out << ",\"cat\":";
      out.string(strategy::to_string(record.phase));
      out << ",\"pid\":";
      out.integer(pid_offset + record.rank) << ",\"tid\":";
      out.integer(static_cast<int>(record.stream)) << ",\"ts\":";
      out.number(record.start_s * 1e6, 3) << ",\"dur\":";
      // A negative duration would make the viewers drop the event; show it as instantaneous.
      out.number(std::max(0.0, record.end_s - record.start_s) * 1e6, 3);
      out << ",\"args\":{\"op_id\":";
      out.integer(record.op_id) << ",\"phase\":";
      out.string(strategy::to_string(record.phase));
      out << ",\"layer\":";
      out.integer(record.layer) << ",\"micro_batch\":";
      out.integer(record.micro_batch) << ",\"bytes\":";
      out.number(record.bytes) << ",\"flops\":";
      out.number(record.flops) << "}}";
    }
  }
  out << "\n],\"displayTimeUnit\":\"ms\"}\n";
  out.flush();
}

}  // namespace

void write_chrome_trace(std::ostream& out, std::span<const LabeledTrace> traces) {
  BufferedOutput buffered([&out](std::string_view bytes) {
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  });
  write_events(buffered, traces);
}

void write_chrome_trace(std::ostream& out, std::span<const TraceRecord> records) {
  const LabeledTrace trace{"", records};
  write_chrome_trace(out, std::span<const LabeledTrace>(&trace, 1));
}

void write_chrome_trace(const std::filesystem::path& path, std::span<const LabeledTrace> traces) {
  AtomicFileWriter writer(path);
  BufferedOutput buffered([&writer](std::string_view bytes) { writer.append(bytes); });
  write_events(buffered, traces);
  writer.commit();
}

void write_chrome_trace(const std::filesystem::path& path, std::span<const TraceRecord> records) {
  const LabeledTrace trace{"", records};
  write_chrome_trace(path, std::span<const LabeledTrace>(&trace, 1));
}

}  // namespace tandem::report
