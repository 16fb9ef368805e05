// The single-process backend: every operation, split, send/recv to self, Request semantics, and
// the argument checks every backend shares.

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "comm/communicator.hpp"

namespace tandem::comm {
namespace {

// EXPECT that `statement` throws CommError whose message contains every one of `parts`.
#define EXPECT_COMM_ERROR(statement, ...)                                               \
  do {                                                                                  \
    try {                                                                               \
      statement;                                                                        \
      ADD_FAILURE() << "expected CommError from: " #statement;                          \
    } catch (const CommError& error) {                                                  \
      for (const std::string& part : std::initializer_list<std::string>{__VA_ARGS__}) {  \
        EXPECT_NE(std::string(error.what()).find(part), std::string::npos)              \
            << "message \"" << error.what() << "\" lacks \"" << part << "\"";           \
      }                                                                                 \
    }                                                                                   \
  } while (false)

std::vector<float> ramp(std::size_t count, float start) {
  std::vector<float> values(count);
  for (std::size_t i = 0; i < count; ++i) {
    values[i] = start + static_cast<float>(i) * 0.5f;
  }
  return values;
}

TEST(CommDataType, SizesAndNames) {
  EXPECT_EQ(size_of(DataType::Float32), 4u);
  EXPECT_EQ(size_of(DataType::Float64), 8u);
  EXPECT_EQ(size_of(DataType::Int32), 4u);
  EXPECT_EQ(size_of(DataType::Int64), 8u);
  EXPECT_EQ(size_of(DataType::UInt8), 1u);
  EXPECT_EQ(to_string(DataType::Float64), "Float64");
  EXPECT_EQ(to_string(ReduceOp::Average), "Average");
  EXPECT_THROW(size_of(static_cast<DataType>(99)), CommError);
}

TEST(SingleProcess, IdentityAndBackend) {
  auto comm = make_single_process_communicator();
  EXPECT_EQ(comm->rank(), 0);
  EXPECT_EQ(comm->size(), 1);
  EXPECT_EQ(comm->backend(), "single-process");
}

TEST(SingleProcess, AllReduceOfOneRankLeavesEveryOpUnchanged) {
  auto comm = make_single_process_communicator();
  for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Average, ReduceOp::Max, ReduceOp::Min}) {
    std::vector<float> values = ramp(17, -3.0f);
    comm->all_reduce(values.data(), values.size(), DataType::Float32, op);
    EXPECT_EQ(values, ramp(17, -3.0f)) << to_string(op);
    std::vector<double> doubles = {1.25, -2.5, 1e300};
    comm->all_reduce_async(doubles.data(), doubles.size(), DataType::Float64, op)->wait();
    EXPECT_EQ(doubles, (std::vector<double>{1.25, -2.5, 1e300})) << to_string(op);
  }
  std::vector<std::int64_t> integers = {-7, 0, 1LL << 40};
  for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min}) {
    comm->all_reduce(integers.data(), integers.size(), DataType::Int64, op);
  }
  EXPECT_EQ(integers, (std::vector<std::int64_t>{-7, 0, 1LL << 40}));
}

TEST(SingleProcess, AverageOfIntegersIsRejectedLikeOnEveryBackend) {
  auto comm = make_single_process_communicator();
  std::vector<std::int32_t> values = {1, 2, 3};
  EXPECT_COMM_ERROR(comm->all_reduce(values.data(), 3, DataType::Int32, ReduceOp::Average),
                    "rank 0: all-reduce on a group of 1 rank", "Average", "Int32");
  std::vector<std::int32_t> output(3);
  EXPECT_COMM_ERROR(comm->reduce_scatter(values.data(), output.data(), 3, DataType::Int32,
                                         ReduceOp::Average),
                    "reduce-scatter", "Average");
  EXPECT_COMM_ERROR(comm->all_reduce(values.data(), 3, DataType::UInt8, ReduceOp::Average),
                    "UInt8");
}

TEST(SingleProcess, ReduceScatterAllGatherAndAllToAllCopy) {
  auto comm = make_single_process_communicator();
  const std::vector<float> input = ramp(9, 2.0f);
  std::vector<float> output(9, -1.0f);
  comm->reduce_scatter(input.data(), output.data(), 9, DataType::Float32, ReduceOp::Sum);
  EXPECT_EQ(output, input);

  std::vector<float> gathered(9, -1.0f);
  comm->all_gather_async(input.data(), gathered.data(), 9, DataType::Float32)->wait();
  EXPECT_EQ(gathered, input);

  std::vector<float> exchanged(9, -1.0f);
  comm->all_to_all(input.data(), exchanged.data(), 9, DataType::Float32);
  EXPECT_EQ(exchanged, input);

  std::vector<std::uint8_t> bytes = {1, 2, 3};
  std::vector<std::uint8_t> bytes_out(3);
  auto request =
      comm->reduce_scatter_async(bytes.data(), bytes_out.data(), 3, DataType::UInt8, ReduceOp::Max);
  EXPECT_TRUE(request->test());
  EXPECT_EQ(bytes_out, bytes);
}

