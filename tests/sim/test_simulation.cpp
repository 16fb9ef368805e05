// Whole simulations (each in a child process, as simrun runs them): collective what-ifs against
// the nccl-tests bus-bandwidth factors, pipeline bubbles against (p-1)/m, the breakdown, folding
// against --no-fold, heterogeneous NICs.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "sim/simulation.hpp"
#include "tests/sim/ideal_profile.hpp"
#include "strategy/scenario.hpp"

namespace {

using namespace tandem;
namespace fs = std::filesystem;

using sim::testing::kIdealProfile;

class SimulationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = fs::temp_directory_path() / ("tandem-sim-test-" + std::to_string(::getpid()));
    fs::create_directories(directory_);
    std::ofstream(directory_ / "ideal.yaml") << kIdealProfile;
  }
  void TearDown() override { fs::remove_all(directory_); }

  strategy::Scenario scenario(const std::string& yaml) { return strategy::parse_scenario(yaml, directory_); }

  sim::SimulationResult simulate(const strategy::Scenario& s, bool fold = true) {
    sim::SimulationOptions options;
    options.fold = fold;
    sim::SimulationResult result = sim::run_simulation_in_child(s, options);
    EXPECT_TRUE(result.ok) << result.error;
    return result;
  }

  fs::path directory_;
};

TEST_F(SimulationTest, RingBusBandwidthEqualsTheLinkOnAnIdealStar) {
  // 16 single-GPU nodes on one ideal switch: every ring step moves S/n over each 100 GB/s NIC, so
  // nccl-tests' busbw (algbw times 2(n-1)/n or (n-1)/n) must be the link bandwidth.
  for (const char* kind : {"all-reduce", "all-gather", "reduce-scatter"}) {
    const auto s = scenario(std::string("name: ring\ncluster: {gpu: ideal.yaml, nodes: 16, gpus_per_node: 1, "
                                        "fabric: {topology: star, switch_latency: 0us}}\n"
                                        "collective: {kind: ") + kind + ", sizes: [1GiB], algorithm: ring}\n");
    const auto result = simulate(s);
    ASSERT_EQ(result.collective_rows.size(), 1u);
    EXPECT_NEAR(result.collective_rows[0].busbw_bytes_per_s / 1e9, 100.0, 0.01) << kind;
    EXPECT_EQ(result.collective_rows[0].algorithm, strategy::CollectiveAlgorithm::Ring);
  }
}

TEST_F(SimulationTest, EightA100AllReduceMatchesPublishedBusBandwidth) {
  // PUBLISHED.md: 8 x A100 on NVLink reach ~230 GB/s all-reduce busbw with large messages (the
  // Azure nccl-tests log in shared/data measures 231 GB/s at 1 GiB).
  const auto s = scenario("name: nvlink\ncluster: {gpu: a100-80gb, nodes: 1, gpus_per_node: 8}\n"
                          "collective: {kind: all-reduce, sizes: [1GiB], algorithm: ring}\n");
  const auto result = simulate(s);
  EXPECT_NEAR(result.collective_rows[0].busbw_bytes_per_s / 1e9, 230, 0.06 * 230);
}

