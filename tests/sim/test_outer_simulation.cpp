// Outer methods over a wide-area link, simulated (each in a child process): one sync's exchange
// against the ring's closed form on an idealised network, the average step against the inner
// step plus the exposed sync over its period, the WAN bytes against the plan's byte counts, and
// folding against --no-fold with NoLoCo's site-crossing groups.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "sim/simulation.hpp"
#include "tests/sim/ideal_profile.hpp"
#include "strategy/model_formulas.hpp"
#include "strategy/outer.hpp"
#include "strategy/scenario.hpp"

namespace {

using namespace tandem;
namespace fs = std::filesystem;

using sim::testing::kIdealProfile;

constexpr double kWanBytesPerSecond = 1e9;  // 8Gbps
constexpr double kWanLatency = 0.01;        // 10ms

class OuterSimulationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = fs::temp_directory_path() / ("tandem-outer-sim-test-" + std::to_string(::getpid()));
    fs::create_directories(directory_);
    std::ofstream(directory_ / "ideal.yaml") << kIdealProfile;
  }
  void TearDown() override { fs::remove_all(directory_); }

  // `nodes` single-GPU nodes, split evenly into two sites on an ideal star.
  strategy::Scenario scenario(int nodes, const std::string& outer, const std::string& extra_strategy = "") {
    const std::string yaml =
        "name: wan\nmodel: {layers: 4, hidden: 512, heads: 8, vocab: 1024, seq_len: 128}\n"
        "cluster:\n  gpu: ideal.yaml\n  nodes: " + std::to_string(nodes) +
        "\n  gpus_per_node: 1\n  fabric: {topology: star, switch_latency: 0us}\n"
        "  sites: [{nodes: " + std::to_string(nodes / 2) + "}, {nodes: " + std::to_string(nodes - nodes / 2) +
        "}]\n  wan: {bandwidth: 8Gbps, latency: 10ms}\n"
        "strategy: {tp: 1, pp: 1, dp: auto, micro_batch: 4, precision: fp32" + extra_strategy +
        (outer.empty() ? std::string() : ", outer: " + outer) + "}\n";
    return strategy::parse_scenario(yaml, directory_);
  }

  sim::SimulationResult simulate(const strategy::Scenario& s, bool fold = true) {
    sim::SimulationOptions options;
    options.fold = fold;
    options.record_trace = false;
    sim::SimulationResult result = sim::run_simulation_in_child(s, options);
    EXPECT_TRUE(result.ok) << result.error;
    return result;
  }

  static double parameters(const strategy::Scenario& s) {
    double total = 0;
    for (const auto& tensor : strategy::parameter_tensors(*s.model, 1)) total += static_cast<double>(tensor.elements());
    return total;
  }

  fs::path directory_;
};

TEST_F(OuterSimulationTest, DilocoSyncIsTheRingOverTheWanAndCostsOneHthPerStep) {
  const auto s = scenario(2, "{method: diloco, inner_steps: 10}");
  const auto r = simulate(s);
  const double bytes = 4 * parameters(s);  // fp32 pseudo-gradients
  // Two workers, one per site: a ring all-reduce is 2 steps of S/2 over the WAN (each direction),
  // each paying the WAN latency.
  EXPECT_NEAR(r.outer.exchange_s, bytes / kWanBytesPerSecond + 2 * kWanLatency, 1e-6 * r.outer.exchange_s);
  EXPECT_EQ(r.outer.period, 10);
  EXPECT_EQ(r.outer.overlap_steps, 0);
  EXPECT_GT(r.outer.update_s, 0);
  EXPECT_NEAR(r.outer.exposed_s, r.outer.exchange_s + r.outer.update_s, 1e-9);
  EXPECT_NEAR(r.step_time_s, r.outer.inner_step_s + r.outer.exposed_s / 10, 1e-12);
  EXPECT_NEAR(r.breakdown.total(), r.step_time_s, 1e-9 * r.step_time_s);
  EXPECT_NEAR(r.breakdown.outer_sync, r.outer.exposed_s / 10, 1e-12);
  // The inner step is one worker training alone.
  const auto alone = simulate(strategy::parse_scenario(
      "name: one\nmodel: {layers: 4, hidden: 512, heads: 8, vocab: 1024, seq_len: 128}\n"
      "cluster: {gpu: ideal.yaml, nodes: 1, gpus_per_node: 1}\n"
      "strategy: {tp: 1, pp: 1, dp: 1, micro_batch: 4, precision: fp32}\n",
      directory_));
  EXPECT_NEAR(r.outer.inner_step_s, alone.step_time_s, 1e-9 * alone.step_time_s);
  // WAN: S each way per sync, nothing in the inner step.
  ASSERT_TRUE(r.wan.present);
  EXPECT_DOUBLE_EQ(r.wan.inner_bytes_per_step, 0);
  EXPECT_NEAR(r.wan.sync_bytes, 2 * bytes, 1e-6 * bytes);
  EXPECT_NEAR(r.wan.sync_busiest_link_bytes, bytes, 1e-6 * bytes);
  EXPECT_NEAR(r.wan.bytes_per_step, 2 * bytes / 10, 1e-6 * bytes);
  const double window = r.breakdown.compute + r.breakdown.optimizer + r.breakdown.bubble;
  EXPECT_NEAR(r.wan.peak_bandwidth_bytes_per_s, bytes / window, 1e-6 * bytes / window);
}

