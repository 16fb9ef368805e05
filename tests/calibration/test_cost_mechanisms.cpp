// The twin mechanisms the fits rely on (sim/compute_cost.hpp, sim/collective_folding.hpp) against
// their closed forms: a ring step's latency is the mean of its hops', the fixed per-collective
// latency is paid once, NCCL's tree streams its phases as one pipeline and is capped at
// node.tree_bandwidth (NCCL's perChMaxTreeBw), non-GEMM arithmetic runs at vector_efficiency of
// the fp32 peak, cpu.parallel_grain puts small ops on fewer threads, and a collective kind's cost
// scale multiplies its transfers' bytes. Plus the profile keys' round trip.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <tuple>
#include <vector>

#include "sim/collective_folding.hpp"
#include "sim/compute_cost.hpp"
#include "sim/simulation.hpp"
#include "strategy/collective_plan.hpp"
#include "strategy/cpu_threading.hpp"
#include "strategy/hardware_profile.hpp"
#include "strategy/scenario.hpp"

namespace {

namespace fs = std::filesystem;
using namespace tandem;

constexpr const char* kProfile = R"(name: mechanisms
backend: cuda
memory: {capacity: 80GiB, bandwidth: 1000GB/s, efficiency: 1}
compute: {fp32: 100TFLOP/s, bf16: 100TFLOP/s, fp8: 0TFLOP/s, attention_efficiency: 1, kernel_overhead: 0us, vector_efficiency: 0.25}
gemm: {peak_efficiency: 1, compute_units: 1, k_half: 0, tiles: [[1, 1, 1.0]]}
node:
  gpus_per_node: 2
  intra_node: {bandwidth: 100GB/s, latency: 1us}
  nic: {count: 2, bandwidth: 100GB/s, latency: 9us}
  collective_efficiency: 1
  collective_latency: 20us
)";

class Mechanisms : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = fs::temp_directory_path() / ("tandem-calibration-mechanisms-" + std::to_string(::getpid()));
    fs::create_directories(directory_);
    std::ofstream(directory_ / "p.yaml") << kProfile;
  }
  void TearDown() override { fs::remove_all(directory_); }
  strategy::Scenario scenario(const std::string& yaml) { return strategy::parse_scenario(yaml, directory_); }
  // The built-in cpu profile on a 4-core machine, no kernel overhead, with these thread
  // efficiencies and loop grain.
  static strategy::HardwareProfile four_core_cpu(double compute_efficiency, double memory_efficiency, double grain) {
    strategy::HardwareProfile cpu = strategy::load_hardware_profile("cpu", ".");
    cpu.kernel_overhead_s = 0;
    cpu.cores = 4;
    cpu.parallel_grain_flops = grain;
    cpu.all_core_compute_efficiency = compute_efficiency;
    cpu.all_core_memory_efficiency = memory_efficiency;
    return cpu;
  }
  fs::path directory_;
};

TEST_F(Mechanisms, ProfileKeysRoundTrip) {
  const strategy::HardwareProfile p = strategy::load_hardware_profile("p.yaml", directory_);
  EXPECT_DOUBLE_EQ(p.vector_efficiency, 0.25);
  EXPECT_DOUBLE_EQ(p.collective_latency_s, 20e-6);
  strategy::HardwareProfile cpu = strategy::load_hardware_profile("cpu", ".");
  cpu.parallel_grain_flops = 4e6;
  cpu.op_cost_scale.norm = 0.7;
  cpu.op_cost_scale.loss = 2.25;
  cpu.all_core_compute_efficiency = 0.85;
  cpu.all_core_memory_efficiency = 0.6;
  for (const strategy::HardwareProfile& original : {p, cpu}) {
    const strategy::HardwareProfile back =
        strategy::parse_hardware_profile(strategy::hardware_profile_to_yaml(original), "written", "cluster.gpu");
    EXPECT_DOUBLE_EQ(back.vector_efficiency, original.vector_efficiency);
    EXPECT_DOUBLE_EQ(back.collective_latency_s, original.collective_latency_s);
    EXPECT_DOUBLE_EQ(back.parallel_grain_flops, original.parallel_grain_flops);
    EXPECT_DOUBLE_EQ(back.op_cost_scale.norm, original.op_cost_scale.norm);
    EXPECT_DOUBLE_EQ(back.op_cost_scale.loss, original.op_cost_scale.loss);
    EXPECT_DOUBLE_EQ(back.op_cost_scale.optimizer, original.op_cost_scale.optimizer);
    EXPECT_DOUBLE_EQ(back.all_core_compute_efficiency, original.all_core_compute_efficiency);
    EXPECT_DOUBLE_EQ(back.all_core_memory_efficiency, original.all_core_memory_efficiency);
  }
  EXPECT_THROW(strategy::parse_hardware_profile(std::string(kProfile) + "cpu: {parallel_grain: -1}\n", "x", "cluster.gpu"),
               strategy::ScenarioError);
  // Out of range or misspelt: refused, naming the key.
  for (const char* bad : {"cpu: {all_core_compute_efficiency: 1.5}\n", "cpu: {all_core_memory_efficiency: 0}\n"}) {
    try {
      strategy::parse_hardware_profile(std::string(kProfile) + bad, "x", "cluster.gpu");
      ADD_FAILURE() << bad;
    } catch (const strategy::ScenarioError& error) {
      EXPECT_NE(std::string(error.what()).find("all_core_"), std::string::npos) << error.what();
    }
  }
  const std::string with_scale = std::string(kProfile);
  const auto compute_line = with_scale.find("vector_efficiency: 0.25}");
  for (const char* bad : {"vector_efficiency: 0.25, op_cost_scale: {norm: -1}}", "vector_efficiency: 0.25, op_cost_scale: {nrom: 1}}"}) {
    std::string text = with_scale;
    text.replace(compute_line, std::string("vector_efficiency: 0.25}").size(), bad);
    try {
      strategy::parse_hardware_profile(text, "x", "cluster.gpu");
      ADD_FAILURE() << bad;
    } catch (const strategy::ScenarioError& error) {
      EXPECT_NE(std::string(error.what()).find("op_cost_scale"), std::string::npos) << error.what();
    }
  }
}

