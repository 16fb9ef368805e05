// engine/outer: the quantizers against their stated round-trip bounds, the E4M3 code table, the
// outer update rules against float64 evaluations of OPTIMIZERS.md's formulas written out here,
// and the synchronizer's schedule with one worker (single-process communicator) against a
// float64 replay of the same schedule.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "comm/communicator.hpp"
#include "engine/outer/exchange.hpp"
#include "engine/outer/outer_update.hpp"
#include "engine/outer/quantize.hpp"
#include "engine/outer/synchronizer.hpp"
#include "strategy/outer.hpp"
#include "strategy/scenario.hpp"

namespace {

using namespace tandem;
using engine::outer::OuterQuantization;

std::vector<float> random_values(std::size_t n, std::uint64_t seed, double spread_decades) {
  std::mt19937_64 generator(seed);
  std::uniform_real_distribution<double> exponent(-spread_decades, 0.0);
  std::uniform_int_distribution<int> sign(0, 1);
  std::vector<float> values(n);
  for (float& v : values) v = static_cast<float>((sign(generator) ? 1 : -1) * 0.03 * std::pow(10.0, exponent(generator)));
  return values;
}

}  // namespace

TEST(Quantize, E4m3CodesAreTheFormatsValues) {
  EXPECT_EQ(engine::outer::e4m3_from_float(0.0f), 0x00);
  EXPECT_EQ(engine::outer::e4m3_from_float(1.0f), 0x38);       // exponent 7 (bias 7), mantissa 0
  EXPECT_EQ(engine::outer::e4m3_from_float(-2.0f), 0xC0);
  EXPECT_EQ(engine::outer::e4m3_from_float(448.0f), 0x7E);     // largest finite
  EXPECT_EQ(engine::outer::e4m3_from_float(1000.0f), 0x7E);    // saturates
  EXPECT_EQ(engine::outer::e4m3_from_float(0x1p-9f), 0x01);    // smallest subnormal
  EXPECT_EQ(engine::outer::e4m3_from_float(0x1p-6f), 0x08);    // smallest normal
  EXPECT_EQ(engine::outer::e4m3_from_float(1.0625f), 0x38);    // halfway to 1.125: ties to even
  EXPECT_EQ(engine::outer::e4m3_from_float(1.1875f), 0x3A);    // halfway 1.125..1.25: to even (1.25)
  // Every finite code decodes to a value that encodes back to it, in increasing order.
  float previous = -1;
  for (int code = 0; code <= 0x7E; ++code) {
    const float value = engine::outer::e4m3_to_float(static_cast<std::uint8_t>(code));
    EXPECT_GT(value, previous) << code;
    previous = value;
    EXPECT_EQ(engine::outer::e4m3_from_float(value), code);
    EXPECT_EQ(engine::outer::e4m3_from_float(-value), code == 0 ? 0x80 : (code | 0x80));
    // Normal codes: (1 + m/8) 2^(e-7); subnormal: m 2^-9.
    const int e = code >> 3, m = code & 7;
    const double expected = e == 0 ? m * std::ldexp(1.0, -9) : (1 + m / 8.0) * std::ldexp(1.0, e - 7);
    EXPECT_DOUBLE_EQ(value, expected);
  }
}

