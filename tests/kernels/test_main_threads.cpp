// Runs every kernel test with two kernel threads, so the parallel paths (OpenMP loops, Eigen's
// threaded GEMMs, the per-thread weight-gradient reductions) are the ones under test.
#include <gtest/gtest.h>

#include "kernels/cpu/threading.hpp"

namespace {
class TwoKernelThreads : public ::testing::Environment {
 public:
  void SetUp() override { tandem::kernels::cpu::set_kernel_threads(2); }
};
[[maybe_unused]] ::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new TwoKernelThreads);
}  // namespace