TEST_F(Mechanisms, NonGemmOpsTakeTheirKindsCostScaleOfTheRoofline) {
  strategy::HardwareProfile cpu = strategy::load_hardware_profile("cpu", ".");
  cpu.kernel_overhead_s = 2e-6;
  cpu.op_cost_scale = {};  // every kind at 1, then two set
  cpu.op_cost_scale.norm = 0.5;
  cpu.op_cost_scale.loss = 3.0;
  const sim::ComputeCostModel model(cpu, strategy::Precision::Fp32, 1, 1);
  const double bandwidth = cpu.memory_bandwidth_bytes_per_s * cpu.memory_efficiency;
  strategy::Op op;
  op.type = strategy::OpType::Compute;
  op.bytes = 4e6;
  op.flops = 0;
  op.compute_kind = strategy::ComputeKind::Elementwise;  // the reference: no scale
  EXPECT_NEAR(model.op_time(op), 4e6 / bandwidth + 2e-6, 1e-12);
  op.compute_kind = strategy::ComputeKind::Norm;
  EXPECT_NEAR(model.op_time(op), 0.5 * 4e6 / bandwidth + 2e-6, 1e-12);
  op.compute_kind = strategy::ComputeKind::Loss;
  EXPECT_NEAR(model.op_time(op), 3.0 * 4e6 / bandwidth + 2e-6, 1e-12);
  op.compute_kind = strategy::ComputeKind::Optimizer;  // default 1
  EXPECT_NEAR(model.op_time(op), 4e6 / bandwidth + 2e-6, 1e-12);
}

TEST_F(Mechanisms, CpuAttentionComputesCausalScoresBlockByBlockAndPaysPerBlock) {
  namespace cpu = strategy::cpu_threading;
  // Blocks of 64 query rows, each against the keys it can see.
  EXPECT_DOUBLE_EQ(cpu::attention_scores_fraction(64), 1.0);
  EXPECT_DOUBLE_EQ(cpu::attention_scores_fraction(32), 1.0);
  EXPECT_DOUBLE_EQ(cpu::attention_scores_fraction(128), (64.0 * 64 + 64.0 * 128) / (128.0 * 128));
  EXPECT_DOUBLE_EQ(cpu::attention_scores_fraction(100), (64.0 * 64 + 36.0 * 100) / (100.0 * 100));
  EXPECT_NEAR(cpu::attention_scores_fraction(1024), 0.53125, 1e-12);

  strategy::HardwareProfile p = strategy::load_hardware_profile("cpu", ".");
  p.kernel_overhead_s = 1e-6;
  p.attention_efficiency = 0.4;
  p.attention_block_overhead_s = 3e-6;
  p.all_core_compute_efficiency = 1.0;  // two threads: twice one core's rate
  p.parallel_grain_flops = static_cast<double>(cpu::kMinLoopWorkPerThread);
  strategy::Op op;
  op.type = strategy::OpType::Compute;
  op.compute_kind = strategy::ComputeKind::Attention;
  op.code = strategy::OpCode::AttentionCoreForward;
  op.m = op.n = 128;
  op.k = 32;
  op.batch = 6;  // micro-batch x heads
  op.flops = 4.0 * 6 * 128 * 128 * 32;
  const double fraction = cpu::attention_scores_fraction(128);
  // One thread: every block in turn.
  const sim::ComputeCostModel one(p, strategy::Precision::Fp32, 1, 1);
  EXPECT_NEAR(one.op_time(op), op.flops * fraction / (p.peak_flops_fp32 * 0.4) + 12 * 3e-6 + 1e-6, 1e-12);
  // Two threads: the work (B·H·T²·D = 3.1M) passes the loop rule's 2 x 1M, the 12 blocks split 6/6.
  const sim::ComputeCostModel two(p, strategy::Precision::Fp32, 2, 1);
  EXPECT_NEAR(two.op_time(op), op.flops * fraction / (2 * p.peak_flops_fp32 * 0.4) + 6 * 3e-6 + 1e-6, 1e-12);
  // Below the loop rule's threshold (B·H·T²·D < 2M) the kernel stays on one thread.
  op.batch = 2;
  op.flops = 4.0 * 2 * 128 * 128 * 32;
  EXPECT_NEAR(two.op_time(op), op.flops * fraction / (p.peak_flops_fp32 * 0.4) + 4 * 3e-6 + 1e-6, 1e-12);
}