TEST_F(SimulationTest, AzureAllReduceLogsAreReproduced) {
  // shared/data/nccl-tests-a100-azure: measured all-reduce busbw on 8-128 A100-40GB (Azure ND A100
  // v4, one 200 Gb/s NIC per GPU). The a100-40gb profile's network numbers come from these logs
  // (NVLink from 8 GPUs, NIC efficiency from 16-128 GPUs at 1 GiB); every size >= 256 MiB must
  // come out within 12 %.
  const fs::path summary = fs::path(TANDEM_SHARED_DATA_DIR) / "data" / "nccl-tests-a100-azure" / "SUMMARY.csv";
  if (!fs::exists(summary)) GTEST_SKIP() << "no " << summary << " (shared data absent, e.g. a fresh clone)";
  std::map<int, std::map<double, double>> measured;  // gpus -> size -> busbw GB/s
  std::ifstream in(summary);
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::stringstream fields(line);
    std::vector<std::string> f;
    for (std::string field; std::getline(fields, field, ',');) f.push_back(field);
    if (f.size() < 7 || f[1] != "all_reduce") continue;
    const int gpus = std::stoi(f[2]);
    const double size = std::stod(f[3]);
    if (gpus >= 8 && size >= 256.0 * (1 << 20)) measured[gpus][size] = std::stod(f[6]);
  }
  ASSERT_FALSE(measured.empty());
  for (const auto& [gpus, sizes] : measured) {
    std::string list;
    for (const auto& [size, busbw] : sizes) list += (list.empty() ? "" : ", ") + std::to_string(static_cast<long long>(size)) + "B";
    const auto s = scenario("name: azure\ncluster: {gpu: a100-40gb, nodes: " + std::to_string(gpus / 8) +
                            ", gpus_per_node: 8}\ncollective: {kind: all-reduce, sizes: [" + list + "]}\n");
    const auto result = simulate(s);
    ASSERT_EQ(result.collective_rows.size(), sizes.size());
    std::size_t i = 0;
    for (const auto& [size, busbw] : sizes) {
      EXPECT_NEAR(result.collective_rows[i].busbw_bytes_per_s / 1e9, busbw, 0.12 * busbw)
          << gpus << " GPUs, " << size << " B";
      ++i;
    }
  }
}

TEST_F(SimulationTest, AutoPicksTheFastestCandidate) {
  const auto s = scenario(
      "name: auto\ncluster: {gpu: h100-80gb, nodes: 4, gpus_per_node: 8}\n"
      "collective: {kind: all-reduce, sizes: [1MiB, 1GiB], algorithm: auto}\n");
  const auto result = simulate(s);
  for (const auto& row : result.collective_rows) {
    ASSERT_GT(row.candidates.size(), 1u);
    for (const auto& candidate : row.candidates) EXPECT_LE(row.time_s, candidate.time_s);
    EXPECT_NEAR(row.busbw_bytes_per_s, row.size_bytes / row.time_s * 2 * 31 / 32, 1e-6 * row.busbw_bytes_per_s);
  }
}

std::string pipeline_yaml(const std::string& schedule, int virtual_stages, int micro_batches) {
  // Identical layers; a 2-token vocabulary makes the embedding and the head negligible.
  return "name: pipe\nmodel: {layers: 16, hidden: 512, heads: 8, vocab: 2, seq_len: 256}\n"
         "cluster: {gpu: ideal.yaml, nodes: 4, gpus_per_node: 1, fabric: {topology: star, switch_latency: 0us},"
         " nic: {count: 1, bandwidth: 100000GB/s}}\n"
         "strategy: {tp: 1, pp: 4, dp: 1, micro_batch: 1, global_batch: " +
         std::to_string(micro_batches) + ", schedule: " + schedule + ", virtual_stages: " +
         std::to_string(virtual_stages) + ", recompute: none, precision: bf16}\ntraining: {grad_clip: 0}\n";
}

TEST_F(SimulationTest, PipelineBubbleMatchesTheory) {
  // Pure compute, free communication: the critical stage idles (p-1) micro-batch slots, i.e.
  // bubble / compute = (p-1)/m for 1F1B and GPipe and (p-1)/(v m) interleaved.
  struct Case {
    const char* schedule;
    int v;
    int m;
  };
  for (const Case& c : {Case{"1f1b", 1, 8}, Case{"gpipe", 1, 8}, Case{"1f1b", 1, 16}, Case{"interleaved", 2, 8}}) {
    const auto result = simulate(scenario(pipeline_yaml(c.schedule, c.v, c.m)));
    const double expected = 3.0 / (c.v * c.m);
    EXPECT_NEAR(result.breakdown.bubble / result.breakdown.compute, expected, 0.05 * expected)
        << c.schedule << " m=" << c.m;
  }
}

