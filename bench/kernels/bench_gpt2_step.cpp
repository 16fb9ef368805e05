// A whole GPT-2 124M training step (B=4, T=64, fp32) made of the kernels alone — embedding,
// 12 transformer blocks, tied lm-head, cross-entropy, their backward passes, the gradient norm
// and AdamW — to see how close the kernels get to the engine's budget (≤ 1.5 s per step on the
// two cores) and where the time goes. Counters give each phase's milliseconds per step.
#include <benchmark/benchmark.h>

#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/kernels.hpp"

namespace cpu = tandem::kernels::cpu;

namespace {

// CPU time (all threads of the process) per kind of kernel: meaningful even when other processes
// share the cores, where wall-clock numbers are not.
enum Kind { kMatmul, kAttention, kNorm, kGelu, kResidual, kEmbedding, kCrossEntropy, kOptimizer,
            kZeroGrad, kKinds };
const char* const kKindNames[kKinds] = {"matmul", "attention", "norm", "gelu", "residual",
                                        "embedding", "cross_entropy", "optimizer",
                                        "zero_grad"};
double g_cpu_seconds[kKinds] = {};
double g_wall_seconds[kKinds] = {};

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Wall time per kind too: with two threads the process CPU time also counts OpenMP workers
// spinning between parallel regions.
#define PROFILE(kind, call)                                                                   \
  do {                                                                                        \
    const double profile_start = process_cpu_seconds();                                       \
    const auto profile_wall_start = std::chrono::steady_clock::now();                        \
    call;                                                                                     \
    g_cpu_seconds[kind] += process_cpu_seconds() - profile_start;                             \
    g_wall_seconds[kind] +=                                                                   \
        std::chrono::duration<double>(std::chrono::steady_clock::now() - profile_wall_start)  \
            .count();                                                                         \
  } while (0)

constexpr int kVocab = 50257, kPaddedVocab = 50304, kChannels = 768, kLayers = 12, kHeads = 12,
              kMaxT = 1024;

struct LayerOffsets {
  std::size_t ln1w, ln1b, qkvw, qkvb, projw, projb, ln2w, ln2b, fcw, fcb, fcprojw, fcprojb;
};

struct Gpt2 {
  int B, T;
  std::size_t wte, wpe, lnfw, lnfb, count = 0;
  std::vector<LayerOffsets> layers;
  std::vector<float> params, grads, m, v;
  // Activations saved for backward, per layer.
  struct Saved {
    std::vector<float> residual, ln1, ln1_mean, ln1_rstd, qkv, atty, lse, residual2, ln2,
        ln2_mean, ln2_rstd, fch, fch_gelu;
  };
  std::vector<Saved> saved;
  std::vector<float> encoded, residual_out, lnf, lnf_mean, lnf_rstd, logits, losses, logsumexp;
  std::vector<float> scratch_c, scratch_c2, dresidual, scratch_4c, scratch_3c, tmp;
  std::vector<std::int32_t> tokens, targets;

  std::size_t take(std::size_t n) {
    const std::size_t at = count;
    count += n;
    return at;
  }

  Gpt2(int batch, int time) : B(batch), T(time) {
    const std::size_t C = kChannels;
    wte = take(static_cast<std::size_t>(kPaddedVocab) * C);
    wpe = take(static_cast<std::size_t>(kMaxT) * C);
    for (int l = 0; l < kLayers; ++l) {
      LayerOffsets o{};
      o.ln1w = take(C), o.ln1b = take(C), o.qkvw = take(3 * C * C), o.qkvb = take(3 * C);
      o.projw = take(C * C), o.projb = take(C), o.ln2w = take(C), o.ln2b = take(C);
      o.fcw = take(4 * C * C), o.fcb = take(4 * C), o.fcprojw = take(4 * C * C),
      o.fcprojb = take(C);
      layers.push_back(o);
    }
    lnfw = take(C), lnfb = take(C);
    params.resize(count);
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 0.02f);
    for (auto& p : params) p = normal(rng);
    grads.assign(count, 0.0f), m.assign(count, 0.0f), v.assign(count, 0.0f);
    const std::size_t BT = static_cast<std::size_t>(B) * T;
    saved.resize(kLayers);
    for (auto& s : saved) {
      s.residual.resize(BT * C), s.ln1.resize(BT * C), s.ln1_mean.resize(BT),
          s.ln1_rstd.resize(BT), s.qkv.resize(BT * 3 * C), s.atty.resize(BT * C),
          s.lse.resize(static_cast<std::size_t>(B) * kHeads * T), s.residual2.resize(BT * C),
          s.ln2.resize(BT * C), s.ln2_mean.resize(BT), s.ln2_rstd.resize(BT),
          s.fch.resize(BT * 4 * C), s.fch_gelu.resize(BT * 4 * C);
    }
    encoded.resize(BT * C), residual_out.resize(BT * C), lnf.resize(BT * C), lnf_mean.resize(BT),
        lnf_rstd.resize(BT), logits.resize(BT * kPaddedVocab), losses.resize(BT),
        logsumexp.resize(BT);
    scratch_c.resize(BT * C), scratch_c2.resize(BT * C), dresidual.resize(BT * C),
        scratch_4c.resize(BT * 4 * C), scratch_3c.resize(BT * 3 * C), tmp.resize(BT * C);
    tokens.resize(BT), targets.resize(BT);
    for (std::size_t i = 0; i < BT; ++i) {
      tokens[i] = static_cast<std::int32_t>((i * 7919) % kVocab);
      targets[i] = static_cast<std::int32_t>((i * 104729 + 1) % kVocab);
    }
  }