TEST_F(Mechanisms, EachThreadSlowsDownAsItsRanksOtherThreadsJoinIt) {
  // 4 cores, each thread keeping 80% of its compute and 50% of its bandwidth when its rank uses
  // all 4: with b of them busy with the rank's threads a thread keeps 1 - 0.2 (b-1)/3 of its
  // compute, 1 - 0.5 (b-1)/3 of its bandwidth. Other ranks' threads only share the cores.
  const strategy::HardwareProfile cpu = four_core_cpu(0.8, 0.5, 0);
  const double per_core_bandwidth = cpu.memory_bandwidth_bytes_per_s * cpu.memory_efficiency;
  strategy::Op stream;
  stream.type = strategy::OpType::Compute;
  stream.compute_kind = strategy::ComputeKind::Elementwise;
  stream.bytes = 1e6;
  strategy::Op arithmetic = stream;
  arithmetic.bytes = 1;
  arithmetic.flops = 1e9;
  const double vector = cpu.peak_flops_fp32 * cpu.vector_efficiency;
  for (const auto& [threads, ranks] : std::vector<std::pair<int, int>>{{1, 1}, {2, 1}, {1, 2}, {1, 4}, {2, 2}, {4, 2}}) {
    const sim::ComputeCostModel model(cpu, strategy::Precision::Fp32, threads, ranks);
    const int wanted = threads * ranks;
    const double others = (std::min(threads, 4) - 1) / 3.0;
    const double share = std::min(1.0, 4.0 / wanted);
    EXPECT_NEAR(model.op_time(stream), 1e6 / (threads * share * per_core_bandwidth * (1 - 0.5 * others)), 1e-12)
        << threads << " threads, " << ranks << " ranks";
    EXPECT_NEAR(model.op_time(arithmetic), 1e9 / (threads * share * vector * (1 - 0.2 * others)), 1e-9)
        << threads << " threads, " << ranks << " ranks";
  }
}

TEST_F(Mechanisms, AnOpSlowsDownOnlyByTheThreadsItRunsOn) {
  // 4 cores, a 4-thread rank, the loop rule's grain g: an op of F FLOPs runs on
  // min(4, max(1, floor(F / g))) threads, each keeping 1 - (1 - e) (t - 1) / 3 of its rate. An
  // op left on one thread runs at its one-thread rate however many threads the rank has.
  const strategy::HardwareProfile cpu = four_core_cpu(0.7, 0.4, 1e6);
  const double per_core_bandwidth = cpu.memory_bandwidth_bytes_per_s * cpu.memory_efficiency;
  const double vector = cpu.peak_flops_fp32 * cpu.vector_efficiency;
  const sim::ComputeCostModel rank(cpu, strategy::Precision::Fp32, 4, 1);
  for (const auto& [flops, threads] : std::vector<std::pair<double, int>>{{5e5, 1}, {2.5e6, 2}, {3.5e6, 3}, {9e6, 4}}) {
    strategy::Op op;
    op.type = strategy::OpType::Compute;
    op.compute_kind = strategy::ComputeKind::Elementwise;
    op.flops = flops;
    op.bytes = 1;
    const double others = (threads - 1) / 3.0;
    EXPECT_NEAR(rank.op_time(op), flops / (threads * vector * (1 - 0.3 * others)), 1e-12) << flops << " FLOPs";
    op.bytes = 10 * flops * per_core_bandwidth / vector;  // the same split, bound by memory
    EXPECT_NEAR(rank.op_time(op), op.bytes / (threads * per_core_bandwidth * (1 - 0.6 * others)), 1e-12)
        << flops << " FLOPs, memory-bound";
  }
}