TEST_F(SimulationTest, BreakdownSumsToTheStepTimeOnEveryExample) {
  for (const std::string name : {"default", "gpt3-175b-selene", "heterogeneous-nic", "tiny-cpu"}) {
    const auto result = simulate(strategy::load_builtin_scenario(name));
    EXPECT_GT(result.step_time_s, 0) << name;
    EXPECT_NEAR(result.breakdown.total(), result.step_time_s, 1e-9 * result.step_time_s) << name;
    EXPECT_GE(result.breakdown.bubble, 0);
    EXPECT_GE(result.breakdown.exposed_tp_comm, 0);
  }
}

TEST_F(SimulationTest, FoldedEqualsUnfolded) {
  // TP 2 x PP 2 x DP 4 on 16 GPUs: tensor groups inside nodes, data-parallel rings across them.
  const auto s = scenario(
      "name: fold\nmodel: {layers: 8, hidden: 1024, heads: 16, vocab: 32000, seq_len: 512}\n"
      "cluster: {gpu: a100-80gb, nodes: 2, gpus_per_node: 8}\n"
      "strategy: {tp: 2, pp: 2, dp: auto, micro_batch: 2, global_batch: 32, sequence_parallel: true, zero: 1}\n");
  const auto folded = simulate(s, true);
  const auto unfolded = simulate(s, false);
  EXPECT_LT(folded.statistics.simulated_ranks, unfolded.statistics.simulated_ranks);
  EXPECT_EQ(unfolded.statistics.simulated_ranks, 16u);
  EXPECT_NEAR(folded.step_time_s, unfolded.step_time_s, 0.01 * unfolded.step_time_s);
}

TEST_F(SimulationTest, SlowNicsSlowDataParallelism) {
  const std::string base =
      "name: nic\nmodel: {layers: 8, hidden: 2048, heads: 16, vocab: 32000, seq_len: 1024}\n"
      "cluster:\n  gpu: a100-80gb\n  nodes: 4\n  gpus_per_node: 8\n  nic: {count: 8, bandwidth: 200Gbps}\n";
  const std::string strategy =
      "strategy: {tp: 8, pp: 1, dp: auto, micro_batch: 1, global_batch: 8, overlap_grad_reduce: false}\n";
  const auto fast = simulate(scenario(base + strategy));
  const auto slow = simulate(scenario(base + "  node_groups:\n    - {nodes: 2}\n"
                                             "    - {nodes: 2, nic: {count: 1, bandwidth: 100Gbps}}\n" + strategy));
  EXPECT_GT(slow.breakdown.exposed_dp_comm, 4 * fast.breakdown.exposed_dp_comm);
  EXPECT_GT(slow.step_time_s, fast.step_time_s);
  EXPECT_EQ(slow.classes.size(), 2u);  // one class per node group
}