  float* p(std::size_t at) { return params.data() + at; }
  float* g(std::size_t at) { return grads.data() + at; }

  double forward() {
    const int C = kChannels, BT = B * T, D = C / kHeads;
    PROFILE(kEmbedding, cpu::embedding_forward(encoded.data(), tokens.data(), p(wte), p(wpe), B, T, C, 0,
                           kPaddedVocab));
    const float* residual = encoded.data();
    for (int l = 0; l < kLayers; ++l) {
      const LayerOffsets& o = layers[l];
      Saved& s = saved[l];
      std::copy(residual, residual + static_cast<std::size_t>(BT) * C, s.residual.begin());
      PROFILE(kNorm, cpu::layernorm_forward(s.ln1.data(), s.ln1_mean.data(), s.ln1_rstd.data(),
                             s.residual.data(), p(o.ln1w), p(o.ln1b), BT, C));
      PROFILE(kMatmul, cpu::matmul_forward(s.qkv.data(), s.ln1.data(), p(o.qkvw), p(o.qkvb), BT, C, 3 * C));
      PROFILE(kAttention, cpu::attention_forward(s.atty.data(), s.lse.data(), s.qkv.data(), B, T, kHeads, kHeads, D));
      PROFILE(kMatmul, cpu::matmul_forward(scratch_c.data(), s.atty.data(), p(o.projw), p(o.projb), BT, C, C));
      PROFILE(kResidual, cpu::residual_forward(s.residual2.data(), s.residual.data(), scratch_c.data(),
                            static_cast<std::size_t>(BT) * C));
      PROFILE(kNorm, cpu::layernorm_forward(s.ln2.data(), s.ln2_mean.data(), s.ln2_rstd.data(),
                             s.residual2.data(), p(o.ln2w), p(o.ln2b), BT, C));
      PROFILE(kMatmul, cpu::matmul_forward(s.fch.data(), s.ln2.data(), p(o.fcw), p(o.fcb), BT, C, 4 * C));
      PROFILE(kGelu, cpu::gelu_forward(s.fch_gelu.data(), s.fch.data(), static_cast<std::size_t>(BT) * 4 * C));
      PROFILE(kMatmul, cpu::matmul_forward(scratch_c.data(), s.fch_gelu.data(), p(o.fcprojw), p(o.fcprojb), BT,
                          4 * C, C));
      PROFILE(kResidual, cpu::residual_forward(residual_out.data(), s.residual2.data(), scratch_c.data(),
                            static_cast<std::size_t>(BT) * C));
      residual = residual_out.data();
    }
    std::copy(residual, residual + static_cast<std::size_t>(BT) * C, tmp.begin());
    PROFILE(kNorm, cpu::layernorm_forward(lnf.data(), lnf_mean.data(), lnf_rstd.data(), tmp.data(), p(lnfw),
                           p(lnfb), BT, C));
    PROFILE(kMatmul, cpu::matmul_forward(logits.data(), lnf.data(), p(wte), static_cast<const float*>(nullptr), BT,
                        C, kPaddedVocab));
    double loss_value = 0;
    PROFILE(kCrossEntropy, loss_value = cpu::cross_entropy_forward(losses.data(), logsumexp.data(), logits.data(),
                                      targets.data(), BT, kPaddedVocab, kVocab));
    return loss_value;
  }

