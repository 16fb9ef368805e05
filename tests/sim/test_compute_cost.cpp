// The compute cost model against rooflines computed by hand (sim/compute_cost.hpp).
#include <gtest/gtest.h>

#include <cmath>

#include "sim/compute_cost.hpp"
#include "strategy/cpu_threading.hpp"
#include "strategy/hardware_profile.hpp"

namespace {

using namespace tandem;

// 100 TFLOP/s bf16, 1 TB/s memory (efficiency 0.5 -> 500 GB/s achieved), 4 compute units, one
// 128 x 128 tile, no k ramp, no overhead: every number below is easy to check by hand.
strategy::HardwareProfile simple_profile(double k_half = 0, double overhead = 0) {
  return strategy::parse_hardware_profile(
      "name: simple\nbackend: cuda\n"
      "memory: {capacity: 16GiB, bandwidth: 1000GB/s, efficiency: 0.5}\n"
      "compute: {fp32: 50TFLOP/s, bf16: 100TFLOP/s, fp8: 200TFLOP/s, attention_efficiency: 0.5, kernel_overhead: " +
          std::to_string(overhead * 1e6) + "us}\n"
          "gemm: {peak_efficiency: 0.8, compute_units: 4, k_half: " + std::to_string(k_half) +
          ", tiles: [[128, 128, 1.0]]}\n"
          "node: {intra_node: {bandwidth: 100GB/s, latency: 1us}, nic: {count: 1, bandwidth: 100Gbps, latency: 2us}}\n",
      "test", "cluster.gpu");
}

strategy::Op matmul(double m, double n, double k, double bytes) {
  strategy::Op op;
  op.type = strategy::OpType::Compute;
  op.compute_kind = strategy::ComputeKind::Matmul;
  op.m = static_cast<std::int64_t>(m);
  op.n = static_cast<std::int64_t>(n);
  op.k = static_cast<std::int64_t>(k);
  op.flops = 2 * m * n * k;
  op.bytes = bytes;
  return op;
}

TEST(ComputeCost, FullWaveGemmRunsAtPeakEfficiency) {
  const sim::ComputeCostModel cost(simple_profile(), strategy::Precision::Bf16);
  // 256 x 256 output = 4 tiles = one full wave on 4 units.
  EXPECT_DOUBLE_EQ(cost.gemm_efficiency({256, 256, 4096, 1}), 0.8);
  const strategy::Op op = matmul(256, 256, 4096, 1e6);  // 2 us of traffic < 6.7 us of math
  EXPECT_NEAR(cost.op_time(op), 2.0 * 256 * 256 * 4096 / (100e12 * 0.8), 1e-15);
}

TEST(ComputeCost, WaveAndTileQuantization) {
  const sim::ComputeCostModel cost(simple_profile(), strategy::Precision::Bf16);
  // 5 tiles on 4 units: 2 waves, 5/8 busy.
  EXPECT_DOUBLE_EQ(cost.gemm_efficiency({5 * 128, 128, 4096, 1}), 0.8 * 5.0 / 8.0);
  // 129 rows need 2 tile rows, the second almost empty: padding 129/256 ... and 2 tiles on 4
  // units: half a wave.
  EXPECT_DOUBLE_EQ(cost.gemm_efficiency({129, 128, 4096, 1}), 0.8 * (129.0 / 256.0) * (2.0 / 4.0));
  // Batched: 4 batches of one tile fill the wave.
  EXPECT_DOUBLE_EQ(cost.gemm_efficiency({128, 128, 4096, 4}), 0.8);
}

TEST(ComputeCost, KLoopRamp) {
  const sim::ComputeCostModel cost(simple_profile(64), strategy::Precision::Bf16);
  EXPECT_DOUBLE_EQ(cost.gemm_efficiency({256, 256, 64, 1}), 0.8 * 0.5);
  EXPECT_DOUBLE_EQ(cost.gemm_efficiency({256, 256, 192, 1}), 0.8 * 0.75);
}

TEST(ComputeCost, MemoryBoundGemmHitsTheBandwidthRoof) {
  const sim::ComputeCostModel cost(simple_profile(0, 5e-6), strategy::Precision::Bf16);
  // A skinny GEMM: 2*256*256*8 FLOPs = 1 MFLOP, 10 MB of traffic: memory-bound at 500 GB/s.
  const strategy::Op op = matmul(256, 256, 8, 10e6);
  EXPECT_NEAR(cost.op_time(op), 10e6 / 500e9 + 5e-6, 1e-15);
}

TEST(ComputeCost, ElementwiseOpsAreMemoryBound) {
  const sim::ComputeCostModel cost(simple_profile(0, 3e-6), strategy::Precision::Bf16);
  strategy::Op op;
  op.type = strategy::OpType::Compute;
  op.compute_kind = strategy::ComputeKind::Elementwise;
  op.bytes = 1e9;
  op.flops = 1e9;
  EXPECT_NEAR(cost.op_time(op), 1e9 / 500e9 + 3e-6, 1e-15);
}

TEST(ComputeCost, AnOpWithoutWorkLaunchesNoKernel) {
  // The residual backward (an identity in the engine) costs nothing, not a kernel launch.
  const sim::ComputeCostModel cost(simple_profile(0, 3e-6), strategy::Precision::Bf16);
  strategy::Op op;
  op.type = strategy::OpType::Compute;
  op.compute_kind = strategy::ComputeKind::Elementwise;
  EXPECT_EQ(cost.op_time(op), 0);
  op.bytes = 1;
  EXPECT_NEAR(cost.op_time(op), 1 / 500e9 + 3e-6, 1e-15);
}

TEST(ComputeCost, GemmOutputPassesArePerPhaseAndPerOutputElement) {
  // gemm.output_cost: a forward GEMM passes over its m x n output once more (1 ns an element
  // here), a weight-gradient GEMM too (0.25 ns), an input-gradient GEMM does not.
  auto profile = simple_profile();
  profile.gemm.output_cost.forward_s = 1e-9;
  profile.gemm.output_cost.backward_weight_s = 0.25e-9;
  const sim::ComputeCostModel cost(profile, strategy::Precision::Bf16);
  strategy::Op op = matmul(256, 512, 4096, 1e6);
  op.phase = strategy::Phase::BackwardInput;
  const double product = cost.op_time(op);
  EXPECT_NEAR(product, 2.0 * 256 * 512 * 4096 / (100e12 * 0.8), 1e-15);
  op.phase = strategy::Phase::Forward;
  EXPECT_NEAR(cost.op_time(op), product + 256 * 512 * 1e-9, 1e-15);
  op.phase = strategy::Phase::BackwardWeight;
  EXPECT_NEAR(cost.op_time(op), product + 256 * 512 * 0.25e-9, 1e-15);
  // On 2 cpu threads each passes over its own half of the output, as it computes its half.
  auto cpu = strategy::load_hardware_profile("cpu", ".");
  cpu.cores = 2;
  cpu.gemm.output_cost.forward_s = 1e-9;
  const sim::ComputeCostModel two(cpu, strategy::Precision::Fp32, 2, 1);
  cpu.gemm.output_cost.forward_s = 0;
  const sim::ComputeCostModel two_without(cpu, strategy::Precision::Fp32, 2, 1);
  op = matmul(256, 3000, 768, 1);
  op.phase = strategy::Phase::Forward;
  EXPECT_EQ(two.gemm_threads({256, 3000, 768, 1}), 2);
  EXPECT_NEAR(two.op_time(op), two_without.op_time(op) + 256 * 1504 * 1e-9, 1e-15);
}

TEST(ComputeCost, PrecisionPicksThePeak) {
  const sim::ComputeCostModel fp32(simple_profile(), strategy::Precision::Fp32);
  const sim::ComputeCostModel fp8(simple_profile(), strategy::Precision::Fp8);
  EXPECT_DOUBLE_EQ(fp32.peak_flops(), 50e12);
  EXPECT_DOUBLE_EQ(fp8.peak_flops(), 200e12);
  const strategy::Op op = matmul(256, 256, 4096, 0);
  EXPECT_NEAR(fp32.op_time(op) / fp8.op_time(op), 4.0, 1e-12);
}

TEST(ComputeCost, FusedAttentionAtAttentionEfficiency) {
  const sim::ComputeCostModel cost(simple_profile(), strategy::Precision::Bf16);
  strategy::Op op;
  op.type = strategy::OpType::Compute;
  op.compute_kind = strategy::ComputeKind::Attention;
  op.code = strategy::OpCode::AttentionCoreForward;
  op.m = op.n = 2048;
  op.k = 128;
  op.batch = 16;
  op.flops = 4.0 * 16 * 2048 * 2048 * 128;
  op.bytes = 1e6;
  EXPECT_NEAR(cost.op_time(op), op.flops / (100e12 * 0.5), 1e-12);
}

TEST(ComputeCost, UnfusedAttentionStreamsTheScores) {
  auto profile = simple_profile();
  profile.attention_fused = false;
  const sim::ComputeCostModel with_dropout(profile, strategy::Precision::Bf16, 1, 1, true);
  const sim::ComputeCostModel without(profile, strategy::Precision::Bf16, 1, 1, false);
  strategy::Op op;
  op.type = strategy::OpType::Compute;
  op.compute_kind = strategy::ComputeKind::Attention;
  op.code = strategy::OpCode::AttentionCoreForward;
  op.m = op.n = 1024;
  op.k = 128;
  op.batch = 4;
  op.flops = 4.0 * 4 * 1024 * 1024 * 128;
  // Dropout adds read + write (2 bytes each) and a 1-byte mask per score element.
  const double scores = 4.0 * 1024 * 1024;
  EXPECT_NEAR(with_dropout.op_time(op) - without.op_time(op), scores * 5 / 500e9, 1e-12);
  // Without dropout: the two GEMMs plus softmax reading and writing each score once.
  const double gemms = without.gemm_time({1024, 1024, 128, 4}, 2.0 * 4 * (1024 * 128 * 2 + 1024 * 1024)) +
                       without.gemm_time({1024, 128, 1024, 4}, 2.0 * 4 * (1024 * 1024 + 1024 * 128 * 2));
  EXPECT_NEAR(without.op_time(op), gemms + scores * 4 / 500e9, 1e-12);
}

TEST(ComputeCost, CpuRanksShareTheMachinesCores) {
  auto profile = strategy::load_hardware_profile("cpu", ".");
  ASSERT_TRUE(profile.shared_cores);
  profile.cores = 4;
  // Only the share here: the all-core slowdown has its own test (calibration/test_cost_mechanisms).
  profile.all_core_compute_efficiency = profile.all_core_memory_efficiency = 1.0;
  const sim::ComputeCostModel alone(profile, strategy::Precision::Fp32, 2, 1);
  const sim::ComputeCostModel shared(profile, strategy::Precision::Fp32, 2, 4);  // 8 threads on 4 cores
  EXPECT_DOUBLE_EQ(alone.peak_flops(), 2 * profile.peak_flops_fp32);
  EXPECT_DOUBLE_EQ(shared.peak_flops(), 2 * profile.peak_flops_fp32 * 0.5);
  EXPECT_DOUBLE_EQ(shared.memory_bandwidth(), alone.memory_bandwidth() * 0.5);
}

TEST(ComputeCost, CpuGemmLastsAsLongAsItsLargestThreadBlock) {
  // The engine's kernels cut a GEMM's larger output dimension into one block per thread, each a
  // single-threaded GEMM on its own core (kernels/cpu/matmul.cpp). So on 2 threads a 256 x 3000
  // output takes as long as a 256 x 1504 one on 1 thread (3000 / 2 rounded up to 16), and a GEMM
  // under 4 MFLOP or with fewer than 2 x 64 columns is not split at all.
  auto profile = strategy::load_hardware_profile("cpu", ".");
  profile.cores = 2;
  profile.all_core_compute_efficiency = 1.0;  // the split alone: both cores at one core's rate
  const sim::ComputeCostModel two(profile, strategy::Precision::Fp32, 2, 1);
  const sim::ComputeCostModel one(profile, strategy::Precision::Fp32, 1, 1);
  const double bytes = 1;  // compute bound
  EXPECT_EQ(two.gemm_threads({256, 3000, 768, 1}), 2);
  EXPECT_DOUBLE_EQ(two.gemm_time({256, 3000, 768, 1}, bytes), one.gemm_time({256, 1504, 768, 1}, bytes));
  EXPECT_DOUBLE_EQ(two.gemm_time({3000, 256, 768, 1}, bytes), one.gemm_time({1504, 256, 768, 1}, bytes));
  // 2·64·100·64 FLOPs < 4 MFLOP: one thread, at one core's rate.
  EXPECT_EQ(two.gemm_threads({64, 100, 64, 1}), 1);
  EXPECT_DOUBLE_EQ(two.gemm_time({64, 100, 64, 1}, bytes), one.gemm_time({64, 100, 64, 1}, bytes));
  // A 100 x 127 output (13 MFLOP): a second thread would get fewer than 64 rows or columns.
  EXPECT_EQ(two.gemm_threads({100, 127, 512, 1}), 1);
}

}  // namespace

