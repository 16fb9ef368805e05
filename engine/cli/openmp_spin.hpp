#pragma once
// Bounds how long OpenMP's idle workers spin before they sleep, in whichever runtime the build
// links: GOMP_SPINCOUNT=10000 for libgomp (GCC builds) and KMP_BLOCKTIME=1 (ms) for LLVM's libomp
// (clang builds, the default; its own default is 200 ms of spinning), unless the user set
// OMP_WAIT_POLICY, GOMP_SPINCOUNT or KMP_BLOCKTIME.
//
// Why, measured on the 2-core VM (kernels parallel region with 2 threads, median):
//   - libgomp's default spins ~300k iterations (milliseconds): on shared cores a spinning worker
//     holds a core another thread needs (tiny 2-thread model at load ~5: 136-181 ms per step);
//   - OMP_WAIT_POLICY=PASSIVE sleeps at once, and every parallel region then pays a futex wake-up
//     of 60-120 us on this VM (vs ~1 us spinning): a 2-layer, 192-wide model on 2 threads took
//     30-40 ms per step, slower than on 1 thread (30 ms);
//   - 10000 spins cover the gaps between back-to-back kernels (region cost 1-2 us after a
//     200 us gap) and release the core within a few milliseconds: the same tiny model 20-30 ms
//     idle, and 73-102 ms at load ~5 (PASSIVE: 103 ms).
// libgomp reads the variables when it is loaded, before main(), so the process re-executes
// itself once with the variables set. TANDEM_KEEP_OMP_WAIT_POLICY=1 keeps OpenMP's defaults.

#include <unistd.h>

#include <cstdlib>

namespace tandem::engine {

inline void use_short_openmp_spin(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr ||
      std::getenv("KMP_BLOCKTIME") != nullptr || std::getenv("TANDEM_KEEP_OMP_WAIT_POLICY") != nullptr)
    return;
  if (::setenv("GOMP_SPINCOUNT", "10000", 1) != 0 || ::setenv("KMP_BLOCKTIME", "1", 1) != 0) return;
  ::execv("/proc/self/exe", argv);
  // exec failed (no /proc): carry on with OpenMP's defaults.
}

}  // namespace tandem::engine