  void backward() {
    const int C = kChannels, BT = B * T, D = C / kHeads;
    PROFILE(kZeroGrad, std::fill(grads.begin(), grads.end(), 0.0f));
    PROFILE(kCrossEntropy, cpu::cross_entropy_backward(logits.data(), logits.data(), logsumexp.data(), targets.data(),
                                1.0f / BT, BT, kPaddedVocab, kVocab));
    PROFILE(kMatmul, cpu::matmul_backward_input(scratch_c.data(), logits.data(), p(wte), BT, C, kPaddedVocab));
    PROFILE(kMatmul, cpu::matmul_backward_weight(g(wte), static_cast<float*>(nullptr), logits.data(), lnf.data(),
                                BT, C, kPaddedVocab));
    PROFILE(kNorm, cpu::layernorm_backward(dresidual.data(), g(lnfw), g(lnfb), scratch_c.data(), tmp.data(),
                            p(lnfw), lnf_mean.data(), lnf_rstd.data(), BT, C));
    for (int l = kLayers - 1; l >= 0; --l) {
      const LayerOffsets& o = layers[l];
      Saved& s = saved[l];
      // MLP branch: dresidual is the gradient of the block's output.
      PROFILE(kMatmul, cpu::matmul_backward_input(scratch_4c.data(), dresidual.data(), p(o.fcprojw), BT, 4 * C, C));
      PROFILE(kMatmul, cpu::matmul_backward_weight(g(o.fcprojw), g(o.fcprojb), dresidual.data(),
                                  s.fch_gelu.data(), BT, 4 * C, C));
      PROFILE(kGelu, cpu::gelu_backward(scratch_4c.data(), s.fch.data(), scratch_4c.data(),
                         static_cast<std::size_t>(BT) * 4 * C));
      PROFILE(kMatmul, cpu::matmul_backward_input(scratch_c.data(), scratch_4c.data(), p(o.fcw), BT, C, 4 * C));
      PROFILE(kMatmul, cpu::matmul_backward_weight(g(o.fcw), g(o.fcb), scratch_4c.data(), s.ln2.data(), BT, C,
                                  4 * C));
      PROFILE(kNorm, cpu::layernorm_backward(dresidual.data(), g(o.ln2w), g(o.ln2b), scratch_c.data(),
                              s.residual2.data(), p(o.ln2w), s.ln2_mean.data(), s.ln2_rstd.data(),
                              BT, C, /*accumulate=*/true));
      // Attention branch.
      PROFILE(kMatmul, cpu::matmul_backward_input(scratch_c.data(), dresidual.data(), p(o.projw), BT, C, C));
      PROFILE(kMatmul, cpu::matmul_backward_weight(g(o.projw), g(o.projb), dresidual.data(), s.atty.data(), BT, C,
                                  C));
      PROFILE(kAttention, cpu::attention_backward(scratch_3c.data(), scratch_c.data(), s.qkv.data(), s.atty.data(),
                              s.lse.data(), B, T, kHeads, kHeads, D));
      PROFILE(kMatmul, cpu::matmul_backward_input(scratch_c2.data(), scratch_3c.data(), p(o.qkvw), BT, C, 3 * C));
      PROFILE(kMatmul, cpu::matmul_backward_weight(g(o.qkvw), g(o.qkvb), scratch_3c.data(), s.ln1.data(), BT, C,
                                  3 * C));
      PROFILE(kNorm, cpu::layernorm_backward(dresidual.data(), g(o.ln1w), g(o.ln1b), scratch_c2.data(),
                              s.residual.data(), p(o.ln1w), s.ln1_mean.data(), s.ln1_rstd.data(),
                              BT, C, /*accumulate=*/true));
    }
    PROFILE(kEmbedding, cpu::embedding_backward(g(wte), g(wpe), dresidual.data(), tokens.data(), B, T, C, 0,
                            kPaddedVocab));
  }

  void optimizer(int step) {
    double norm = 0;
    PROFILE(kOptimizer, norm = std::sqrt(cpu::sum_of_squares(grads.data(), grads.size())));
    if (norm > 1.0) cpu::scale_in_place(grads.data(), grads.size(), static_cast<float>(1.0 / norm));
    PROFILE(kOptimizer, cpu::adamw_update(params.data(), grads.data(), m.data(), v.data(), params.size(), 6e-4f, 0.9f,
                      0.95f, 1e-8f, 0.1f, step));
  }
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void BM_Gpt2SmallTrainingStep(benchmark::State& state) {
  const char* env = std::getenv("TANDEM_BENCH_THREADS");
  cpu::set_kernel_threads(env ? std::atoi(env) : 2);
  Gpt2 model(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  double forward_s = 0, backward_s = 0, optimizer_s = 0, loss = 0;
  for (double& seconds : g_cpu_seconds) seconds = 0;
  for (double& seconds : g_wall_seconds) seconds = 0;
  int step = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    loss = model.forward();
    forward_s += seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    model.backward();
    backward_s += seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    model.optimizer(++step);
    optimizer_s += seconds_since(t0);
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["forward_ms"] = 1e3 * forward_s / n;
  state.counters["backward_ms"] = 1e3 * backward_s / n;
  state.counters["optimizer_ms"] = 1e3 * optimizer_s / n;
  state.counters["loss"] = loss;
  for (int kind = 0; kind < kKinds; ++kind)
  {
    state.counters[std::string("cpu_ms_") + kKindNames[kind]] = 1e3 * g_cpu_seconds[kind] / n;
    state.counters[std::string("wall_ms_") + kKindNames[kind]] = 1e3 * g_wall_seconds[kind] / n;
  }
  // 6·N·tokens for the matmul parameters plus attention, as the usual estimate.
  const double tokens = static_cast<double>(state.range(0)) * state.range(1);
  const double flops = 6.0 * 124.4e6 * tokens +
                       12.0 * kLayers * kChannels * tokens * static_cast<double>(state.range(1)) / 2;
  state.counters["TFLOP/s"] =
      benchmark::Counter(flops * 1e-12, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Gpt2SmallTrainingStep)->Args({4, 64})->ArgNames({"B", "T"})
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

}  // namespace