TEST(Quantize, RoundTripErrorWithinTheStatedBounds) {
  for (std::size_t n : {1u, 255u, 256u, 1000u, 4096u}) {
    for (double decades : {0.0, 3.0, 8.0}) {
      std::vector<float> values = random_values(n, n * 7 + static_cast<std::size_t>(decades), decades);
      if (n >= 512) std::fill(values.begin() + 256, values.begin() + 512, 0.0f);  // an all-zero block
      for (OuterQuantization q : {OuterQuantization::Fp8, OuterQuantization::Int4, OuterQuantization::None}) {
        std::vector<std::uint8_t> encoded(engine::outer::encoded_size(n, q));
        EXPECT_EQ(static_cast<double>(encoded.size()), strategy::quantized_bytes(static_cast<double>(n), q));
        engine::outer::encode(values, q, encoded);
        std::vector<float> decoded(n);
        engine::outer::decode(encoded, q, decoded);
        for (std::size_t b = 0; b < n; b += 256) {
          const std::size_t end = std::min(n, b + 256);
          double absmax = 0;
          for (std::size_t i = b; i < end; ++i) absmax = std::max(absmax, std::fabs(static_cast<double>(values[i])));
          for (std::size_t i = b; i < end; ++i) {
            const double x = values[i], error = std::fabs(x - decoded[i]);
            const double slack = 1e-6 * (std::fabs(x) + absmax);
            if (q == OuterQuantization::None) {
              EXPECT_EQ(decoded[i], values[i]);
            } else if (q == OuterQuantization::Fp8) {
              const double scale = absmax / 448;
              EXPECT_LE(error, std::max(std::ldexp(std::fabs(x), -4), std::ldexp(scale, -10)) + slack)
                  << "fp8 n=" << n << " i=" << i << " x=" << x;
            } else {
              EXPECT_LE(error, absmax / 14 + slack) << "int4 n=" << n << " i=" << i << " x=" << x;
            }
          }
        }
      }
    }
  }
}

TEST(OuterUpdate, NesterovMatchesTheFormulaInFloat64) {
  // b = mu b + delta; global -= lr (delta + mu b), three outer steps.
  const std::size_t n = 513;
  std::vector<float> global = random_values(n, 1, 2), momentum(n, 0.0f);
  std::vector<double> g(global.begin(), global.end()), b(n, 0.0);
  const double lr = 0.7, mu = 0.9;
  for (int step = 0; step < 3; ++step) {
    const std::vector<float> delta = random_values(n, 10 + static_cast<std::uint64_t>(step), 3);
    engine::outer::nesterov_outer_step(global, momentum, delta, lr, mu);
    for (std::size_t i = 0; i < n; ++i) {
      b[i] = mu * b[i] + delta[i];
      g[i] -= lr * (delta[i] + mu * b[i]);
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_NEAR(global[i], g[i], 1e-6 * (std::fabs(g[i]) + 1e-3)) << i;
    EXPECT_NEAR(momentum[i], b[i], 1e-6 * (std::fabs(b[i]) + 1e-3)) << i;
  }
  // With one worker the pseudo-gradient is formed from global and local directly.
  std::vector<float> global2 = random_values(n, 2, 2), momentum2(n, 0.0f);
  const std::vector<float> local = random_values(n, 3, 2);
  std::vector<double> expected(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double delta = static_cast<double>(global2[i]) - local[i];
    expected[i] = global2[i] - 0.68 * (delta + 0.37 * delta);
  }
  engine::outer::nesterov_outer_step_local(global2, momentum2, local, 0.68, 0.37);
  for (std::size_t i = 0; i < n; ++i) EXPECT_NEAR(global2[i], expected[i], 1e-7 * (std::fabs(expected[i]) + 1e-4));
}

TEST(OuterUpdate, OneWorkerLearningRateOneNoMomentumReturnsTheLocalParametersExactly) {
  const std::size_t n = 4096;
  std::vector<float> global = random_values(n, 5, 6), momentum(n, 0.0f);
  std::vector<float> local = global;
  std::mt19937_64 generator(9);
  std::normal_distribution<double> step(0.0, 1e-3);
  for (float& v : local) v = static_cast<float>(v + step(generator));  // weights that cross zero too
  local[0] = 0.0f;
  global[1] = 0.0f;
  engine::outer::nesterov_outer_step_local(global, momentum, local, 1.0, 0.0);
  for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(global[i], local[i]) << i;
}

TEST(OuterUpdate, NolocoHeavyBallAndStreamingMixMatchTheFormulas) {
  const std::size_t n = 300;
  std::vector<float> phi = random_values(n, 21, 2), velocity = random_values(n, 22, 3);
  const std::vector<float> mean = random_values(n, 23, 2);
  std::vector<double> p(phi.begin(), phi.end()), v(velocity.begin(), velocity.end());
  // OPTIMIZERS.md: delta = mu delta + lr mean(theta_j - phi_j) + lr (mean(phi_j) - phi_i); with
  // a group's phi_j given, mean(theta - phi) + mean(phi) = mean(theta).
  const std::vector<float> other_phi = random_values(n, 24, 2);
  for (std::size_t i = 0; i < n; ++i) {
    const double phi_mean = 0.5 * (p[i] + other_phi[i]);
    const double g = mean[i] - phi_mean;  // mean(theta_j - phi_j) for the pair
    v[i] = 0.5 * v[i] + 0.7 * g + 0.7 * (phi_mean - p[i]);
    p[i] += v[i];
  }
  engine::outer::noloco_outer_step(phi, velocity, mean, 0.7, 0.5);
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_NEAR(phi[i], p[i], 1e-6 * (std::fabs(p[i]) + 1e-3)) << i;
    EXPECT_NEAR(velocity[i], v[i], 1e-6 * (std::fabs(v[i]) + 1e-3)) << i;
  }
  std::vector<float> local = random_values(n, 25, 2);
  const std::vector<float> global = random_values(n, 26, 2);
  std::vector<double> expected(n);
  for (std::size_t i = 0; i < n; ++i) expected[i] = 0.25 * global[i] + 0.75 * local[i];
  engine::outer::mix_into_local(local, global, 0.75);
  for (std::size_t i = 0; i < n; ++i) EXPECT_NEAR(local[i], expected[i], 1e-7 * (std::fabs(expected[i]) + 1e-4));
}