TEST_F(Mechanisms, RingStepLatencyIsTheMeanOfItsHopsAndTheCollectiveLatencyIsPaidOnce) {
  // 2 nodes x 2 GPUs on a star: NCCL-style channel rings, each with 2 NVLink hops (1 us) and 2
  // NIC hops (9 us). A 4-rank ring all-reduce is 2 phases of 3 steps: the flows pay the largest
  // route latency once, the 2 further steps the mean (5 us) each; the first phase adds 20 us.
  const auto s = scenario("name: t\ncluster: {gpu: p.yaml, nodes: 2, gpus_per_node: 2, fabric: {topology: star, "
                          "switch_latency: 0us}}\ncollective: {kind: all-reduce, sizes: [4B], algorithm: ring}\n");
  const sim::ClusterTopology topology(s.cluster);
  auto node_of = [&](int r) { return topology.node_of(r); };
  const auto plan = strategy::plan_collective(strategy::CollectiveKind::AllReduce, strategy::CollectiveAlgorithm::Ring,
                                              {0, 1, 2, 3}, 4, node_of);
  const sim::FoldedPlan folded = sim::fold_plans(topology, {plan}, {});
  ASSERT_EQ(folded.phases.size(), 2u);
  EXPECT_DOUBLE_EQ(folded.phases[0].max_latency_s, 9e-6);
  EXPECT_DOUBLE_EQ(folded.phases[0].step_latency_s, 5e-6);
  EXPECT_DOUBLE_EQ(folded.phases[0].fixed_latency_s, 20e-6);
  EXPECT_DOUBLE_EQ(folded.phases[1].fixed_latency_s, 0);
  const double latency = 2 * (9e-6 + 2 * 5e-6) + 20e-6;
  EXPECT_NEAR(sim::estimate_plan_time(topology, folded), latency, 1e-9);
  // The simulated what-if: the same (4 bytes take no time worth mentioning).
  sim::SimulationOptions options;
  const sim::SimulationResult result = sim::run_simulation_in_child(s, options);
  ASSERT_TRUE(result.ok) << result.error;
  ASSERT_EQ(result.collective_rows.size(), 1u);
  EXPECT_NEAR(result.collective_rows[0].time_s, latency, 1e-8);
}

// A 64 MiB tree all-reduce on nodes x 2 GPUs (star, no switch latency): intra-node
// reduce-scatter, the per-rail double binary tree up and down, intra-node all-gather.
double tree_estimate(const sim::ClusterTopology& topology, int gpus, double size, sim::FoldedPlan* out = nullptr) {
  std::vector<int> ranks(static_cast<std::size_t>(gpus));
  for (int i = 0; i < gpus; ++i) ranks[static_cast<std::size_t>(i)] = i;
  auto node_of = [&](int r) { return topology.node_of(r); };
  const auto plan = strategy::plan_collective(strategy::CollectiveKind::AllReduce, strategy::CollectiveAlgorithm::Tree,
                                              ranks, size, node_of);
  const sim::FoldedPlan folded = sim::fold_plans(topology, {plan}, {});
  if (out) *out = folded;
  return sim::estimate_plan_time(topology, folded);
}

TEST_F(Mechanisms, TreePhasesStreamAsOnePipeline) {
  // 4 nodes x 2 GPUs, S = 64 MiB. NCCL streams chunks through every stage at once, so the four
  // phases are one: the busiest link carries its bytes of all of them. Each GPU's NVLink sends
  // S/2 (reduce-scatter) + S/2 (all-gather) = S; the busiest NIC (a node interior in one tree,
  // a leaf in the other, halves of S/2 each) 3/4 S. So S / 100 GB/s, plus every phase's latency:
  // 1 us (NVLink) + 2 x (9 us + 1 further tree level x 9 us) + 1 us, plus the 20 us fixed one.
  const auto s = scenario("name: t\ncluster: {gpu: p.yaml, nodes: 4, gpus_per_node: 2, fabric: {topology: star, "
                          "switch_latency: 0us}}\ncollective: {kind: all-reduce, sizes: [64MiB], algorithm: tree}\n");
  const sim::ClusterTopology topology(s.cluster);
  const double size = 64.0 * (1 << 20);
  sim::FoldedPlan folded;
  const double time = tree_estimate(topology, 8, size, &folded);
  ASSERT_EQ(folded.phases.size(), 1u);
  EXPECT_EQ(folded.phases[0].merged_phases, 4);
  const double latency = 1e-6 + 2 * (9e-6 + 9e-6) + 1e-6 + 20e-6;
  EXPECT_NEAR(time, size / 100e9 + latency, 1e-9);
  // Run phase by phase the same plan would take the reduce-scatter, both tree phases and the
  // all-gather one after another: S/2 + 3/8 S + 3/8 S + S/2 over 100 GB/s.
  EXPECT_GT(1.75 * size / 100e9 + latency, time * 1.5);
  // The simulated what-if agrees.
  const sim::SimulationResult result = sim::run_simulation_in_child(s, sim::SimulationOptions{});
  ASSERT_TRUE(result.ok) << result.error;
  ASSERT_EQ(result.collective_rows.size(), 1u);
  EXPECT_NEAR(result.collective_rows[0].time_s, time, 0.02 * time);  // its flows overlap their route latencies
}

