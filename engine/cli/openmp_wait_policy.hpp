#pragma once
// Makes OpenMP's idle threads sleep instead of spin (OMP_WAIT_POLICY=PASSIVE) unless the user chose
// a policy. On a machine whose cores are shared — several ranks, other processes — a spinning
// worker holds a core another thread needs, and a parallel region then waits a whole time slice
// for a descheduled thread (measured: GPT-2 124M step 5.5 s with the default policy vs 2.8 s
// passive at load ~5; on an idle machine the two are within a few milliseconds). libgomp reads the
// variable when it is loaded, before main(), so the process re-executes itself once with it set.
// TANDEM_KEEP_OMP_WAIT_POLICY=1 (or setting OMP_WAIT_POLICY yourself) keeps the default.

#include <unistd.h>

#include <cstdlib>

namespace tandem::engine {

inline void use_passive_openmp_wait_policy(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("TANDEM_KEEP_OMP_WAIT_POLICY") != nullptr) return;
  if (::setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0) return;
  ::execv("/proc/self/exe", argv);
  // exec failed (no /proc): carry on with the default policy.
}

}  // namespace tandem::engine