TEST(SingleProcess, InPlaceAllGatherIsAllowedButOtherOverlapsAreNot) {
  auto comm = make_single_process_communicator();
  std::vector<double> buffer = {4.0, 5.0, 6.0, 7.0};
  comm->all_gather(buffer.data(), buffer.data(), 4, DataType::Float64);  // block 0 of itself
  EXPECT_EQ(buffer, (std::vector<double>{4.0, 5.0, 6.0, 7.0}));
  EXPECT_COMM_ERROR(comm->all_gather(buffer.data() + 1, buffer.data(), 2, DataType::Float64),
                    "all-gather", "overlap");
  EXPECT_COMM_ERROR(comm->reduce_scatter(buffer.data(), buffer.data() + 1, 2, DataType::Float64,
                                         ReduceOp::Sum),
                    "reduce-scatter", "overlap");
  EXPECT_COMM_ERROR(comm->all_to_all(buffer.data(), buffer.data(), 4, DataType::Float64),
                    "all-to-all", "overlap");
}

TEST(SingleProcess, BroadcastNeedsRootZero) {
  auto comm = make_single_process_communicator();
  std::vector<std::int32_t> values = {9, 8, 7};
  comm->broadcast(values.data(), 3, DataType::Int32, 0);
  EXPECT_EQ(values, (std::vector<std::int32_t>{9, 8, 7}));
  EXPECT_COMM_ERROR(comm->broadcast(values.data(), 3, DataType::Int32, 1), "broadcast", "root 1",
                    "valid: 0..0");
}

TEST(SingleProcess, ZeroCountCallsAcceptNullBuffers) {
  auto comm = make_single_process_communicator();
  comm->all_reduce(nullptr, 0, DataType::Float32, ReduceOp::Sum);
  comm->reduce_scatter(nullptr, nullptr, 0, DataType::Float32, ReduceOp::Sum);
  comm->all_gather(nullptr, nullptr, 0, DataType::Int64);
  comm->all_to_all(nullptr, nullptr, 0, DataType::Int64);
  comm->broadcast(nullptr, 0, DataType::UInt8, 0);
  comm->send(nullptr, 0, DataType::Float64, 0, 3);
  comm->recv(nullptr, 0, DataType::Float64, 0, 3);
  EXPECT_TRUE(comm->all_reduce_async(nullptr, 0, DataType::Float32, ReduceOp::Max)->test());
  comm->barrier();
  EXPECT_COMM_ERROR(comm->all_reduce(nullptr, 5, DataType::Float32, ReduceOp::Sum),
                    "buffer is null but count is 5");
}

TEST(SingleProcess, SendToSelfIsQueuedPerTagInOrder) {
  auto comm = make_single_process_communicator();
  const std::vector<std::int32_t> first = {1, 2, 3};
  const std::vector<std::int32_t> second = {4, 5, 6};
  const std::vector<std::int32_t> other_tag = {7};
  comm->send(first.data(), 3, DataType::Int32, 0, 5);
  comm->send(other_tag.data(), 1, DataType::Int32, 0, 9);
  comm->send_async(second.data(), 3, DataType::Int32, 0, 5)->wait();

  std::vector<std::int32_t> received(3);
  std::int32_t single = 0;
  comm->recv(&single, 1, DataType::Int32, 0, 9);  // a later tag first: tags match separately
  EXPECT_EQ(single, 7);
  comm->recv(received.data(), 3, DataType::Int32, 0, 5);
  EXPECT_EQ(received, first);
  auto request = comm->recv_async(received.data(), 3, DataType::Int32, 0, 5);
  EXPECT_TRUE(request->test());  // the message was already queued
  EXPECT_EQ(received, second);
}

TEST(SingleProcess, RecvWithoutASendFailsAtOnceInsteadOfHanging) {
  auto comm = make_single_process_communicator();
  std::vector<float> buffer(4);
  EXPECT_COMM_ERROR(comm->recv(buffer.data(), 4, DataType::Float32, 0, 2),
                    "rank 0: recv from rank 0 (tag 2) on a group of 1 rank", "never complete");
  auto request = comm->recv_async(buffer.data(), 4, DataType::Float32, 0, 2);
  EXPECT_FALSE(request->test());
  EXPECT_COMM_ERROR(request->wait(), "recv from rank 0 (tag 2)", "never complete");
}