// node.p2p_bandwidth: a send/recv stream between two nodes takes at least its bytes over the cap
// (NCCL's few channels per network peer), inside a node the links alone set the pace. 2 nodes x 2
// GPUs on a star (100 GB/s links, 1 us NVLink and 9 us NIC hops, 20 us per collective).
TEST_F(Mechanisms, SendRecvBetweenNodesIsCappedAtTheP2pBandwidth) {
  std::ofstream(directory_ / "p.yaml", std::ios::app) << "  p2p_bandwidth: 25GB/s\n";
  const double size = 64.0 * (1 << 20);
  const std::string cluster = "name: t\ncluster: {gpu: p.yaml, nodes: 2, gpus_per_node: 2, fabric: {topology: star, "
                              "switch_latency: 0us}}\n";
  for (const char* peer : {"half", "next"}) {
    const auto s = scenario(cluster + "collective: {kind: send-recv, sizes: [64MiB], peer: " + peer + "}\n");
    // Half: 0<->2 and 1<->3, every stream between nodes. Next: 0->1 and 2->3 inside the nodes,
    // 1->2 and 3->0 between them. Either way the slowest stream crosses nodes at the cap.
    const double expected = size / 25e9 + 9e-6 + 20e-6;
    const sim::SimulationResult result = sim::run_simulation_in_child(s, sim::SimulationOptions{});
    ASSERT_TRUE(result.ok) << result.error;
    ASSERT_EQ(result.collective_rows.size(), 1u);
    EXPECT_NEAR(result.collective_rows[0].time_s, expected, 0.01 * expected) << peer;
  }
  // The pattern itself: nccl-tests' sendrecv sends to the next rank, around the ring.
  const auto plan = strategy::plan_collective(strategy::CollectiveKind::SendRecv, strategy::CollectiveAlgorithm::Ring,
                                              {0, 1, 2, 3}, size, [](int r) { return r / 2; },
                                              strategy::SendRecvPeer::Next);
  ASSERT_EQ(plan.phases.size(), 1u);
  ASSERT_EQ(plan.phases[0].transfers.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(plan.phases[0].transfers[static_cast<std::size_t>(i)].source, i);
    EXPECT_EQ(plan.phases[0].transfers[static_cast<std::size_t>(i)].destination, (i + 1) % 4);
  }
  // Inside one node the cap does not apply: 64 MiB over the 100 GB/s NVLink.
  const auto one_node = scenario("name: t\ncluster: {gpu: p.yaml, nodes: 1, gpus_per_node: 2}\n"
                                 "collective: {kind: send-recv, sizes: [64MiB]}\n");
  const sim::SimulationResult inside = sim::run_simulation_in_child(one_node, sim::SimulationOptions{});
  ASSERT_TRUE(inside.ok) << inside.error;
  EXPECT_NEAR(inside.collective_rows[0].time_s, size / 100e9 + 1e-6 + 20e-6, 0.01 * size / 100e9);
  // The profile key round-trips.
  const strategy::HardwareProfile p = strategy::load_hardware_profile("p.yaml", directory_);
  EXPECT_DOUBLE_EQ(p.p2p_bandwidth_bytes_per_s, 25e9);
  const strategy::HardwareProfile back =
      strategy::parse_hardware_profile(strategy::hardware_profile_to_yaml(p), "written", "cluster.gpu");
  EXPECT_DOUBLE_EQ(back.p2p_bandwidth_bytes_per_s, 25e9);
}