TEST_F(OuterSimulationTest, SynchronousDataParallelismCrossesTheWanEveryStep) {
  const auto s = scenario(2, "");
  const auto r = simulate(s);
  EXPECT_FALSE(r.outer.present);
  const double gradient_bytes = 4 * parameters(s);  // fp32 gradients, every bucket all-reduced
  EXPECT_NEAR(r.wan.inner_bytes_per_step, 2 * gradient_bytes, 1e-6 * gradient_bytes);
  EXPECT_NEAR(r.wan.bytes_per_step, 2 * gradient_bytes, 1e-6 * gradient_bytes);
  EXPECT_GT(r.breakdown.exposed_dp_comm, 0);
  // DiLoCo with H = 10 moves a tenth of it.
  const auto diloco = simulate(scenario(2, "{method: diloco, inner_steps: 10}"));
  EXPECT_NEAR(diloco.wan.bytes_per_step, r.wan.bytes_per_step / 10, 1e-6 * r.wan.bytes_per_step);
  EXPECT_LT(diloco.step_time_s, r.step_time_s);
}

TEST_F(OuterSimulationTest, StreamingOverlapsAQuantizedFragmentWithDelaySteps) {
  const auto s = scenario(2, "{method: streaming-diloco, inner_steps: 8, fragments: 2, delay: 1, quantize: int4}");
  const auto r = simulate(s);
  const double fragment = std::ceil(parameters(s) / 2);
  const double bytes = strategy::quantized_bytes(fragment, strategy::OuterQuantization::Int4);
  EXPECT_NEAR(r.outer.exchange_s, bytes / kWanBytesPerSecond + 2 * kWanLatency, 1e-6 * r.outer.exchange_s);
  EXPECT_EQ(r.outer.period, 4);
  EXPECT_EQ(r.outer.overlap_steps, 1);
  // It started with the step and may take one inner step before its update waits for it.
  EXPECT_NEAR(r.outer.exposed_s, std::max(0.0, r.outer.exchange_s - r.outer.inner_step_s) + r.outer.update_s, 1e-9);
  EXPECT_NEAR(r.step_time_s, r.outer.inner_step_s + r.outer.exposed_s / 4, 1e-12);
  EXPECT_NEAR(r.wan.bytes_per_step, 2 * bytes / 4, 1e-6 * bytes);
  // Peak: one fragment within one inner step's compute; DiLoCo (fp32, everything) needs 16x.
  const auto diloco = simulate(scenario(2, "{method: diloco, inner_steps: 8}"));
  EXPECT_NEAR(diloco.wan.peak_bandwidth_bytes_per_s / r.wan.peak_bandwidth_bytes_per_s,
              4 * parameters(s) / bytes, 1e-3 * 4 * parameters(s) / bytes);
}

TEST_F(OuterSimulationTest, NolocoFoldedEqualsUnfoldedAcrossSites) {
  // 8 workers, 4 per site, pairs from the seeded permutation: some pairs cross the WAN.
  const auto s = scenario(8, "{method: noloco, inner_steps: 5}");
  const auto folded = simulate(s, true);
  const auto unfolded = simulate(s, false);
  EXPECT_EQ(unfolded.statistics.simulated_ranks, 8u);
  EXPECT_NEAR(folded.step_time_s, unfolded.step_time_s, 1e-6 * unfolded.step_time_s);
  EXPECT_NEAR(folded.outer.exchange_s, unfolded.outer.exchange_s, 1e-6 * unfolded.outer.exchange_s);
  EXPECT_NEAR(folded.wan.sync_bytes, unfolded.wan.sync_bytes, 1e-9 * unfolded.wan.sync_bytes);
  // Every pair that crosses the sites sends its fp32 parameters each way over the WAN, all of
  // them at once on the two WAN links.
  const auto groups = strategy::noloco_groups(s.training.seed, 0, 8, 2);
  int crossing = 0;
  for (int g = 0; g < 4; ++g) {
    int sites = 0;
    for (int worker = 0; worker < 8; ++worker)
      if (groups[static_cast<std::size_t>(worker)] == g) sites += worker < 4 ? 1 : 10;
    crossing += sites == 11;
  }
  const double bytes = 4 * parameters(s);
  EXPECT_NEAR(folded.wan.sync_bytes, 2 * crossing * bytes, 1e-6 * bytes);
  if (crossing > 0) {
    EXPECT_NEAR(folded.outer.exchange_s, crossing * bytes / kWanBytesPerSecond + 2 * kWanLatency,
                1e-6 * folded.outer.exchange_s);
  }
}

}  // namespace