namespace {

TEST(ComputeCostBuiltIn, H100GemmMatchesThePublishedMeasurement) {
  // PUBLISHED.md: a real H100 measured 798 TFLOP/s on an 8192^3 BF16 GEMM.
  const auto profile = tandem::strategy::load_hardware_profile("h100-80gb", ".");
  const tandem::sim::ComputeCostModel cost(profile, tandem::strategy::Precision::Bf16);
  const double flops = 2.0 * 8192 * 8192 * 8192;
  const double seconds = cost.gemm_time({8192, 8192, 8192, 1}, 2.0 * 3 * 8192 * 8192);
  EXPECT_NEAR(flops / seconds / 1e12, 798, 0.02 * 798);
}

}  // namespace

namespace {

TEST(ComputeCostBuiltIn, CpuLoopsUseTheKernelsThreadRule) {
  // The built-in cpu profile splits non-GEMM ops as the kernels split their loops, counting an
  // op's FLOPs as the loop's work.
  namespace rule = tandem::strategy::cpu_threading;
  auto profile = tandem::strategy::load_hardware_profile("cpu", ".");
  EXPECT_DOUBLE_EQ(profile.parallel_grain_flops, static_cast<double>(rule::kMinLoopWorkPerThread));
  profile.cores = 4;
  const tandem::sim::ComputeCostModel cost(profile, tandem::strategy::Precision::Fp32, 4, 1);
  for (std::int64_t work : {std::int64_t{1000}, rule::kMinLoopWorkPerThread, 2 * rule::kMinLoopWorkPerThread - 1,
                            2 * rule::kMinLoopWorkPerThread, 3 * rule::kMinLoopWorkPerThread + 5,
                            100 * rule::kMinLoopWorkPerThread})
    EXPECT_EQ(cost.threads_for(static_cast<double>(work)), rule::loop_threads(4, work)) << work;
}

}  // namespace