// node.collective_cost_scale: each transfer of a scaled kind carries that many times its bytes.
// One node, 2 GPUs (100 GB/s, 1 us hop, 20 us per collective): a 64 MiB all-gather moves S/2
// each way in one step, so S/2 x 3 / 100 GB/s with its kind scaled by 3; a broadcast scaled by
// 0.5 takes half its unscaled transfer time; the send/recv is the reference: S / 100 GB/s.
TEST_F(Mechanisms, ACollectiveKindsCostScaleMultipliesTheBytesItsTransfersCarry) {
  std::ofstream(directory_ / "p.yaml", std::ios::app) << "  collective_cost_scale: {all_gather: 3, broadcast: 0.5}\n";
  const double size = 64.0 * (1 << 20);
  auto simulate = [&](const std::string& gpu, const char* kind) {
    const auto s = scenario("name: t\ncluster: {gpu: " + gpu + ", nodes: 1, gpus_per_node: 2}\ncollective: {kind: " +
                            kind + ", sizes: [64MiB]}\n");
    const sim::SimulationResult result = sim::run_simulation_in_child(s, sim::SimulationOptions{});
    EXPECT_TRUE(result.ok) << result.error;
    return result.collective_rows.size() == 1 ? result.collective_rows[0].time_s : -1.0;
  };
  const double latency = 1e-6 + 20e-6;
  const double all_gather = 3 * (size / 2) / 100e9 + latency;
  EXPECT_NEAR(simulate("p.yaml", "all-gather"), all_gather, 0.01 * all_gather);
  const double send_recv = size / 100e9 + latency;
  EXPECT_NEAR(simulate("p.yaml", "send-recv"), send_recv, 0.01 * send_recv);
  // The broadcast's transfer time halves against the same profile without the scale.
  std::ofstream(directory_ / "unscaled.yaml") << kProfile;
  const double broadcast = 0.5 * (simulate("unscaled.yaml", "broadcast") - latency) + latency;
  EXPECT_NEAR(simulate("p.yaml", "broadcast"), broadcast, 0.01 * broadcast);
  // The keys round-trip; send/recv has no scale, and a scale must be > 0 and spelt right.
  const strategy::HardwareProfile p = strategy::load_hardware_profile("p.yaml", directory_);
  EXPECT_DOUBLE_EQ(p.collective_cost_scale.of(strategy::CollectiveKind::AllGather), 3.0);
  EXPECT_DOUBLE_EQ(p.collective_cost_scale.of(strategy::CollectiveKind::SendRecv), 1.0);
  const strategy::HardwareProfile back =
      strategy::parse_hardware_profile(strategy::hardware_profile_to_yaml(p), "written", "cluster.gpu");
  for (const auto& [kind, key] : strategy::HardwareProfile::CollectiveCostScale::scaled_kinds())
    EXPECT_DOUBLE_EQ(back.collective_cost_scale.of(kind), p.collective_cost_scale.of(kind)) << key;
  for (const char* bad : {"  collective_cost_scale: {all_reduce: 0}\n", "  collective_cost_scale: {send_recv: 2}\n"}) {
    try {
      strategy::parse_hardware_profile(std::string(kProfile) + bad, "x", "cluster.gpu");
      ADD_FAILURE() << bad;
    } catch (const strategy::ScenarioError& error) {
      EXPECT_NE(std::string(error.what()).find("collective_cost_scale"), std::string::npos) << error.what();
    }
  }
}

// The engine's cpu backend advances collectives only inside MPI calls, which its runner makes
// between ops and while it waits: on the twin of the cpu backend a rank's collectives never run
// beside its compute (pipeline sends and receives may). On a GPU profile the same TP program
// overlaps its backward all-reduces with the weight-gradient GEMMs.
TEST_F(Mechanisms, OnTheCpuBackendARanksCollectivesNeverRunBesideItsCompute) {
  auto overlap_per_rank = [&](const std::string& gpu, const std::string& layout) {
    const std::string yaml = "name: t\nmodel: {layers: 2, hidden: 128, heads: 4, vocab: 256, seq_len: 64}\n"
                             "cluster: {gpu: " + gpu + ", nodes: 1, gpus_per_node: 2}\n"
                             "strategy: {" + layout + ", micro_batch: 2, global_batch: 8, precision: fp32}\n";
    sim::SimulationOptions options;
    options.fold = false;
    const sim::SimulationResult result = sim::run_simulation_in_child(scenario(yaml), options);
    EXPECT_TRUE(result.ok) << result.error;
    double overlap = 0;  // seconds a rank computes while one of its collectives runs
    for (const report::TraceRecord& c : result.trace) {
      if (c.stream != strategy::Stream::Compute || c.end_s <= c.start_s) continue;
      for (const report::TraceRecord& m : result.trace) {
        if (m.rank != c.rank || m.stream == strategy::Stream::Compute) continue;
        if (m.code == strategy::OpCode::PpSendActivation || m.code == strategy::OpCode::PpRecvActivation ||
            m.code == strategy::OpCode::PpSendGradient || m.code == strategy::OpCode::PpRecvGradient)
          continue;
        overlap += std::max(0.0, std::min(c.end_s, m.end_s) - std::max(c.start_s, m.start_s));
      }
    }
    return overlap;
  };
  EXPECT_LT(overlap_per_rank("cpu", "tp: 2, pp: 1, dp: 1"), 1e-12);
  EXPECT_LT(overlap_per_rank("cpu", "tp: 1, pp: 2, dp: 1"), 1e-12);
  EXPECT_LT(overlap_per_rank("cpu", "tp: 1, pp: 1, dp: 2"), 1e-12);
  EXPECT_GT(overlap_per_rank("p.yaml", "tp: 2, pp: 1, dp: 1"), 1e-7);
}

