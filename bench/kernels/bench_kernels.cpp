// Kernel benchmarks at GPT-2 124M shapes on kernel_threads() threads (default 2; override with
// TANDEM_BENCH_THREADS). Counters: GFLOP/s for GEMM-like kernels, GB/s for memory-bound ones.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <vector>

#include "kernels/cpu/kernels.hpp"

namespace cpu = tandem::kernels::cpu;

namespace {

std::vector<float> random_floats(std::size_t n, float scale = 1.0f, unsigned seed = 1) {
  std::vector<float> v(n);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  for (auto& x : v) x = dist(rng);
  return v;
}

void set_threads() {
  static const bool done = [] {
    const char* env = std::getenv("TANDEM_BENCH_THREADS");
    cpu::set_kernel_threads(env ? std::atoi(env) : 2);
    return true;
  }();
  (void)done;
}

void report_gflops(benchmark::State& state, double flops_per_iteration) {
  state.counters["GFLOP/s"] = benchmark::Counter(flops_per_iteration * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}
void report_gbytes(benchmark::State& state, double bytes_per_iteration) {
  state.counters["GB/s"] = benchmark::Counter(bytes_per_iteration * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

// ---- GEMMs: args M, K, N ----------------------------------------------------------------------

void BM_MatmulForward(benchmark::State& state) {
  set_threads();
  const int M = static_cast<int>(state.range(0)), K = static_cast<int>(state.range(1)),
            N = static_cast<int>(state.range(2));
  const auto inp = random_floats(static_cast<std::size_t>(M) * K);
  const auto weight = random_floats(static_cast<std::size_t>(N) * K, 0.02f);
  const auto bias = random_floats(N);
  std::vector<float> out(static_cast<std::size_t>(M) * N);
  for (auto _ : state) {
    cpu::matmul_forward(out.data(), inp.data(), weight.data(), bias.data(), M, K, N);
    benchmark::DoNotOptimize(out.data());
  }
  report_gflops(state, 2.0 * M * K * N);
}

void BM_MatmulBackwardInput(benchmark::State& state) {
  set_threads();
  const int M = static_cast<int>(state.range(0)), K = static_cast<int>(state.range(1)),
            N = static_cast<int>(state.range(2));
  const auto dout = random_floats(static_cast<std::size_t>(M) * N);
  const auto weight = random_floats(static_cast<std::size_t>(N) * K, 0.02f);
  std::vector<float> dinp(static_cast<std::size_t>(M) * K);
  for (auto _ : state) {
    cpu::matmul_backward_input(dinp.data(), dout.data(), weight.data(), M, K, N);
    benchmark::DoNotOptimize(dinp.data());
  }
  report_gflops(state, 2.0 * M * K * N);
}

void BM_MatmulBackwardWeight(benchmark::State& state) {
  set_threads();
  const int M = static_cast<int>(state.range(0)), K = static_cast<int>(state.range(1)),
            N = static_cast<int>(state.range(2));
  const auto dout = random_floats(static_cast<std::size_t>(M) * N, 1e-3f);
  const auto inp = random_floats(static_cast<std::size_t>(M) * K);
  std::vector<float> dweight(static_cast<std::size_t>(N) * K), dbias(N);
  for (auto _ : state) {
    cpu::matmul_backward_weight(dweight.data(), dbias.data(), dout.data(), inp.data(), M, K, N);
    benchmark::DoNotOptimize(dweight.data());
  }
  report_gflops(state, 2.0 * M * K * N);
}

// GPT-2 124M linear layers: qkv 768→2304, attention projection 768→768, MLP 768→3072 and
// 3072→768, the (padded) lm-head 768→50304, at B·T = 256 and 2048 tokens.
void gemm_shapes(benchmark::internal::Benchmark* b) {
  for (int M : {256, 2048}) {
    for (auto [K, N] : {std::pair{768, 2304}, std::pair{768, 768}, std::pair{768, 3072},
                        std::pair{3072, 768}, std::pair{768, 50304}}) {
      b->Args({M, K, N});
    }
  }
  b->ArgNames({"M", "K", "N"})->Unit(benchmark::kMillisecond)->UseRealTime();
}
BENCHMARK(BM_MatmulForward)->Apply(gemm_shapes);
BENCHMARK(BM_MatmulBackwardInput)->Apply(gemm_shapes);
BENCHMARK(BM_MatmulBackwardWeight)->Apply(gemm_shapes);

// ---- Attention: args B, T (H = 12, D = 64) -----------------------------------------------------
// FLOPs counted as the causal half of the dense products: forward 2 GEMMs (QKᵀ, PV) of
// B·H·T²·D multiply-adds each → 2·B·H·T²·D; backward 5 (recomputed QKᵀ, PᵀdO, dO·Vᵀ, dS·K, dSᵀQ).

constexpr int kHeads = 12, kHeadDim = 64;

void BM_AttentionForward(benchmark::State& state) {
  set_threads();
  const int B = static_cast<int>(state.range(0)), T = static_cast<int>(state.range(1));
  const auto qkv = random_floats(static_cast<std::size_t>(B) * T * 3 * kHeads * kHeadDim);
  std::vector<float> out(static_cast<std::size_t>(B) * T * kHeads * kHeadDim);
  std::vector<float> lse(static_cast<std::size_t>(B) * kHeads * T);
  for (auto _ : state) {
    cpu::attention_forward(out.data(), lse.data(), qkv.data(), B, T, kHeads, kHeads, kHeadDim);
    benchmark::DoNotOptimize(out.data());
  }
  report_gflops(state, 2.0 * B * kHeads * double(T) * T * kHeadDim);
}

void BM_AttentionBackward(benchmark::State& state) {
  set_threads();
  const int B = static_cast<int>(state.range(0)), T = static_cast<int>(state.range(1));
  const auto qkv = random_floats(static_cast<std::size_t>(B) * T * 3 * kHeads * kHeadDim);
  std::vector<float> out(static_cast<std::size_t>(B) * T * kHeads * kHeadDim);
  std::vector<float> lse(static_cast<std::size_t>(B) * kHeads * T);
  cpu::attention_forward(out.data(), lse.data(), qkv.data(), B, T, kHeads, kHeads, kHeadDim);
  const auto dout = random_floats(out.size());
  std::vector<float> dqkv(qkv.size());
  for (auto _ : state) {
    cpu::attention_backward(dqkv.data(), dout.data(), qkv.data(), out.data(), lse.data(), B, T,
                            kHeads, kHeads, kHeadDim);
    benchmark::DoNotOptimize(dqkv.data());
  }
  report_gflops(state, 5.0 * B * kHeads * double(T) * T * kHeadDim);
}
// B·T = 256 (4×64) and 2048 (4×512, 2×1024).
BENCHMARK(BM_AttentionForward)->Args({4, 64})->Args({4, 512})->Args({2, 1024})
    ->ArgNames({"B", "T"})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_AttentionBackward)->Args({4, 64})->Args({4, 512})->Args({2, 1024})
    ->ArgNames({"B", "T"})->Unit(benchmark::kMillisecond)->UseRealTime();

// ---- Memory-bound kernels: arg M (tokens), C = 768 ---------------------------------------------

void BM_LayerNormForward(benchmark::State& state) {
  set_threads();
  const int M = static_cast<int>(state.range(0)), C = 768;
  const auto inp = random_floats(static_cast<std::size_t>(M) * C);
  const auto w = random_floats(C), b = random_floats(C);
  std::vector<float> out(inp.size()), mean(M), rstd(M);
  for (auto _ : state) {
    cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), w.data(), b.data(),
                           M, C);
    benchmark::DoNotOptimize(out.data());
  }
  report_gbytes(state, 2.0 * sizeof(float) * M * C);
}

void BM_LayerNormBackward(benchmark::State& state) {
  set_threads();
  const int M = static_cast<int>(state.range(0)), C = 768;
  const auto inp = random_floats(static_cast<std::size_t>(M) * C);
  const auto w = random_floats(C), b = random_floats(C), dout = random_floats(inp.size());
  std::vector<float> out(inp.size()), mean(M), rstd(M), dinp(inp.size()), dw(C), db(C);
  cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), w.data(), b.data(), M,
                         C);
  for (auto _ : state) {
    cpu::layernorm_backward(dinp.data(), dw.data(), db.data(), dout.data(), inp.data(), w.data(),
                            mean.data(), rstd.data(), M, C, true);
    benchmark::DoNotOptimize(dinp.data());
  }
  report_gbytes(state, 4.0 * sizeof(float) * M * C);
}
BENCHMARK(BM_LayerNormForward)->Arg(256)->Arg(2048)->ArgName("M")->UseRealTime();
BENCHMARK(BM_LayerNormBackward)->Arg(256)->Arg(2048)->ArgName("M")->UseRealTime();

