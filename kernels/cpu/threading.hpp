#pragma once
// Threading of the CPU kernels.
//
// Every kernel in kernels/cpu runs on kernel_threads() threads: Eigen's GEMMs through
// Eigen::setNbThreads, the other loops through OpenMP parallel regions that name the thread count
// explicitly (so the setting holds whichever thread calls a kernel). Call set_kernel_threads once
// per process before the first kernel: with several ranks (MPI processes) on one machine, give each
// rank cores / ranks threads, otherwise they oversubscribe the cores and every GEMM slows down.
// On a machine shared with other busy processes, bound the spinning of idle OpenMP workers
// (GOMP_SPINCOUNT=10000 for libgomp, KMP_BLOCKTIME=1 for libomp, which `engine` sets itself:
// engine/cli/openmp_spin.hpp); it must be set before the process starts, libgomp reads it when it
// loads. libgomp's default spin takes the
// core a descheduled team-mate needs (GPT-2 124M step on two threads at load ~4–5: 6.8 s vs
// 3.0 s passive); OMP_WAIT_POLICY=PASSIVE makes every parallel region wake a sleeping worker
// (60–120 us on the development VM).
// Kernels must not be called concurrently from several threads of one process while they use more
// than one thread each (nested OpenMP parallelism is not enabled).

namespace tandem::kernels::cpu {

// Sets the number of threads every kernel uses (>= 1). Default: OpenMP's default
// (OMP_NUM_THREADS, otherwise the number of cores).
void set_kernel_threads(int threads);

// The number of threads kernels use.
int kernel_threads();

}  // namespace tandem::kernels::cpu
