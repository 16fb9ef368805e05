#pragma once
// The world communicator of the MPI test executable (created once in mpi_test_main.cpp).

#include "comm/communicator.hpp"

namespace tandem::comm::test_support {

Communicator& world();

}  // namespace tandem::comm::test_support