TEST(OuterExchange, OneRankReturnsTheValuesUnchanged) {
  auto world = comm::make_single_process_communicator();
  for (OuterQuantization q : {OuterQuantization::None, OuterQuantization::Int4}) {
    engine::outer::MeanExchange exchange(*world, q);
    const std::vector<float> values = random_values(1000, 31, 3);
    exchange.start(values);
    EXPECT_TRUE(exchange.progress());
    const auto mean = exchange.finish();
    ASSERT_EQ(mean.size(), values.size());
    for (std::size_t i = 0; i < values.size(); ++i) EXPECT_EQ(mean[i], values[i]);
    EXPECT_EQ(exchange.bytes_sent(), 0.0);
  }
}

namespace {

strategy::Scenario one_worker(const std::string& outer) {
  return strategy::parse_scenario(
      "model: {preset: tiny, layers: 4}\ncluster: {gpu: cpu, nodes: 1, gpus_per_node: 1}\n"
      "strategy: {tp: 1, pp: 1, dp: 1, micro_batch: 2, outer: " + outer + "}\n",
      ".");
}

// Float64 replay of the Streaming DiLoCo schedule with one worker (the mean is the fragment's own
// pseudo-gradient, no quantization on a single rank).
struct StreamingReference {
  std::vector<double> global, momentum;
  int pending = -1;
  std::int64_t apply_at = 0;
  std::vector<double> delta;
};

}  // namespace

