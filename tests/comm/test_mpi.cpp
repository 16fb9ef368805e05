// The MPI backend, run under mpirun with 2 and 4 ranks (tests/comm/CMakeLists.txt). Every rank
// fills rank-dependent data; the expected results are computed here in plain loops over all
// ranks' data. All ranks make the same sequence of collective calls whatever the results, so a
// failed expectation never leaves ranks waiting in different collectives.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "comm/launch.hpp"
#include "comm/mpi_communicator.hpp"
#include "tests/comm/mpi_world.hpp"

namespace tandem::comm {
namespace {

using test_support::world;

template <typename T>
constexpr DataType data_type() {
  if constexpr (std::is_same_v<T, float>) return DataType::Float32;
  if constexpr (std::is_same_v<T, double>) return DataType::Float64;
  if constexpr (std::is_same_v<T, std::int32_t>) return DataType::Int32;
  if constexpr (std::is_same_v<T, std::int64_t>) return DataType::Int64;
  if constexpr (std::is_same_v<T, std::uint8_t>) return DataType::UInt8;
}

// Rank r's i-th element: small integers (exact in every type, sums of a few ranks fit a byte),
// different on every rank and position, negative ones for signed types.
template <typename T>
T value_of(int rank, std::size_t i) {
  const long long base = (static_cast<long long>(rank) * 37 + static_cast<long long>(i) * 11) % 29;
  if constexpr (std::is_same_v<T, std::uint8_t>) {
    return static_cast<T>(base);
  } else {
    return static_cast<T>(base - 9);
  }
}

// The reduction over ranks 0..size-1 of value_of(rank, i), computed plainly.
template <typename T>
T expected_reduction(ReduceOp op, int size, std::size_t i) {
  T result = value_of<T>(0, i);
  for (int rank = 1; rank < size; ++rank) {
    const T value = value_of<T>(rank, i);
    switch (op) {
      case ReduceOp::Sum:
      case ReduceOp::Average: result = static_cast<T>(result + value); break;
      case ReduceOp::Max: result = value > result ? value : result; break;
      case ReduceOp::Min: result = value < result ? value : result; break;
    }
  }
  if (op == ReduceOp::Average) {
    result = static_cast<T>(result / static_cast<T>(size));
  }
  return result;
}

template <typename T>
std::vector<T> rank_values(int rank, std::size_t count) {
  std::vector<T> values(count);
  for (std::size_t i = 0; i < count; ++i) {
    values[i] = value_of<T>(rank, i);
  }
  return values;
}

// Counts mismatching elements (reporting the first) instead of one failure per element.
template <typename T, typename Expected>
void expect_elements(const std::vector<T>& actual, Expected&& expected, const std::string& what) {
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const T want = expected(i);
    if (actual[i] != want) {
      if (wrong == 0) {
        ADD_FAILURE() << what << ": element " << i << " is " << +actual[i] << ", expected "
                      << +want;
      }
      ++wrong;
    }
  }
  EXPECT_EQ(wrong, 0u) << what << " on rank " << world().rank();
}

// EXPECT that `statement` throws ErrorType whose message contains every one of `parts`.
#define EXPECT_ERROR_MESSAGE(ErrorType, statement, ...)                                 \
  do {                                                                                  \
    try {                                                                               \
      statement;                                                                        \
      ADD_FAILURE() << "expected " #ErrorType " from: " #statement;                     \
    } catch (const ErrorType& error) {                                                  \
      for (const std::string& part : std::initializer_list<std::string>{__VA_ARGS__}) {  \
        EXPECT_NE(std::string(error.what()).find(part), std::string::npos)              \
            << "message \"" << error.what() << "\" lacks \"" << part << "\"";           \
      }                                                                                 \
    }                                                                                   \
  } while (false)

// ---------------------------------------------------------------------------------------------

TEST(MpiWorld, MatchesTheLaunch) {
  const MpiLaunch launch = detect_mpi_launch();
  ASSERT_TRUE(launch.launched) << "run this executable under mpirun";
  EXPECT_EQ(world().size(), launch.world_size);
  EXPECT_EQ(world().rank(), launch.world_rank);
  EXPECT_EQ(world().backend(), "mpi");
  EXPECT_GE(world().size(), 2);

  const MpiRuntimeInfo info = mpi_runtime_info();
  EXPECT_TRUE(info.initialised_by_tandem);
  EXPECT_FALSE(info.library_version.empty());
  // Open MPI provides MPI_THREAD_MULTIPLE; with less, calls would be serialised (still correct).
  EXPECT_EQ(info.calls_serialised, info.thread_level_name != "MPI_THREAD_MULTIPLE");
  if (world().rank() == 0) {
    std::printf("MPI: %s, %s, world of %d, timeout %g s\n", info.library_version.c_str(),
                info.thread_level_name.c_str(), world().size(), world().timeout_seconds());
  }
}

TEST(MpiWorld, TimeoutComesFromTheEnvironment) {
  const char* text = std::getenv("TANDEM_COMM_TIMEOUT_S");
  const double expected = (text == nullptr || *text == '\0') ? 600.0 : std::atof(text);
  EXPECT_EQ(world().timeout_seconds(), expected);
  auto child = world().split(0, world().rank());
  EXPECT_EQ(child->timeout_seconds(), expected);
}

TEST(MpiWorld, SecondWorldHandleSharesTheRuntime) {
  auto second = make_world_communicator();
  ASSERT_EQ(second->backend(), "mpi");
  EXPECT_EQ(second->size(), world().size());
  EXPECT_EQ(second->rank(), world().rank());
  std::int64_t value = world().rank() + 1;
  second->all_reduce(&value, 1, DataType::Int64, ReduceOp::Sum);
  const std::int64_t n = world().size();
  EXPECT_EQ(value, n * (n + 1) / 2);
}

// ---- all-reduce over every type and op, blocking and async ---------------------------------

template <typename T>
class MpiAllReduce : public ::testing::Test {};
using AllTypes = ::testing::Types<float, double, std::int32_t, std::int64_t, std::uint8_t>;
TYPED_TEST_SUITE(MpiAllReduce, AllTypes);

TYPED_TEST(MpiAllReduce, EveryOpMatchesAPlainLoop) {
  using T = TypeParam;
  std::vector<ReduceOp> ops = {ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min};
  if constexpr (std::is_floating_point_v<T>) {
    ops.push_back(ReduceOp::Average);
  }
  const int size = world().size();
  for (ReduceOp op : ops) {
    for (std::size_t count : {std::size_t{1}, std::size_t{3}, std::size_t{1000}}) {
      std::vector<T> values = rank_values<T>(world().rank(), count);
      world().all_reduce(values.data(), count, data_type<T>(), op);
      expect_elements(values, [&](std::size_t i) { return expected_reduction<T>(op, size, i); },
                      "all_reduce " + std::string(to_string(op)) + " n=" + std::to_string(count));

      std::vector<T> async_values = rank_values<T>(world().rank(), count);
      RequestPtr request = world().all_reduce_async(async_values.data(), count, data_type<T>(), op);
      request->wait();
      EXPECT_TRUE(request->test());  // still complete after wait
      expect_elements(async_values,
                      [&](std::size_t i) { return expected_reduction<T>(op, size, i); },
                      "all_reduce_async " + std::string(to_string(op)));
    }
  }
}

TYPED_TEST(MpiAllReduce, ReduceScatterGivesEachRankItsBlock) {
  using T = TypeParam;
  const int size = world().size();
  const int rank = world().rank();
  const std::size_t count = 257;
  std::vector<ReduceOp> ops = {ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min};
  if constexpr (std::is_floating_point_v<T>) {
    ops.push_back(ReduceOp::Average);
  }
  for (ReduceOp op : ops) {
    const std::vector<T> input = rank_values<T>(rank, count * static_cast<std::size_t>(size));
    std::vector<T> output(count);
    world().reduce_scatter(input.data(), output.data(), count, data_type<T>(), op);
    const std::size_t offset = count * static_cast<std::size_t>(rank);
    expect_elements(output,
                    [&](std::size_t i) { return expected_reduction<T>(op, size, offset + i); },
                    "reduce_scatter " + std::string(to_string(op)));

    std::vector<T> async_output(count);
    world()
        .reduce_scatter_async(input.data(), async_output.data(), count, data_type<T>(), op)
        ->wait();
    EXPECT_EQ(async_output, output);
  }
}

TEST(MpiAverage, IsASumDividedBySize) {
  // Values whose average is not an integer: (0 + 1 + ... + n-1) / n.
  std::vector<double> values(5, static_cast<double>(world().rank()));
  world().all_reduce(values.data(), values.size(), DataType::Float64, ReduceOp::Average);
  const double n = world().size();
  for (double value : values) {
    EXPECT_DOUBLE_EQ(value, (n - 1) / 2.0);
  }
  std::vector<std::int32_t> integers(2, 1);
  EXPECT_ERROR_MESSAGE(CommError,
                       world().all_reduce(integers.data(), 2, DataType::Int32, ReduceOp::Average),
                       "all-reduce on a group of", "Average", "Int32");
}

// ---- all-gather, all-to-all, broadcast ------------------------------------------------------

TEST(MpiCollectives, AllGatherPlacesEveryRanksBlock) {
  const int size = world().size();
  const std::size_t count = 333;
  const std::vector<std::int64_t> input = rank_values<std::int64_t>(world().rank(), count);
  std::vector<std::int64_t> output(count * static_cast<std::size_t>(size), -1);
  world().all_gather(input.data(), output.data(), count, DataType::Int64);
  auto expected = [&](std::size_t j) { return value_of<std::int64_t>(int(j / count), j % count); };
  expect_elements(output, expected, "all_gather");

  std::vector<std::int64_t> async_output(output.size(), -1);
  world().all_gather_async(input.data(), async_output.data(), count, DataType::Int64)->wait();
  expect_elements(async_output, expected, "all_gather_async");

  // In place: the input is this rank's block of the output.
  std::vector<std::int64_t> in_place(output.size(), -1);
  std::copy(input.begin(), input.end(), in_place.begin() + std::ptrdiff_t(count) * world().rank());
  world().all_gather(in_place.data() + count * static_cast<std::size_t>(world().rank()),
                     in_place.data(), count, DataType::Int64);
  expect_elements(in_place, expected, "in-place all_gather");
}

TEST(MpiCollectives, AllToAllTransposesBlocks) {
  const int size = world().size();
  const int rank = world().rank();
  const std::size_t count = 50;
  // Block p of rank r's input holds r*10000 + p*100 + i: "from r, for p".
  std::vector<std::int32_t> input(count * static_cast<std::size_t>(size));
  for (int p = 0; p < size; ++p) {
    for (std::size_t i = 0; i < count; ++i) {
      input[std::size_t(p) * count + i] = rank * 10000 + p * 100 + static_cast<int>(i);
    }
  }
  auto expected = [&](std::size_t j) {
    const int from = static_cast<int>(j / count);
    return from * 10000 + rank * 100 + static_cast<int>(j % count);
  };
  std::vector<std::int32_t> output(input.size(), -1);
  world().all_to_all(input.data(), output.data(), count, DataType::Int32);
  expect_elements(output, expected, "all_to_all");
  std::vector<std::int32_t> async_output(input.size(), -1);
  world().all_to_all_async(input.data(), async_output.data(), count, DataType::Int32)->wait();
  expect_elements(async_output, expected, "all_to_all_async");
}

TEST(MpiCollectives, BroadcastFromEveryRoot) {
  const std::size_t count = 1001;
  for (int root = 0; root < world().size(); ++root) {
    std::vector<double> buffer(count, -123.0);
    if (world().rank() == root) {
      buffer = rank_values<double>(root, count);
    }
    world().broadcast(buffer.data(), count, DataType::Float64, root);
    expect_elements(buffer, [&](std::size_t i) { return value_of<double>(root, i); },
                    "broadcast from root " + std::to_string(root));
  }
  std::vector<double> buffer(4);
  EXPECT_ERROR_MESSAGE(CommError,
                       world().broadcast(buffer.data(), 4, DataType::Float64, world().size()),
                       "broadcast", "root " + std::to_string(world().size()),
                       "is not a rank of this group");
}

TEST(MpiCollectives, BarrierOrdersAroundIt) {
  // Every rank increments a count it then reads back through an all-reduce after the barrier.
  for (int round = 0; round < 5; ++round) {
    world().barrier();
  }
  std::int32_t arrived = 1;
  world().all_reduce(&arrived, 1, DataType::Int32, ReduceOp::Sum);
  EXPECT_EQ(arrived, world().size());
}

// ---- point to point -------------------------------------------------------------------------

TEST(MpiPointToPoint, RingWithSendRecv) {
  const int size = world().size();
  const int rank = world().rank();
  const int next = (rank + 1) % size;
  const int previous = (rank + size - 1) % size;
  const std::size_t count = 4096;
  const std::vector<float> outgoing = rank_values<float>(rank, count);
  std::vector<float> incoming(count, -1.0f);
  world().send_recv(outgoing.data(), count, next, incoming.data(), count, previous,
                    DataType::Float32, 11);
  expect_elements(incoming, [&](std::size_t i) { return value_of<float>(previous, i); },
                  "ring send_recv");

  // The same ring with explicit async requests.
  std::vector<float> incoming_async(count, -1.0f);
  RequestPtr receive =
      world().recv_async(incoming_async.data(), count, DataType::Float32, previous, 12);
  RequestPtr sending = world().send_async(outgoing.data(), count, DataType::Float32, next, 12);
  sending->wait();
  receive->wait();
  EXPECT_EQ(incoming_async, incoming);
}

TEST(MpiPointToPoint, PairsWithBlockingCallsAndTags) {
  const int rank = world().rank();
  const int partner = rank ^ 1;  // (0,1), (2,3)
  ASSERT_LT(partner, world().size());
  const std::size_t count = 100;
  const std::vector<std::int64_t> mine = rank_values<std::int64_t>(rank, count);
  std::vector<std::int64_t> theirs(count, -1);
  // Even ranks send first, odd ranks receive first: no deadlock with blocking calls.
  if (rank % 2 == 0) {
    world().send(mine.data(), count, DataType::Int64, partner, 3);
    world().recv(theirs.data(), count, DataType::Int64, partner, 3);
  } else {
    world().recv(theirs.data(), count, DataType::Int64, partner, 3);
    world().send(mine.data(), count, DataType::Int64, partner, 3);
  }
  expect_elements(theirs, [&](std::size_t i) { return value_of<std::int64_t>(partner, i); },
                  "pair exchange");

  // Tags select messages: two messages sent as tag 20 then tag 21 are received 21 first.
  const std::int32_t first = 1000 + rank;
  const std::int32_t second = 2000 + rank;
  RequestPtr send_first = world().send_async(&first, 1, DataType::Int32, partner, 20);
  RequestPtr send_second = world().send_async(&second, 1, DataType::Int32, partner, 21);
  std::int32_t got_second = 0;
  std::int32_t got_first = 0;
  world().recv(&got_second, 1, DataType::Int32, partner, 21);
  world().recv(&got_first, 1, DataType::Int32, partner, 20);
  send_first->wait();
  send_second->wait();
  EXPECT_EQ(got_first, 1000 + partner);
  EXPECT_EQ(got_second, 2000 + partner);

  // Same tag: messages arrive in send order.
  std::vector<RequestPtr> sends;
  std::vector<std::int32_t> sequence = {rank * 10, rank * 10 + 1, rank * 10 + 2};
  for (const std::int32_t& value : sequence) {
    sends.push_back(world().send_async(&value, 1, DataType::Int32, partner, 30));
  }
  for (int k = 0; k < 3; ++k) {
    std::int32_t got = -1;
    world().recv(&got, 1, DataType::Int32, partner, 30);
    EXPECT_EQ(got, partner * 10 + k);
  }
  for (auto& request : sends) {
    request->wait();
  }
}

TEST(MpiPointToPoint, MismatchedCountsAreErrorsNamingTheRecv) {
  const int rank = world().rank();
  if (rank == 0) {
    const std::vector<std::int32_t> four = {1, 2, 3, 4};
    world().send(four.data(), 4, DataType::Int32, 1, 70);
    world().send(four.data(), 4, DataType::Int32, 1, 71);
  } else if (rank == 1) {
    std::vector<std::int32_t> three(3);
    EXPECT_ERROR_MESSAGE(CommError, world().recv(three.data(), 3, DataType::Int32, 0, 70),
                         "rank 1: recv from rank 0 (tag 70)", "sent more than this recv expects");
    std::vector<std::int32_t> five(5);
    EXPECT_ERROR_MESSAGE(CommError, world().recv(five.data(), 5, DataType::Int32, 0, 71),
                         "recv from rank 0 (tag 71)", "expects 5 Int32",
                         "the message held 4");
  }
  world().barrier();
}

TEST(MpiPointToPoint, ArgumentChecksNameRankAndGroup) {
  float value = 0;
  const std::string size = std::to_string(world().size());
  EXPECT_ERROR_MESSAGE(CommError, world().send(&value, 1, DataType::Float32, world().size(), 0),
                       "rank " + std::to_string(world().rank()) + ": send to rank " + size,
                       "on a group of " + size + " ranks", "is not a rank of this group");
  EXPECT_ERROR_MESSAGE(CommError, world().recv(&value, 1, DataType::Float32, 0, -1),
                       "tag -1 is invalid");
  // MPI 3 counts are ints: larger counts are refused before MPI sees them.
  const std::size_t too_many = static_cast<std::size_t>(INT_MAX) + 1;
  EXPECT_ERROR_MESSAGE(CommError,
                       world().all_reduce(&value, too_many, DataType::Float32, ReduceOp::Sum),
                       "all-reduce", "exceeds the MPI limit");
}

TEST(MpiRequests, DestroyingAnUnfinishedReceiveWaitsForIt) {
  const int rank = world().rank();
  std::vector<double> buffer(64, -1.0);
  if (rank == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const std::vector<double> message = rank_values<double>(0, 64);
    world().send(message.data(), 64, DataType::Float64, 1, 90);
  } else if (rank == 1) {
    {
      RequestPtr request = world().recv_async(buffer.data(), 64, DataType::Float64, 0, 90);
    }  // the destructor waits for the message
    expect_elements(buffer, [](std::size_t i) { return value_of<double>(0, i); },
                    "receive completed by the destructor");
  }
  world().barrier();
}

// ---- async overlapped with computation ------------------------------------------------------

TEST(MpiAsync, SeveralOperationsOverlapWithComputation) {
  const int size = world().size();
  const int rank = world().rank();
  const std::size_t count = 1 << 18;
  std::vector<float> reduced = rank_values<float>(rank, count);
  const std::vector<double> scatter_input =
      rank_values<double>(rank, count * static_cast<std::size_t>(size));
  std::vector<double> scattered(count);
  const std::vector<std::int32_t> gather_input = rank_values<std::int32_t>(rank, count);
  std::vector<std::int32_t> gathered(count * static_cast<std::size_t>(size));
  const std::vector<std::uint8_t> ring_out = rank_values<std::uint8_t>(rank, count);
  std::vector<std::uint8_t> ring_in(count);
  const int next = (rank + 1) % size;
  const int previous = (rank + size - 1) % size;

  std::vector<RequestPtr> requests;
  requests.push_back(
      world().all_reduce_async(reduced.data(), count, DataType::Float32, ReduceOp::Sum));
  requests.push_back(world().reduce_scatter_async(scatter_input.data(), scattered.data(), count,
                                                  DataType::Float64, ReduceOp::Max));
  requests.push_back(
      world().all_gather_async(gather_input.data(), gathered.data(), count, DataType::Int32));
  requests.push_back(world().recv_async(ring_in.data(), count, DataType::UInt8, previous, 5));
  requests.push_back(world().send_async(ring_out.data(), count, DataType::UInt8, next, 5));

  // Computation, testing the requests between chunks (that is what moves MPI forward).
  double sum = 0;
  std::size_t completed = 0;
  for (int chunk = 0; chunk < 200; ++chunk) {
    for (int i = 0; i < 20000; ++i) {
      sum += 1.0 / (1.0 + chunk * 20000.0 + i);
    }
    completed = 0;
    for (auto& request : requests) {
      completed += request->test() ? 1 : 0;
    }
  }
  double reference = 0;
  for (int chunk = 0; chunk < 200; ++chunk) {
    for (int i = 0; i < 20000; ++i) {
      reference += 1.0 / (1.0 + chunk * 20000.0 + i);
    }
  }
  EXPECT_EQ(sum, reference);
  for (auto& request : requests) {
    request->wait();
    EXPECT_TRUE(request->test());
  }
  expect_elements(reduced,
                  [&](std::size_t i) { return expected_reduction<float>(ReduceOp::Sum, size, i); },
                  "overlapped all_reduce");
  const std::size_t offset = count * static_cast<std::size_t>(rank);
  expect_elements(
      scattered,
      [&](std::size_t i) { return expected_reduction<double>(ReduceOp::Max, size, offset + i); },
      "overlapped reduce_scatter");
  expect_elements(gathered,
                  [&](std::size_t j) { return value_of<std::int32_t>(int(j / count), j % count); },
                  "overlapped all_gather");
  expect_elements(ring_in, [&](std::size_t i) { return value_of<std::uint8_t>(previous, i); },
                  "overlapped ring");
  (void)completed;
}

TEST(MpiAsync, TwoThreadsDriveTwoCommunicatorsAtOnce) {
  // Tensor- and data-parallel-like groups used concurrently from two threads
  // (MPI_THREAD_MULTIPLE).
  const int rank = world().rank();
  auto first = world().split(rank / 2, rank);   // {0,1}, {2,3}
  auto second = world().split(rank % 2, rank);  // {0,2}, {1,3} (or {0}, {1} with 2 ranks)
  std::atomic<int> failures{0};
  auto drive = [&failures](Communicator& comm, std::int64_t scale) {
    for (int round = 0; round < 40; ++round) {
      std::int64_t value = scale * (comm.rank() + 1) + round;
      comm.all_reduce(&value, 1, DataType::Int64, ReduceOp::Sum);
      const std::int64_t n = comm.size();
      if (value != scale * n * (n + 1) / 2 + round * n) {
        ++failures;
      }
    }
  };
  std::thread worker([&] { drive(*first, 1000); });
  drive(*second, 7);
  worker.join();
  EXPECT_EQ(failures.load(), 0);
}

// ---- split into sub-groups ------------------------------------------------------------------

TEST(MpiSplit, GridOfTensorAndDataParallelGroups) {
  const int size = world().size();
  const int rank = world().rank();
  const int tp = 2;  // 2 ranks: 1 x 2; 4 ranks: 2 x 2
  ASSERT_EQ(size % tp, 0);
  auto tp_group = world().split(rank / tp, rank);
  auto dp_group = world().split(rank % tp, rank);
  ASSERT_NE(tp_group, nullptr);
  ASSERT_NE(dp_group, nullptr);
  EXPECT_EQ(tp_group->size(), tp);
  EXPECT_EQ(tp_group->rank(), rank % tp);
  EXPECT_EQ(dp_group->size(), size / tp);
  EXPECT_EQ(dp_group->rank(), rank / tp);
  EXPECT_EQ(tp_group->backend(), "mpi");

  // All-reduce inside the tp group sums the world ranks of its members.
  std::int32_t value = rank;
  tp_group->all_reduce(&value, 1, DataType::Int32, ReduceOp::Sum);
  const int tp_first = (rank / tp) * tp;
  EXPECT_EQ(value, tp_first + (tp_first + 1));

  // All-gather inside the dp group collects world ranks rank % tp, rank % tp + tp, ...
  std::vector<std::int32_t> members(static_cast<std::size_t>(dp_group->size()), -1);
  dp_group->all_gather(&rank, members.data(), 1, DataType::Int32);
  for (int k = 0; k < dp_group->size(); ++k) {
    EXPECT_EQ(members[std::size_t(k)], rank % tp + k * tp);
  }

  // Reduce-scatter in tp, broadcast in dp, send/recv in tp: ranks are the group's own.
  std::vector<float> input(4);
  for (std::size_t i = 0; i < 4; ++i) {
    input[i] = static_cast<float>(rank * 10 + static_cast<int>(i));
  }
  std::vector<float> block(2);
  tp_group->reduce_scatter(input.data(), block.data(), 2, DataType::Float32, ReduceOp::Sum);
  for (std::size_t i = 0; i < 2; ++i) {
    const std::size_t j = std::size_t(tp_group->rank()) * 2 + i;
    EXPECT_EQ(block[i], float(tp_first * 10 + int(j) + (tp_first + 1) * 10 + int(j)));
  }
  std::int64_t from_root = dp_group->rank() == 0 ? 555 + rank : -1;
  dp_group->broadcast(&from_root, 1, DataType::Int64, 0);
  EXPECT_EQ(from_root, 555 + rank % tp);
  std::int32_t partner_rank = -1;
  tp_group->send_recv(&rank, 1, 1 - tp_group->rank(), &partner_rank, 1, 1 - tp_group->rank(),
                      DataType::Int32, 0);
  EXPECT_EQ(partner_rank, rank ^ 1);
}

TEST(MpiSplit, KeyOrdersRanksAndNoGroupGetsNothing) {
  const int size = world().size();
  const int rank = world().rank();
  auto reversed = world().split(0, size - rank);
  ASSERT_NE(reversed, nullptr);
  EXPECT_EQ(reversed->rank(), size - 1 - rank);

  auto without_zero = world().split(rank == 0 ? kNoGroup : 1, rank);
  if (rank == 0) {
    EXPECT_EQ(without_zero, nullptr);
  } else {
    ASSERT_NE(without_zero, nullptr);
    EXPECT_EQ(without_zero->size(), size - 1);
    EXPECT_EQ(without_zero->rank(), rank - 1);
    std::int32_t value = rank;
    without_zero->all_reduce(&value, 1, DataType::Int32, ReduceOp::Max);
    EXPECT_EQ(value, size - 1);
  }
  EXPECT_ERROR_MESSAGE(CommError, world().split(-5, 0), "split", "color -5 is invalid");
}

TEST(MpiSplit, NestedGroupOutlivesItsParent) {
  const int rank = world().rank();
  auto parent = world().split(0, rank);
  auto child = parent->split(rank % 2, rank);
  parent.reset();  // the child keeps working: MPI stays up until the last communicator goes
  std::int32_t value = 1;
  child->all_reduce(&value, 1, DataType::Int32, ReduceOp::Sum);
  EXPECT_EQ(value, child->size());
  EXPECT_EQ(child->size(), (world().size() + 1 - rank % 2) / 2);
}

// ---- large and empty messages ---------------------------------------------------------------

TEST(MpiLarge, SixtyFourMebibyteAllReduceAndRing) {
  const int size = world().size();
  const int rank = world().rank();
  const std::size_t count = (64u << 20) / sizeof(float);
  std::vector<float> values = rank_values<float>(rank, count);
  world().all_reduce(values.data(), count, DataType::Float32, ReduceOp::Sum);
  expect_elements(values,
                  [&](std::size_t i) { return expected_reduction<float>(ReduceOp::Sum, size, i); },
                  "64 MiB all_reduce");

  const std::vector<float> outgoing = rank_values<float>(rank + 1, count);
  const int next = (rank + 1) % size;
  const int previous = (rank + size - 1) % size;
  world().send_recv(outgoing.data(), count, next, values.data(), count, previous,
                    DataType::Float32, 1);
  expect_elements(values, [&](std::size_t i) { return value_of<float>(previous + 1, i); },
                  "64 MiB ring exchange");
}

TEST(MpiLarge, SixtyFourMebibyteAllGather) {
  const int size = world().size();
  const std::size_t total = (64u << 20) / sizeof(std::int32_t);
  const std::size_t count = total / static_cast<std::size_t>(size);
  const std::vector<std::int32_t> input = rank_values<std::int32_t>(world().rank(), count);
  std::vector<std::int32_t> output(total);
  world().all_gather(input.data(), output.data(), count, DataType::Int32);
  expect_elements(output,
                  [&](std::size_t j) { return value_of<std::int32_t>(int(j / count), j % count); },
                  "64 MiB all_gather");
}

TEST(MpiEmpty, ZeroCountOperationsComplete) {
  const int size = world().size();
  const int rank = world().rank();
  world().all_reduce(nullptr, 0, DataType::Float32, ReduceOp::Sum);
  world().all_reduce_async(nullptr, 0, DataType::Float64, ReduceOp::Average)->wait();
  world().reduce_scatter(nullptr, nullptr, 0, DataType::Int32, ReduceOp::Max);
  world().reduce_scatter_async(nullptr, nullptr, 0, DataType::Int32, ReduceOp::Min)->wait();
  world().all_gather(nullptr, nullptr, 0, DataType::Int64);
  world().all_gather_async(nullptr, nullptr, 0, DataType::Int64)->wait();
  world().all_to_all(nullptr, nullptr, 0, DataType::UInt8);
  world().broadcast(nullptr, 0, DataType::UInt8, size - 1);
  world().send_recv(nullptr, 0, (rank + 1) % size, nullptr, 0, (rank + size - 1) % size,
                    DataType::Float32, 2);
  // The world still works afterwards.
  std::int32_t value = 1;
  world().all_reduce(&value, 1, DataType::Int32, ReduceOp::Sum);
  EXPECT_EQ(value, size);
}

// ---- timeouts -------------------------------------------------------------------------------

// Rank 0 skips an all-reduce that the other ranks wait for with a 1 s timeout: they must throw
// CommTimeout with the documented message. Rank 0 then joins late, and the same request completes.
TEST(MpiTimeout, WaitOnAnAsyncAllReduceThrowsAndCanBeRetried) {
  const int size = world().size();
  const int rank = world().rank();
  auto group = world().split(0, rank);  // a fresh communicator, so the world stays clean
  group->set_timeout_seconds(1.0);
  std::vector<double> values(8, static_cast<double>(rank + 1));
  RequestPtr pending;
  if (rank != 0) {
    pending = group->all_reduce_async(values.data(), values.size(), DataType::Float64,
                                      ReduceOp::Sum);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_ERROR_MESSAGE(CommTimeout, pending->wait(),
                         "rank " + std::to_string(rank) + ": all-reduce on a group of " +
                             std::to_string(size) + " ranks did not complete within 1 s",
                         "a peer may have died");
    const double waited =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_GE(waited, 1.0);
    EXPECT_LT(waited, 30.0);
    EXPECT_FALSE(pending->test());
  }
  world().barrier();  // everyone has seen the timeout; rank 0 joins the all-reduce now
  group->set_timeout_seconds(120.0);
  if (rank == 0) {
    group->all_reduce(values.data(), values.size(), DataType::Float64, ReduceOp::Sum);
  } else {
    pending->wait();  // the request stayed valid
  }
  const double expected = size * (size + 1) / 2.0;
  for (double value : values) {
    EXPECT_EQ(value, expected);
  }
}

// After a wait has timed out, destroying the request does not wait a second time (the error must
// reach the caller promptly); the abandoned all-reduce still completes once rank 0 joins.
TEST(MpiTimeout, DestroyingATimedOutRequestDoesNotWaitAgain) {
  const int rank = world().rank();
  auto group = world().split(0, rank);
  group->set_timeout_seconds(1.0);
  std::vector<float> values(4, 1.0f);  // must outlive the abandoned transfer: declared first
  if (rank != 0) {
    RequestPtr pending =
        group->all_reduce_async(values.data(), 4, DataType::Float32, ReduceOp::Sum);
    EXPECT_THROW(pending->wait(), CommTimeout);
    const auto start = std::chrono::steady_clock::now();
    pending.reset();
    const double destroying =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_LT(destroying, 0.5);
  }
  world().barrier();
  if (rank == 0) {
    group->set_timeout_seconds(120.0);
    group->all_reduce(values.data(), 4, DataType::Float32, ReduceOp::Sum);
    EXPECT_EQ(values[0], static_cast<float>(world().size()));
  }
  world().barrier();  // progresses the other ranks' abandoned all-reduce until rank 0's completes
}

// A blocking call that times out makes its communicator unusable (and says so), and the
// communicator can still be destroyed cleanly once the late peer has joined.
TEST(MpiTimeout, BlockingAllReduceThrowsAndBreaksTheCommunicator) {
  const int size = world().size();
  const int rank = world().rank();
  std::vector<float> values(4, static_cast<float>(rank + 1));  // outlives the group
  {
    auto group = world().split(0, rank);
    group->set_timeout_seconds(1.0);
    if (rank != 0) {
      EXPECT_ERROR_MESSAGE(CommTimeout,
                           group->all_reduce(values.data(), 4, DataType::Float32, ReduceOp::Sum),
                           "rank " + std::to_string(rank) + ": all-reduce on a group of " +
                               std::to_string(size) + " ranks did not complete within 1 s");
      EXPECT_ERROR_MESSAGE(CommError, group->barrier(), "barrier",
                           "unusable after an earlier timeout", "did not complete within 1 s");
    }
    world().barrier();
    if (rank == 0) {
      group->set_timeout_seconds(120.0);
      group->all_reduce(values.data(), 4, DataType::Float32, ReduceOp::Sum);
      const float expected = static_cast<float>(size * (size + 1) / 2);
      for (float value : values) {
        EXPECT_EQ(value, expected);
      }
    }
  }  // the other ranks' destructors let the abandoned all-reduce finish with rank 0's
  world().barrier();
}

}  // namespace
}  // namespace tandem::comm