void BM_GeluForward(benchmark::State& state) {
  set_threads();
  const std::size_t n = static_cast<std::size_t>(state.range(0)) * 3072;
  const auto inp = random_floats(n, 3.0f);
  std::vector<float> out(n);
  for (auto _ : state) {
    cpu::gelu_forward(out.data(), inp.data(), n);
    benchmark::DoNotOptimize(out.data());
  }
  report_gbytes(state, 2.0 * sizeof(float) * n);
}
void BM_GeluBackward(benchmark::State& state) {
  set_threads();
  const std::size_t n = static_cast<std::size_t>(state.range(0)) * 3072;
  const auto inp = random_floats(n, 3.0f), dout = random_floats(n);
  std::vector<float> dinp(n);
  for (auto _ : state) {
    cpu::gelu_backward(dinp.data(), inp.data(), dout.data(), n);
    benchmark::DoNotOptimize(dinp.data());
  }
  report_gbytes(state, 3.0 * sizeof(float) * n);
}
BENCHMARK(BM_GeluForward)->Arg(256)->Arg(2048)->ArgName("M")->UseRealTime();
BENCHMARK(BM_GeluBackward)->Arg(256)->Arg(2048)->ArgName("M")->UseRealTime();

// Cross-entropy forward + backward (in place) over the padded GPT-2 vocabulary.
void BM_CrossEntropy(benchmark::State& state) {
  set_threads();
  const int M = static_cast<int>(state.range(0)), V = 50304, valid = 50257;
  const auto logits0 = random_floats(static_cast<std::size_t>(M) * V, 5.0f);
  std::vector<std::int32_t> targets(M);
  for (int i = 0; i < M; ++i) targets[i] = (i * 7919) % valid;
  std::vector<float> logits(logits0.size()), losses(M), lse(M);
  for (auto _ : state) {
    state.PauseTiming();
    logits = logits0;
    state.ResumeTiming();
    cpu::cross_entropy_forward(losses.data(), lse.data(), logits.data(), targets.data(), M, V,
                               valid);
    cpu::cross_entropy_backward(logits.data(), logits.data(), lse.data(), targets.data(),
                                1.0f / M, M, V, valid);
    benchmark::DoNotOptimize(logits.data());
  }
  report_gbytes(state, 3.0 * sizeof(float) * M * V);
}
BENCHMARK(BM_CrossEntropy)->Arg(256)->ArgName("M")->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_AdamW(benchmark::State& state) {
  set_threads();
  const std::size_t n = static_cast<std::size_t>(state.range(0));
  auto param = random_floats(n), grad = random_floats(n, 1e-3f);
  std::vector<float> m(n, 0.0f), v(n, 0.0f);
  int step = 0;
  for (auto _ : state) {
    cpu::adamw_update(param.data(), grad.data(), m.data(), v.data(), n, 6e-4f, 0.9f, 0.95f, 1e-8f,
                      0.1f, ++step);
    benchmark::DoNotOptimize(param.data());
  }
  report_gbytes(state, 7.0 * sizeof(float) * n);  // read p, g, m, v; write p, m, v
}
BENCHMARK(BM_AdamW)->Arg(124439808)->ArgName("params")->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
