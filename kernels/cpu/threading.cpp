#include "kernels/cpu/threading.hpp"

#include <Eigen/Core>
#include <omp.h>

#include <atomic>
#include <cassert>

namespace tandem::kernels::cpu {
namespace {
std::atomic<int> g_threads{0};  // 0: not set yet
}  // namespace

void set_kernel_threads(int threads) {
  assert(threads >= 1);
  if (threads < 1) threads = 1;
  g_threads.store(threads);
  Eigen::setNbThreads(threads);
  omp_set_num_threads(threads);
}

int kernel_threads() {
  int threads = g_threads.load();
  if (threads == 0) {
    threads = omp_get_max_threads();
    if (threads < 1) threads = 1;
    int expected = 0;
    if (g_threads.compare_exchange_strong(expected, threads)) Eigen::setNbThreads(threads);
    threads = g_threads.load();
  }
  return threads;
}

}  // namespace tandem::kernels::cpu
