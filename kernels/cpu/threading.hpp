#pragma once
// Threading of the CPU kernels.
//
// Every kernel in kernels/cpu runs on kernel_threads() threads: Eigen's GEMMs through
// Eigen::setNbThreads, the other loops through OpenMP parallel regions that name the thread count
// explicitly (so the setting holds whichever thread calls a kernel). Call set_kernel_threads once
// per process before the first kernel: with several ranks (MPI processes) on one machine, give each
// rank cores / ranks threads, otherwise they oversubscribe the cores and every GEMM slows down.
// On a machine shared with other busy processes, run with OMP_WAIT_POLICY=PASSIVE in the
// environment (it must be set before the process starts: libgomp reads it when it loads).
// Measured on the shared 2-core machine at load ~4–5, GPT-2 124M step on two threads: 3.0 s
// passive vs 6.8 s active in one pair of runs, 4.5 s vs 5.5 s in another (GELU 28 vs 170 ms, attention 75 vs 294 ms per step): idle OpenMP
// workers otherwise spin and take the core a descheduled team-mate needs. On an idle machine the
// default (spinning) is as good or slightly better.
// Kernels must not be called concurrently from several threads of one process while they use more
// than one thread each (nested OpenMP parallelism is not enabled).

namespace tandem::kernels::cpu {

// Sets the number of threads every kernel uses (>= 1). Default: OpenMP's default
// (OMP_NUM_THREADS, otherwise the number of cores).
void set_kernel_threads(int threads);

// The number of threads kernels use.
int kernel_threads();

}  // namespace tandem::kernels::cpu
