// The NCCL backend is compiled and linked wherever CUDA and NCCL are found, but the project's
// machines have no GPU: this only checks that asking for it without a GPU fails with a clear
// CommError instead of crashing. On a machine with a GPU it skips (no GPU tests are written yet).

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <string>

#include "comm/nccl_communicator.hpp"

namespace tandem::comm {
namespace {

TEST(Nccl, WithoutAGpuCreationFailsWithAClearError) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0) {
    GTEST_SKIP() << devices << " CUDA device(s) present; NCCL runtime tests are not written yet";
  }
  auto bootstrap = make_single_process_communicator();
  try {
    make_nccl_communicator(*bootstrap);
    ADD_FAILURE() << "make_nccl_communicator succeeded without a CUDA device";
  } catch (const CommError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("rank 0: NCCL initialisation on a group of 1 rank"), std::string::npos)
        << message;
    EXPECT_NE(message.find("no usable CUDA device"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace tandem::comm
