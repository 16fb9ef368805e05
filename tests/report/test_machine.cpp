// Provenance helpers, the trace record's fill-in from a program op, and enum names.

#include <unistd.h>

#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "report/enum_names.hpp"
#include "report/machine.hpp"
#include "report/trace_record.hpp"

namespace tandem::report {
namespace {

// Test vectors from FIPS 180-2 appendix B and, for the padding boundaries (55, 56, 63 and 64
// bytes: one or two final blocks), digests printed by coreutils' sha256sum.
TEST(Sha256, MatchesPublishedTestVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_EQ(sha256_hex(std::string(55, 'a')),
            "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  EXPECT_EQ(sha256_hex(std::string(56, 'a')),
            "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  EXPECT_EQ(sha256_hex(std::string(63, 'a')),
            "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34");
  EXPECT_EQ(sha256_hex(std::string(64, 'a')),
            "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

TEST(Machine, DescribesThisMachine) {
  const MachineDescription machine = describe_machine();
  EXPECT_FALSE(machine.cpu_model.empty());
  const unsigned hardware_threads = std::thread::hardware_concurrency();
  if (hardware_threads > 0) {
    EXPECT_EQ(machine.logical_cores, static_cast<int>(hardware_threads));
  }
  EXPECT_GT(machine.memory_bytes, 64ull << 20);  // more than 64 MiB: any machine that runs this
  char hostname[256] = {};
  ASSERT_EQ(::gethostname(hostname, sizeof hostname - 1), 0);
  EXPECT_EQ(machine.hostname, hostname);
  const std::string summary = machine.summary();
  EXPECT_EQ(summary.rfind(std::string(hostname) + ": ", 0), 0u) << summary;
  EXPECT_NE(summary.find(machine.cpu_model), std::string::npos) << summary;
  EXPECT_NE(summary.find("GiB"), std::string::npos) << summary;
}

TEST(TraceRecord, RecordForCopiesTheOpsDescriptiveFields) {
  strategy::Op op;
  op.id = 42;
  op.code = strategy::OpCode::MlpUpForward;
  op.type = strategy::OpType::Compute;
  op.stream = strategy::Stream::Compute;
  op.phase = strategy::Phase::Forward;
  op.layer = 7;
  op.micro_batch = 3;
  op.flops = 1.5e12;
  op.bytes = 2.5e8;
  const TraceRecord record = record_for(op, 12, 2, 0.25, 0.75);
  EXPECT_EQ(record.rank, 12);
  EXPECT_EQ(record.rank_class, 2);
  EXPECT_EQ(record.op_id, 42u);
  EXPECT_EQ(record.code, strategy::OpCode::MlpUpForward);
  EXPECT_EQ(record.stream, strategy::Stream::Compute);
  EXPECT_EQ(record.phase, strategy::Phase::Forward);
  EXPECT_EQ(record.layer, 7);
  EXPECT_EQ(record.micro_batch, 3);
  EXPECT_EQ(record.flops, 1.5e12);
  EXPECT_EQ(record.bytes, 2.5e8);
  EXPECT_EQ(record.start_s, 0.25);
  EXPECT_EQ(record.end_s, 0.75);
}

TEST(EnumNames, EveryNameMapsBackToItsValue) {
  using strategy::OpCode;
  for (int value = 0; value <= static_cast<int>(OpCode::OptimizerStep); ++value) {
    const auto code = static_cast<OpCode>(value);
    EXPECT_EQ(op_code_from_name(strategy::to_string(code)), code) << strategy::to_string(code);
  }
  for (int value = 0; value < strategy::kStreamCount; ++value) {
    const auto stream = static_cast<strategy::Stream>(value);
    EXPECT_EQ(stream_from_name(strategy::to_string(stream)), stream);
  }
  EXPECT_EQ(phase_from_name("backward-weight"), strategy::Phase::BackwardWeight);
  EXPECT_EQ(op_code_from_name("qkv-fwd"), OpCode::QkvForward);
  EXPECT_EQ(stream_from_name("tp-comm"), strategy::Stream::TpComm);
  EXPECT_FALSE(op_code_from_name("no-such-op"));
  EXPECT_FALSE(op_code_from_name("?"));
  EXPECT_FALSE(phase_from_name(""));
}

}  // namespace
}  // namespace tandem::report
