// Run under mpirun with 4 ranks (tests/engine_outer/CMakeLists.txt); every rank is one worker.
//   - NoLoCo's groups: every rank computes them alone; all-gathered, they are identical.
//   - MeanExchange: fp32 and quantized (fp8, int4) means of the ranks' vectors, identical on every
//     rank, within the quantizers' stated bounds of the float64 mean.
//   - DiLoCo, NoLoCo and Streaming DiLoCo syncs: every rank gathers every rank's local
//     parameters and checks its own result against a float64 evaluation of the formula.
// Exit code 0 when every check passed on every rank.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "comm/mpi_communicator.hpp"
#include "engine/outer/exchange.hpp"
#include "engine/outer/synchronizer.hpp"
#include "strategy/outer.hpp"
#include "strategy/scenario.hpp"

namespace {

using namespace tandem;
using strategy::OuterQuantization;

int failures = 0;

void check(bool ok, const std::string& what) {
  if (!ok) {
    ++failures;
    std::fprintf(stderr, "FAILED: %s\n", what.c_str());
  }
}

std::vector<float> random_values(std::size_t n, std::uint64_t seed, double decades) {
  std::mt19937_64 generator(seed);
  std::uniform_real_distribution<double> exponent(-decades, 0.0);
  std::uniform_int_distribution<int> sign(0, 1);
  std::vector<float> values(n);
  for (float& v : values) v = static_cast<float>((sign(generator) ? 1 : -1) * 0.05 * std::pow(10.0, exponent(generator)));
  return values;
}

// Every rank's vector, rank after rank.
std::vector<float> gather(comm::Communicator& world, const std::vector<float>& mine) {
  std::vector<float> all(mine.size() * static_cast<std::size_t>(world.size()));
  world.all_gather(mine.data(), all.data(), mine.size(), comm::DataType::Float32);
  return all;
}

bool identical_everywhere(comm::Communicator& world, std::span<const float> values) {
  std::vector<float> all(values.size() * static_cast<std::size_t>(world.size()));
  world.all_gather(values.data(), all.data(), values.size(), comm::DataType::Float32);
  for (int r = 1; r < world.size(); ++r)
    if (std::memcmp(all.data(), all.data() + static_cast<std::size_t>(r) * values.size(), values.size() * 4) != 0)
      return false;
  return true;
}

void noloco_groups_agree(comm::Communicator& world) {
  for (std::int64_t step = 0; step < 50; ++step) {
    for (int size : {2, 4}) {
      const std::vector<int> mine = strategy::noloco_groups(1234, step, 8, size);
      std::vector<int> all(mine.size() * static_cast<std::size_t>(world.size()));
      world.all_gather(mine.data(), all.data(), mine.size(), comm::DataType::Int32);
      for (int r = 1; r < world.size(); ++r)
        check(std::equal(mine.begin(), mine.end(), all.begin() + r * static_cast<std::ptrdiff_t>(mine.size())),
              "noloco groups of step " + std::to_string(step) + " differ on rank " + std::to_string(r));
    }
  }
}

void mean_exchange(comm::Communicator& world) {
  const std::size_t n = 3000;  // not a multiple of 4 x 256: padded chunks
  const int ranks = world.size();
  const std::vector<float> mine = random_values(n, 500 + static_cast<std::uint64_t>(world.rank()), 4);
  const std::vector<float> all = gather(world, mine);
  std::vector<double> exact(n, 0.0);
  for (int r = 0; r < ranks; ++r)
    for (std::size_t i = 0; i < n; ++i) exact[i] += all[static_cast<std::size_t>(r) * n + i] / ranks;
  for (OuterQuantization q : {OuterQuantization::None, OuterQuantization::Fp8, OuterQuantization::Int4}) {
    const std::string name(strategy::to_string(q));
    engine::outer::MeanExchange exchange(world, q);
    exchange.start(mine);
    const std::span<const float> mean = exchange.finish();
    check(mean.size() == n, name + ": mean size");
    check(identical_everywhere(world, mean), name + ": ranks disagree on the mean");
    for (std::size_t b = 0; b < n; b += 256) {
      const std::size_t end = std::min(n, b + 256);
      // Bound: each rank's block quantized once (its own scale), the mean's block once more.
      double mean_absmax = 0;
      std::vector<double> rank_absmax(static_cast<std::size_t>(ranks), 0.0);
      for (std::size_t i = b; i < end; ++i) {
        mean_absmax = std::max(mean_absmax, std::fabs(exact[i]));
        for (int r = 0; r < ranks; ++r)
          rank_absmax[static_cast<std::size_t>(r)] =
              std::max(rank_absmax[static_cast<std::size_t>(r)], std::fabs(static_cast<double>(all[static_cast<std::size_t>(r) * n + i])));
      }
      for (std::size_t i = b; i < end; ++i) {
        double bound = 1e-6 * (std::fabs(exact[i]) + mean_absmax);
        if (q == OuterQuantization::Fp8) {
          for (int r = 0; r < ranks; ++r) {
            const double x = all[static_cast<std::size_t>(r) * n + i];
            bound += std::max(std::ldexp(std::fabs(x), -4), std::ldexp(rank_absmax[static_cast<std::size_t>(r)] / 448, -10)) / ranks;
          }
          // The re-encoded mean: its block's absmax is within the first error of the exact one.
          bound += std::max(std::ldexp(std::fabs(exact[i]) + bound, -4), std::ldexp((mean_absmax + bound) / 448, -10));
        } else if (q == OuterQuantization::Int4) {
          for (int r = 0; r < ranks; ++r) bound += rank_absmax[static_cast<std::size_t>(r)] / 14 / ranks;
          bound += (mean_absmax + bound) / 14;
        }
        check(std::fabs(mean[i] - exact[i]) <= bound,
              name + ": mean[" + std::to_string(i) + "] = " + std::to_string(mean[i]) + ", float64 " +
                  std::to_string(exact[i]) + ", bound " + std::to_string(bound));
      }
    }
    // Ring-equivalent bytes: 2 (n-1)/n of the encoded size.
    const double expected_bytes =
        q == OuterQuantization::None ? 2.0 * (ranks - 1) / ranks * 4.0 * n : exchange.bytes_sent();
    check(std::fabs(exchange.bytes_sent() - expected_bytes) < 1e-9, name + ": bytes sent");
  }
}

strategy::Scenario four_workers(const std::string& outer) {
  return strategy::parse_scenario(
      "model: {preset: tiny}\ncluster: {gpu: cpu, nodes: 1, gpus_per_node: 4}\n"
      "strategy: {tp: 1, pp: 1, dp: 4, micro_batch: 2, outer: " + outer + "}\n",
      ".");
}

void synchronizers(comm::Communicator& world) {
  const std::size_t n = 2000;
  const int ranks = world.size();
  double clock = 0;
  auto now = [&clock] { return clock += 1e-3; };
  // DiLoCo: mean pseudo-gradient over the four workers, Nesterov.
  {
    const strategy::Scenario s = four_workers("{method: diloco, inner_steps: 2, outer_lr: 0.7, momentum: 0.9}");
    const strategy::Program program = strategy::build_program(s);
    const std::vector<float> initial = random_values(n, 7, 2);  // the same on every rank
    std::vector<float> params = initial;
    engine::outer::OuterSynchronizer sync(s, world, program.layout, initial, program.ops_of_rank(world.rank()), 0, now);
    std::vector<double> global(initial.begin(), initial.end()), momentum(n, 0.0);
    for (std::int64_t step = 1; step <= 4; ++step) {
      const std::vector<float> change = random_values(n, 1000 * static_cast<std::uint64_t>(step) + world.rank(), 2);
      for (std::size_t i = 0; i < n; ++i) params[i] += 0.1f * change[i];
      const std::vector<float> all = gather(world, params);
      sync.after_step(step, params);
      if (step % 2 != 0) continue;
      for (std::size_t i = 0; i < n; ++i) {
        double delta = 0;
        for (int r = 0; r < ranks; ++r)
          delta += static_cast<double>(static_cast<float>(global[i] - all[static_cast<std::size_t>(r) * n + i])) / ranks;
        momentum[i] = 0.9 * momentum[i] + delta;
        global[i] = static_cast<float>(global[i] - 0.7 * (delta + 0.9 * momentum[i]));
      }
      bool ok = true;
      for (std::size_t i = 0; i < n; ++i) ok = ok && std::fabs(params[i] - global[i]) <= 1e-6 * (std::fabs(global[i]) + 1e-2);
      check(ok, "diloco: step " + std::to_string(step) + " differs from the float64 formula");
      check(identical_everywhere(world, params), "diloco: workers differ after the sync");
    }
    check(sync.bytes_sent() > 0, "diloco: no bytes counted");
  }
  // NoLoCo: pairs from the seeded permutation, heavy-ball toward the pair's mean.
  {
    const strategy::Scenario s = four_workers("{method: noloco, inner_steps: 1, outer_lr: 0.7, momentum: 0.5}");
    const strategy::Program program = strategy::build_program(s);
    const std::vector<float> initial = random_values(n, 8, 2);
    std::vector<float> params = initial;
    engine::outer::OuterSynchronizer sync(s, world, program.layout, initial, program.ops_of_rank(world.rank()), 0, now);
    std::vector<double> phi(initial.begin(), initial.end()), velocity(n, 0.0);
    for (std::int64_t step = 1; step <= 3; ++step) {
      const std::vector<float> change = random_values(n, 2000 * static_cast<std::uint64_t>(step) + world.rank(), 2);
      for (std::size_t i = 0; i < n; ++i) params[i] += 0.1f * change[i];
      const std::vector<float> all = gather(world, params);
      sync.after_step(step, params);
      const std::vector<int> groups = strategy::noloco_groups(s.training.seed, step - 1, ranks, 2);
      int partner = -1;
      for (int r = 0; r < ranks; ++r)
        if (r != world.rank() && groups[static_cast<std::size_t>(r)] == groups[static_cast<std::size_t>(world.rank())]) partner = r;
      bool ok = partner >= 0;
      for (std::size_t i = 0; ok && i < n; ++i) {
        const double mean = 0.5 * (static_cast<double>(all[static_cast<std::size_t>(world.rank()) * n + i]) +
                                   all[static_cast<std::size_t>(partner) * n + i]);
        velocity[i] = 0.5 * velocity[i] + 0.7 * (mean - phi[i]);
        phi[i] = static_cast<float>(phi[i] + velocity[i]);
        ok = std::fabs(params[i] - phi[i]) <= 1e-6 * (std::fabs(phi[i]) + 1e-2);
      }
      check(ok, "noloco: step " + std::to_string(step) + " differs from the float64 formula");
    }
  }
  // Streaming DiLoCo with int4 exchange: every worker ends with the same fragment of global.
  {
    const strategy::Scenario s = four_workers(
        "{method: streaming-diloco, inner_steps: 4, fragments: 2, delay: 1, mix: 0, quantize: int4}");
    const strategy::Program program = strategy::build_program(s);
    const std::vector<float> initial = random_values(n, 9, 2);
    std::vector<float> params = initial;
    engine::outer::OuterSynchronizer sync(s, world, program.layout, initial, program.ops_of_rank(world.rank()), 0, now);
    for (std::int64_t step = 1; step <= 6; ++step) {
      const std::vector<float> change = random_values(n, 3000 * static_cast<std::uint64_t>(step) + world.rank(), 2);
      for (std::size_t i = 0; i < n; ++i) params[i] += 0.1f * change[i];
      sync.after_step(step, params);
      if (step == 3) {
        // Fragment 0 (sent after step 2) was applied with mix 0: every worker holds global there.
        const auto [begin, end] = strategy::fragment_range(static_cast<std::int64_t>(n), 2, 0);
        check(identical_everywhere(world, std::span<const float>(params.data() + begin, static_cast<std::size_t>(end - begin))),
              "streaming: fragment 0 differs across workers after its update");
      }
    }
    const auto records = sync.take_records();
    check(std::count_if(records.begin(), records.end(), [](const report::TraceRecord& r) {
            return r.code == strategy::OpCode::OuterFragmentSync;
          }) == 2,
          "streaming: two fragment exchanges recorded");
  }
}

}  // namespace

int main() {
  auto world = comm::make_mpi_world_communicator();
  if (world->size() != 4) {
    std::fprintf(stderr, "run with 4 ranks (got %d)\n", world->size());
    return 2;
  }
  noloco_groups_agree(*world);
  mean_exchange(*world);
  synchronizers(*world);
  int total = failures;
  world->all_reduce(&total, 1, comm::DataType::Int32, comm::ReduceOp::Sum);
  if (world->rank() == 0) std::printf("%s (%d failures over all ranks)\n", total == 0 ? "OK" : "FAILED", total);
  return total == 0 ? 0 : 1;
}
