// main() of the MPI test executable, run under mpirun (tandem_add_mpi_test). It creates the world
// communicator once (MPI can be initialised once per process), runs every test on every rank,
// and destroys the world last, which finalises MPI. Rank 0 prints GoogleTest's usual output;
// the other ranks print only their failures, prefixed with their rank, so ctest's log stays
// readable. Each rank's exit code is its own result, and mpirun fails if any rank fails.

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>

#include "comm/mpi_communicator.hpp"
#include "tests/comm/mpi_world.hpp"

namespace tandem::comm::test_support {
namespace {

std::unique_ptr<Communicator> g_world;

// Prints failed assertions (and nothing else) of a non-zero rank.
class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (result.failed()) {
      std::fprintf(stderr, "[rank %d] %s:%d: Failure\n%s\n", rank_,
                   result.file_name() ? result.file_name() : "?", result.line_number(),
                   result.message());
    }
  }
  void OnTestEnd(const ::testing::TestInfo& info) override {
    if (info.result()->Failed()) {
      std::fprintf(stderr, "[rank %d] FAILED %s.%s\n", rank_, info.test_suite_name(),
                   info.name());
    }
  }

 private:
  int rank_;
};

}  // namespace

Communicator& world() { return *g_world; }

}  // namespace tandem::comm::test_support

int main(int argc, char** argv) {
  namespace support = tandem::comm::test_support;
  ::testing::InitGoogleTest(&argc, argv);
  support::g_world = tandem::comm::make_mpi_world_communicator();
  const int rank = support::g_world->rank();
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new support::FailurePrinter(rank));
  }
  const int result = RUN_ALL_TESTS();
  support::g_world.reset();  // the last communicator: finalises MPI
  return result;
}