// The engine runs a rank's program in order on one thread, and Open MPI moves a rendezvous
// message (above 4 KiB) only inside MPI calls of both ranks. So on the cpu backend a receive
// posted while its sender computes ends when the sender's compute op ends (the sender's next MPI
// call), measured: 13 us after a 400 us GEMM on the sending rank. GPU profiles do not wait.
TEST_F(Mechanisms, OnTheCpuBackendAPipelineMessageMovesAtTheSendersNextOpBoundary) {
  auto waits = [&](const std::string& gpu, const std::string& schedule) {
    const std::string yaml = "name: t\nmodel: {layers: 4, hidden: 192, heads: 6, vocab: 256, seq_len: 64}\n"
                             "cluster: {gpu: " + gpu + ", nodes: 1, gpus_per_node: 2}\n"
                             "strategy: {tp: 1, pp: 2, dp: 1, micro_batch: 2, global_batch: 8, precision: fp32, "
                             "schedule: " + schedule + "}\n";
    sim::SimulationOptions options;
    options.fold = false;
    const sim::SimulationResult result = sim::run_simulation_in_child(scenario(yaml), options);
    EXPECT_TRUE(result.ok) << result.error;
    // Receives whose message was sent before they were posted, posted while the sender computed:
    // how many ended only when the sender's compute op did.
    int late = 0, cases = 0;
    for (const report::TraceRecord& receive : result.trace) {
      const bool activation = receive.code == strategy::OpCode::PpRecvActivation;
      if (!activation && receive.code != strategy::OpCode::PpRecvGradient) continue;
      const auto send_code = activation ? strategy::OpCode::PpSendActivation : strategy::OpCode::PpSendGradient;
      bool sent_before = false;
      for (const report::TraceRecord& send : result.trace)
        sent_before = sent_before || (send.code == send_code && send.rank != receive.rank &&
                                      send.micro_batch == receive.micro_batch && send.start_s < receive.start_s);
      if (!sent_before) continue;
      for (const report::TraceRecord& op : result.trace) {
        if (op.rank == receive.rank || op.stream != strategy::Stream::Compute) continue;
        if (!(op.start_s <= receive.start_s && receive.start_s < op.end_s - 1e-9)) continue;
        ++cases;
        late += receive.end_s >= op.end_s - 1e-12;
      }
    }
    EXPECT_GT(cases, 0) << schedule;
    return late == cases ? cases : -late;
  };
  // Every such receive waits on the cpu backend (1F1B: the activations of micro-batches 1-3).
  EXPECT_GE(waits("cpu", "1f1b"), 3);
  EXPECT_GE(waits("cpu", "gpipe"), 1);
  // None does on a GPU profile: the message is on its way as soon as it is sent.
  EXPECT_EQ(waits("p.yaml", "1f1b"), 0);
}

// A pipeline's activation send between stages on two nodes obeys the same cap: with PP 2 over 2
// nodes and one micro-batch, the step grows by the two sends' (forward activation, backward
// gradient) extra time over the cap.
TEST_F(Mechanisms, PipelineSendsBetweenNodesAreCappedAtTheP2pBandwidth) {
  const std::string yaml =
      "name: t\nmodel: {layers: 2, hidden: 1024, heads: 8, vocab: 1024, seq_len: 1024}\n"
      "cluster: {gpu: p.yaml, nodes: 2, gpus_per_node: 1, fabric: {topology: star, switch_latency: 0us}}\n"
      "strategy: {tp: 1, pp: 2, dp: 1, micro_batch: 1, global_batch: 1, precision: bf16}\n";
  const sim::SimulationResult free = sim::run_simulation_in_child(scenario(yaml), sim::SimulationOptions{});
  ASSERT_TRUE(free.ok) << free.error;
  std::ofstream(directory_ / "p.yaml", std::ios::app) << "  p2p_bandwidth: 1GB/s\n";
  const sim::SimulationResult capped = sim::run_simulation_in_child(scenario(yaml), sim::SimulationOptions{});
  ASSERT_TRUE(capped.ok) << capped.error;
  // One activation of 1024 tokens x 1024 x 2 bytes each way: over 100 GB/s NICs (+9 us) free,
  // over 1 GB/s capped.
  const double bytes = 1024.0 * 1024 * 2;
  const double extra = 2 * (bytes / 1e9 - (bytes / 100e9 + 9e-6));
  EXPECT_NEAR(capped.step_time_s - free.step_time_s, extra, 0.02 * extra);
}