// Without Megatron-LM's overlap of the input-gradient reduction with the weight-gradient GEMM
// (its code before September 2021), every such reduction is on the critical path: the step grows
// by their summed durations, which the overlap hid behind GEMMs longer than they are (h = 8192,
// s = 2048: a QKV weight-gradient GEMM of ~0.43 ms per rank beside a ~0.33 ms all-reduce of
// 33.5 MB over 8 A100s; at h = 4096 the GEMMs are shorter than the all-reduces).
TEST_F(SimulationTest, UnoverlappedInputGradientReductionsAddTheirTimeToTheStep) {
  const std::string base =
      "name: tp\nmodel: {layers: 4, hidden: 8192, heads: 64, vocab: 32000, seq_len: 2048}\n"
      "cluster: {gpu: a100-80gb, nodes: 1, gpus_per_node: 8}\n"
      "strategy: {tp: 8, pp: 1, dp: 1, micro_batch: 1, global_batch: 1, recompute: none, overlap_tp_input_grad: ";
  const auto overlapped = simulate(scenario(base + "true}\n"));
  const auto exposed = simulate(scenario(base + "false}\n"));
  double reductions = 0;
  int count = 0;
  for (const auto& record : exposed.trace) {
    if (record.rank != 0) continue;
    if (record.code == strategy::OpCode::TpMlpInputBackward || record.code == strategy::OpCode::TpAttentionInputBackward ||
        record.code == strategy::OpCode::TpLmHeadInputBackward) {
      reductions += record.end_s - record.start_s;
      ++count;
    }
  }
  EXPECT_EQ(count, 2 * 4 + 1);
  EXPECT_GT(reductions, 0);
  EXPECT_NEAR(exposed.step_time_s - overlapped.step_time_s, reductions, 0.02 * reductions);
  EXPECT_NEAR(exposed.breakdown.exposed_tp_comm - overlapped.breakdown.exposed_tp_comm, reductions, 0.02 * reductions);
}

TEST_F(SimulationTest, TraceHasEveryOpOfEverySimulatedRank) {
  const auto s = strategy::load_builtin_scenario("default");
  const auto result = simulate(s);
  std::size_t ops = 0;
  const auto program = strategy::build_program(s);
  for (const auto& rank_class : program.classes) ops += program.ops_of_class(rank_class.id).size();
  EXPECT_EQ(result.trace.size(), ops);
  for (const auto& record : result.trace) {
    EXPECT_LE(record.start_s, record.end_s);
    EXPECT_LE(record.end_s, result.step_time_s + 1e-12);
  }
}

TEST_F(SimulationTest, ResultJsonRoundTrips) {
  const auto result = simulate(strategy::load_builtin_scenario("default"));
  const auto json = sim::result_to_json(result);
  for (const char* key : {"step_time_s", "tokens_per_s", "mfu", "model_tflops_per_gpu", "hardware_tflops_per_gpu",
                          "gpus", "memory", "breakdown_s", "days", "gpu_hours"})
    EXPECT_TRUE(json.contains(key)) << key;
  const auto back = sim::result_from_json(json);
  EXPECT_DOUBLE_EQ(back.step_time_s, result.step_time_s);
  EXPECT_DOUBLE_EQ(back.breakdown.bubble, result.breakdown.bubble);
  EXPECT_EQ(back.memory.fits, result.memory.fits);
}

TEST_F(SimulationTest, CrashedOrCancelledChildIsAnErrorNotAHang) {
  sim::CancelToken cancel;
  cancel.cancel();
  const auto result = sim::run_simulation_in_child(strategy::load_builtin_scenario("gpt3-175b-selene"), {}, {}, &cancel);
  EXPECT_FALSE(result.ok);
  EXPECT_NE(result.error.find("cancelled"), std::string::npos);
}

TEST_F(SimulationTest, SweepReportsInfeasiblePointsWithTheirReason) {
  auto s = strategy::load_builtin_scenario("default");
  std::vector<strategy::SweepAxis> axes{strategy::parse_sweep_argument("strategy.tp=2,3")};
  sim::SweepOptions options;
  options.jobs = 2;
  const auto results = sim::run_sweep(s, axes, options);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_TRUE(results[0].feasible) << results[0].reason;
  EXPECT_FALSE(results[1].feasible);
  EXPECT_NE(results[1].reason.find("strategy."), std::string::npos) << results[1].reason;
  const auto* best = sim::best_sweep_result(results);
  ASSERT_NE(best, nullptr);
  const YAML::Node document = sim::best_scenario_document(*best);
  EXPECT_FALSE(document["sweep"]);
  EXPECT_EQ(document["strategy"]["dp"].as<int>(), 8);
  EXPECT_NEAR(document["predicted"]["step_time_s"].as<double>(), best->result.step_time_s, 1e-12);
}

}  // namespace
