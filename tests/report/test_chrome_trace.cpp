// The Chrome trace parses as JSON and carries the processes, threads and events Perfetto shows.

#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "report/atomic_file.hpp"
#include "report/chrome_trace.hpp"
#include "tests/support/temporary_directory.hpp"

namespace tandem::report {
namespace {

using nlohmann::json;
using strategy::OpCode;
using strategy::Phase;
using strategy::Stream;
using testing::TemporaryDirectory;

TraceRecord make(int rank, int rank_class, Stream stream, std::uint32_t op_id, OpCode code,
                 Phase phase, int layer, int micro_batch, double start_s, double end_s) {
  TraceRecord record;
  record.rank = rank;
  record.rank_class = rank_class;
  record.stream = stream;
  record.op_id = op_id;
  record.code = code;
  record.phase = phase;
  record.layer = layer;
  record.micro_batch = micro_batch;
  record.bytes = 1024.0 * (op_id + 1);
  record.flops = 1e9 * (op_id + 1);
  record.start_s = start_s;
  record.end_s = end_s;
  return record;
}

std::vector<TraceRecord> two_ranks() {
  return {
      make(0, 0, Stream::Compute, 0, OpCode::StepBegin, Phase::None, -1, -1, 0.0, 0.0),
      make(0, 0, Stream::Compute, 1, OpCode::QkvForward, Phase::Forward, 3, 1, 0.000125, 0.0005),
      make(0, 0, Stream::TpComm, 2, OpCode::TpAttentionOutputForward, Phase::Forward, 3, 1,
           0.0005, 0.00075),
      make(1, 1, Stream::Compute, 1, OpCode::QkvForward, Phase::Forward, 3, 1, 0.0001, 0.0004),
      make(1, 1, Stream::DpComm, 7, OpCode::DpGradientReduce, Phase::BackwardWeight, -1, -1,
           1.5, 2.0),
  };
}

// Metadata by (name, pid, tid) -> args.name or args.sort_index; complete events in file order.
struct Parsed {
  std::map<std::tuple<std::string, long, long>, json> metadata;
  std::vector<json> events;
};

Parsed parse(const std::string& text) {
  const json document = json::parse(text);  // throws (fails the test) on invalid JSON
  Parsed parsed;
  for (const json& event : document.at("traceEvents")) {
    const std::string phase = event.at("ph");
    if (phase == "M") {
      const json& args = event.at("args");
      parsed.metadata[{event.at("name").get<std::string>(), event.at("pid").get<long>(),
                       event.at("tid").get<long>()}] =
          args.contains("name") ? args.at("name") : args.at("sort_index");
    } else {
      EXPECT_EQ(phase, "X");
      parsed.events.push_back(event);
    }
  }
  return parsed;
}

TEST(ChromeTrace, ProcessesThreadsAndCompleteEvents) {
  const auto records = two_ranks();
  std::ostringstream out;
  write_chrome_trace(out, records);
  const Parsed parsed = parse(out.str());

  EXPECT_EQ(parsed.metadata.at({"process_name", 0, 0}), "rank 0 (class 0)");
  EXPECT_EQ(parsed.metadata.at({"process_name", 1, 0}), "rank 1 (class 1)");
  EXPECT_EQ(parsed.metadata.at({"process_sort_index", 1, 0}), 1);
  EXPECT_EQ(parsed.metadata.at({"thread_name", 0, 0}), "compute");
  EXPECT_EQ(parsed.metadata.at({"thread_name", 0, 1}), "tp-comm");
  EXPECT_EQ(parsed.metadata.at({"thread_name", 1, 3}), "dp-comm");
  EXPECT_EQ(parsed.metadata.at({"thread_sort_index", 1, 3}), 3);
  // 2 processes x 2 entries + 4 (rank, stream) threads x 2 entries.
  EXPECT_EQ(parsed.metadata.size(), 12u);

  ASSERT_EQ(parsed.events.size(), records.size());
  const json& qkv = parsed.events[1];
  EXPECT_EQ(qkv.at("name"), "qkv-fwd L3 mb1");
  EXPECT_EQ(qkv.at("cat"), "forward");
  EXPECT_EQ(qkv.at("pid"), 0);
  EXPECT_EQ(qkv.at("tid"), 0);
  EXPECT_NEAR(qkv.at("ts").get<double>(), 125.0, 1e-9);   // microseconds
  EXPECT_NEAR(qkv.at("dur").get<double>(), 375.0, 1e-9);
  const json& args = qkv.at("args");
  EXPECT_EQ(args.at("op_id"), 1);
  EXPECT_EQ(args.at("phase"), "forward");
  EXPECT_EQ(args.at("layer"), 3);
  EXPECT_EQ(args.at("micro_batch"), 1);
  EXPECT_EQ(args.at("bytes"), 2048.0);
  EXPECT_EQ(args.at("flops"), 2e9);

  EXPECT_EQ(parsed.events[0].at("name"), "step-begin");  // no layer / micro-batch suffix
  EXPECT_EQ(parsed.events[0].at("dur"), 0.0);
  const json& reduce = parsed.events[4];
  EXPECT_EQ(reduce.at("name"), "dp-grad-reduce");
  EXPECT_EQ(reduce.at("pid"), 1);
  EXPECT_EQ(reduce.at("tid"), 3);
  EXPECT_NEAR(reduce.at("ts").get<double>(), 1.5e6, 1e-6);
  EXPECT_NEAR(reduce.at("dur").get<double>(), 0.5e6, 1e-6);
  EXPECT_EQ(reduce.at("cat"), "backward-weight");
}

TEST(ChromeTrace, PredictionAndMeasurementSideBySide) {
  const auto predicted = two_ranks();
  auto measured = two_ranks();
  for (auto& record : measured) record.end_s *= 1.1;
  const LabeledTrace traces[] = {{"predicted", predicted}, {"measured", measured}};
  std::ostringstream out;
  write_chrome_trace(out, traces);
  const Parsed parsed = parse(out.str());
  // Ranks 0..1 -> stride 10: measured rank 1 is pid 11.
  EXPECT_EQ(parsed.metadata.at({"process_name", 1, 0}), "predicted: rank 1 (class 1)");
  EXPECT_EQ(parsed.metadata.at({"process_name", 11, 0}), "measured: rank 1 (class 1)");
  EXPECT_EQ(parsed.metadata.at({"thread_name", 10, 1}), "tp-comm");
  ASSERT_EQ(parsed.events.size(), 2 * predicted.size());
  EXPECT_EQ(parsed.events[predicted.size() + 4].at("pid"), 11);
}

TEST(ChromeTrace, LargeTraceIsWrittenToAFileAndParses) {
  TemporaryDirectory directory;
  std::vector<TraceRecord> records;
  const int ranks = 64;
  const int ops_per_rank = 500;  // 32000 events (10^6 are measured outside the unit tests)
  for (int rank = 0; rank < ranks; ++rank) {
    for (int i = 0; i < ops_per_rank; ++i) {
      records.push_back(make(rank, rank % 4, static_cast<Stream>(i % strategy::kStreamCount),
                             static_cast<std::uint32_t>(i), OpCode::MlpUpForward, Phase::Forward,
                             i % 12, i % 8, i * 1e-3, i * 1e-3 + 5e-4));
    }
  }
  const auto path = directory / "trace.json";
  write_chrome_trace(path, records);
  const Parsed parsed = parse(read_file(path));
  EXPECT_EQ(parsed.events.size(), records.size());
  EXPECT_EQ(parsed.metadata.size(), 2u * ranks + 2u * ranks * strategy::kStreamCount);
  const json& last = parsed.events.back();
  EXPECT_EQ(last.at("pid"), ranks - 1);
  EXPECT_NEAR(last.at("ts").get<double>(), (ops_per_rank - 1) * 1e3, 1e-6);
  EXPECT_NEAR(last.at("dur").get<double>(), 500.0, 1e-6);
}

TEST(ChromeTrace, MissingDirectoryIsAFileError) {
  TemporaryDirectory directory;
  const auto records = two_ranks();
  EXPECT_THROW(write_chrome_trace(directory / "missing" / "trace.json", records), FileError);
}

TEST(ChromeTrace, EmptyTraceIsValidJson) {
  std::ostringstream out;
  write_chrome_trace(out, std::span<const TraceRecord>{});
  EXPECT_TRUE(json::parse(out.str()).at("traceEvents").empty());
}

}  // namespace
}  // namespace tandem::report