TEST_F(Mechanisms, TreeIsCappedAtTheTreeBandwidthScaledByNcclsPerNodeCountTable) {
  // NCCL's tuner: tree busbw <= nChannels x perChMaxTreeBw, Ampere 24.0 / 23.6 / 17.8 GB/s per
  // channel on 1 / 2 / 3+ nodes (NCCL 2.12-2.28). node.tree_bandwidth is the 3+ node cap; the time is then the bus bytes
  // (2(n-1)/n S) over the cap, plus the latencies, whenever that is slower than the links.
  std::ofstream(directory_ / "p.yaml", std::ios::app) << "  tree_bandwidth: 20GB/s\n";
  const double size = 64.0 * (1 << 20);
  for (const auto& [nodes, latency, scale] : std::vector<std::tuple<int, double, double>>{
           {4, 1e-6 + 2 * 18e-6 + 1e-6 + 20e-6, 1.0}, {2, 1e-6 + 2 * 9e-6 + 1e-6 + 20e-6, 23.6 / 17.8}}) {
    const auto s = scenario("name: t\ncluster: {gpu: p.yaml, nodes: " + std::to_string(nodes) +
                            ", gpus_per_node: 2, fabric: {topology: star, switch_latency: 0us}}\n"
                            "collective: {kind: all-reduce, sizes: [64MiB], algorithm: tree}\n");
    const sim::ClusterTopology topology(s.cluster);
    const int n = 2 * nodes;
    const double expected = 2.0 * (n - 1) / n * size / (20e9 * scale) + latency;
    EXPECT_NEAR(tree_estimate(topology, n, size), expected, 1e-9) << nodes << " nodes";
    const sim::SimulationResult result = sim::run_simulation_in_child(s, sim::SimulationOptions{});
    ASSERT_TRUE(result.ok) << result.error;
    EXPECT_NEAR(result.collective_rows[0].time_s, expected, 0.01 * expected) << nodes << " nodes";
  }
  EXPECT_DOUBLE_EQ(sim::tree_bandwidth_scale(1), 24.0 / 17.8);
  EXPECT_DOUBLE_EQ(sim::tree_bandwidth_scale(16), 1.0);
  const strategy::HardwareProfile p = strategy::load_hardware_profile("p.yaml", directory_);
  EXPECT_DOUBLE_EQ(p.tree_bandwidth_bytes_per_s, 20e9);
  const strategy::HardwareProfile back =
      strategy::parse_hardware_profile(strategy::hardware_profile_to_yaml(p), "written", "cluster.gpu");
  EXPECT_DOUBLE_EQ(back.tree_bandwidth_bytes_per_s, 20e9);
}

TEST_F(Mechanisms, NonGemmArithmeticRunsAtTheVectorEfficiency) {
  const strategy::HardwareProfile p = strategy::load_hardware_profile("p.yaml", directory_);
  const sim::ComputeCostModel model(p, strategy::Precision::Fp32);
  strategy::Op gelu;
  gelu.type = strategy::OpType::Compute;
  gelu.compute_kind = strategy::ComputeKind::Elementwise;
  gelu.flops = 1e9;
  gelu.bytes = 1e3;
  EXPECT_NEAR(model.op_time(gelu), 1e9 / (100e12 * 0.25), 1e-15);
  // GEMMs keep the full peak.
  EXPECT_NEAR(model.gemm_time({1000, 1000, 1000, 1}, 0), 2e9 / 100e12, 1e-15);
}

TEST_F(Mechanisms, SmallOpsRunOnFewerThreadsBelowTheParallelGrain) {
  strategy::HardwareProfile cpu = strategy::load_hardware_profile("cpu", ".");
  cpu.kernel_overhead_s = 0;
  cpu.cores = 4;
  cpu.parallel_grain_flops = 1e6;
  cpu.all_core_compute_efficiency = cpu.all_core_memory_efficiency = 1.0;  // cores scale perfectly here
  cpu.vector_efficiency = 1.0;  // arithmetic at the fp32 peak
  const sim::ComputeCostModel two_threads(cpu, strategy::Precision::Fp32, 2, 1);
  const double per_core = cpu.memory_bandwidth_bytes_per_s * cpu.memory_efficiency;
  strategy::Op op;
  op.type = strategy::OpType::Compute;
  op.compute_kind = strategy::ComputeKind::Elementwise;
  op.bytes = 1e6;
  op.flops = 5e5;  // below the grain: one thread
  EXPECT_EQ(two_threads.threads_for(op.flops), 1);
  EXPECT_NEAR(two_threads.op_time(op), 1e6 / per_core, 1e-12);
  op.flops = 5e6;  // 5 grains: both threads
  EXPECT_EQ(two_threads.threads_for(op.flops), 2);
  EXPECT_NEAR(two_threads.op_time(op), std::max(1e6 / (2 * per_core), 5e6 / (2 * cpu.peak_flops_fp32)), 1e-12);
  // Without a grain every op uses every thread (the previous behaviour).
  cpu.parallel_grain_flops = 0;
  const sim::ComputeCostModel all(cpu, strategy::Precision::Fp32, 2, 1);
  op.flops = 5e5;
  EXPECT_EQ(all.threads_for(op.flops), 2);
  EXPECT_NEAR(all.op_time(op), 1e6 / (2 * per_core), 1e-12);
}

}  // namespace