TEST(OuterSynchronizer, OneWorkerDilocoAndStreamingFollowTheScheduleAndResumeExactly) {
  auto world = comm::make_single_process_communicator();
  const std::size_t n = 1001;
  for (const std::string outer : {"{method: diloco, inner_steps: 3, outer_lr: 0.7, momentum: 0.9}",
                                  "{method: streaming-diloco, inner_steps: 8, fragments: 4, delay: 1, mix: 0.25, "
                                  "outer_lr: 0.5, momentum: 0.8}"}) {
    SCOPED_TRACE(outer);
    const strategy::Scenario s = one_worker(outer);
    const strategy::OuterSpec& spec = s.strategy->outer;
    const strategy::Program program = strategy::build_program(s);
    std::vector<float> params = random_values(n, 41, 2);
    double clock = 0;
    auto now = [&clock] { return clock += 1e-3; };
    engine::outer::OuterSynchronizer sync(s, *world, program.layout, params, program.stage_ops[0], 0, now);
    StreamingReference ref;
    ref.global.assign(params.begin(), params.end());
    ref.momentum.assign(n, 0.0);
    std::vector<std::uint8_t> saved;
    std::vector<float> params_at_save;
    std::vector<std::vector<float>> history;
    for (std::int64_t step = 1; step <= 20; ++step) {
      // An "inner step": a deterministic perturbation of the local parameters.
      const std::vector<float> change = random_values(n, 100 + static_cast<std::uint64_t>(step), 2);
      for (std::size_t i = 0; i < n; ++i) params[i] += 0.1f * change[i];
      std::vector<double> local(params.begin(), params.end());
      // Reference.
      auto nesterov = [&](std::size_t begin, std::size_t end, const std::vector<double>& d) {
        for (std::size_t i = begin; i < end; ++i) {
          ref.momentum[i] = spec.momentum * ref.momentum[i] + d[i - begin];
          ref.global[i] -= spec.outer_lr * (d[i - begin] + spec.momentum * ref.momentum[i]);
        }
      };
      if (spec.method == strategy::OuterMethod::DiLoCo) {
        if (step % spec.inner_steps == 0) {
          std::vector<double> d(n);
          for (std::size_t i = 0; i < n; ++i) d[i] = ref.global[i] - local[i];
          nesterov(0, n, d);
          local = ref.global;
        }
      } else {
        auto apply = [&] {
          const auto [b, e] = strategy::fragment_range(static_cast<std::int64_t>(n), spec.fragments, ref.pending);
          nesterov(static_cast<std::size_t>(b), static_cast<std::size_t>(e), ref.delta);
          for (auto i = static_cast<std::size_t>(b); i < static_cast<std::size_t>(e); ++i)
            local[i] = (1 - spec.mix) * ref.global[i] + spec.mix * local[i];
          ref.pending = -1;
        };
        if (ref.pending >= 0 && ref.apply_at == step) apply();
        const int f = strategy::fragment_starting_after(spec, step);
        if (f >= 0) {
          const auto [b, e] = strategy::fragment_range(static_cast<std::int64_t>(n), spec.fragments, f);
          ref.delta.clear();
          for (auto i = b; i < e; ++i)
            ref.delta.push_back(static_cast<double>(static_cast<float>(ref.global[static_cast<std::size_t>(i)] -
                                                                       local[static_cast<std::size_t>(i)])));
          ref.pending = f;
          ref.apply_at = step + spec.delay;
        }
      }
      sync.after_step(step, params);
      for (std::size_t i = 0; i < n; ++i)
        ASSERT_NEAR(params[i], local[i], 2e-6 * (std::fabs(local[i]) + 1e-2)) << "step " << step << " i " << i;
      // Keep the reference on the engine's fp32 values (the engine stores fp32 every step).
      for (std::size_t i = 0; i < n; ++i) ref.global[i] = static_cast<double>(static_cast<float>(ref.global[i]));
      history.push_back(params);
      if (step == 10) {  // streaming: the fragment sent after step 10 is applied after step 11
        saved = sync.save_state();
        params_at_save = params;
      }
    }
    // Resume after step 10 in a fresh synchronizer: the same parameters at every later step.
    engine::outer::OuterSynchronizer resumed(s, *world, program.layout, random_values(n, 77, 1), program.stage_ops[0], 0, now);
    resumed.load_state(saved);
    std::vector<float> again = params_at_save;
    for (std::int64_t step = 11; step <= 20; ++step) {
      const std::vector<float> change = random_values(n, 100 + static_cast<std::uint64_t>(step), 2);
      for (std::size_t i = 0; i < n; ++i) again[i] += 0.1f * change[i];
      resumed.after_step(step, again);
      EXPECT_EQ(0, std::memcmp(again.data(), history[static_cast<std::size_t>(step - 1)].data(), n * sizeof(float)))
          << "step " << step;
    }
    // Each sync is recorded under the program's OuterStep op.
    const auto records = sync.take_records();
    EXPECT_FALSE(records.empty());
    for (const auto& record : records) EXPECT_EQ(record.code, strategy::OpCode::OuterStep);
  }
}