TEST(SingleProcess, PostedReceiveCompletesWhenTheSendArrives) {
  auto comm = make_single_process_communicator();
  std::vector<double> received(2, 0.0);
  auto request = comm->recv_async(received.data(), 2, DataType::Float64, 0, 1);
  EXPECT_FALSE(request->test());
  const std::vector<double> message = {3.5, -1.0};
  comm->send(message.data(), 2, DataType::Float64, 0, 1);
  EXPECT_TRUE(request->test());
  request->wait();
  EXPECT_EQ(received, message);
}

TEST(SingleProcess, DestroyingAnUnmatchedReceiveCancelsIt) {
  auto comm = make_single_process_communicator();
  std::vector<float> abandoned(2, -1.0f);
  comm->recv_async(abandoned.data(), 2, DataType::Float32, 0, 4).reset();
  const std::vector<float> message = {1.0f, 2.0f};
  comm->send(message.data(), 2, DataType::Float32, 0, 4);
  EXPECT_EQ(abandoned, (std::vector<float>{-1.0f, -1.0f}));  // never written
  std::vector<float> received(2);
  comm->recv(received.data(), 2, DataType::Float32, 0, 4);  // the message waited in the queue
  EXPECT_EQ(received, message);
}

TEST(SingleProcess, CountOrTypeMismatchIsAnError) {
  auto comm = make_single_process_communicator();
  const std::vector<std::int32_t> message = {1, 2, 3, 4};
  comm->send(message.data(), 4, DataType::Int32, 0, 0);
  std::vector<std::int32_t> received(3);
  EXPECT_COMM_ERROR(comm->recv(received.data(), 3, DataType::Int32, 0, 0),
                    "recv from rank 0 (tag 0)", "expects 3 Int32", "sent 4 Int32");

  std::vector<float> posted(4);
  auto request = comm->recv_async(posted.data(), 4, DataType::Float32, 0, 1);
  EXPECT_COMM_ERROR(comm->send(message.data(), 4, DataType::Int32, 0, 1), "send to rank 0 (tag 1)",
                    "expects 4 Float32");
  EXPECT_THROW(request->wait(), CommError);
}

TEST(SingleProcess, PointToPointArgumentChecks) {
  auto comm = make_single_process_communicator();
  float value = 1.0f;
  EXPECT_COMM_ERROR(comm->send(&value, 1, DataType::Float32, 1, 0), "send to rank 1 (tag 0)",
                    "peer 1 is not a rank of this group");
  EXPECT_COMM_ERROR(comm->recv(&value, 1, DataType::Float32, -1, 0), "peer -1");
  EXPECT_COMM_ERROR(comm->send(&value, 1, DataType::Float32, 0, -4), "tag -4 is invalid");
}

TEST(SingleProcess, SendRecvToSelfExchangesWithoutDeadlock) {
  auto comm = make_single_process_communicator();
  const std::vector<std::int64_t> outgoing = {10, 20, 30};
  std::vector<std::int64_t> incoming(3);
  comm->send_recv(outgoing.data(), 3, 0, incoming.data(), 3, 0, DataType::Int64, 6);
  EXPECT_EQ(incoming, outgoing);
}

TEST(SingleProcess, SplitGivesAnotherWorldOfOneOrNothing) {
  auto comm = make_single_process_communicator();
  comm->set_timeout_seconds(12.5);
  auto child = comm->split(3, 0);
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(child->size(), 1);
  EXPECT_EQ(child->rank(), 0);
  EXPECT_EQ(child->backend(), "single-process");
  EXPECT_EQ(child->timeout_seconds(), 12.5);
  // Messages do not cross communicators.
  const std::int32_t message = 42;
  comm->send(&message, 1, DataType::Int32, 0, 0);
  std::int32_t received = 0;
  EXPECT_THROW(child->recv(&received, 1, DataType::Int32, 0, 0), CommError);
  comm->recv(&received, 1, DataType::Int32, 0, 0);
  EXPECT_EQ(received, 42);

  EXPECT_EQ(comm->split(kNoGroup, 0), nullptr);
  EXPECT_COMM_ERROR(comm->split(-2, 0), "split", "color -2 is invalid");
  // The child outlives its parent.
  comm.reset();
  float value = 2.0f;
  child->all_reduce(&value, 1, DataType::Float32, ReduceOp::Sum);
  EXPECT_EQ(value, 2.0f);
}

TEST(SingleProcess, TimeoutCanBeSetButNotToNonsense) {
  auto comm = make_single_process_communicator();
  comm->set_timeout_seconds(0.0);
  EXPECT_EQ(comm->timeout_seconds(), 0.0);
  EXPECT_THROW(comm->set_timeout_seconds(-1.0), CommError);
  EXPECT_THROW(comm->set_timeout_seconds(std::numeric_limits<double>::infinity()), CommError);
}

}  // namespace
}  // namespace tandem::comm
