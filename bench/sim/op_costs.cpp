// op_costs: where one rank's compute time goes under the twin's cost model, per op code — for
// calibrating hardware profiles against published kernel measurements.
//   op_costs scenario.yaml [stage]
#include <cstdio>
#include <map>
#include <string>

#include "sim/compute_cost.hpp"
#include "strategy/program.hpp"
#include "strategy/scenario.hpp"

int main(int argc, char** argv) {
  using namespace tandem;
  if (argc < 2) {
    std::fprintf(stderr, "usage: op_costs scenario.yaml [stage]\n");
    return 2;
  }
  try {
    const strategy::Scenario scenario = strategy::load_scenario(argv[1]);
    const int stage = argc > 2 ? std::stoi(argv[2]) : 0;
    const strategy::Program program = strategy::build_program(scenario);
    const sim::ComputeCostModel cost = sim::ComputeCostModel::for_scenario(scenario);
    struct Row {
      int count = 0;
      double time = 0, flops = 0, bytes = 0;
      std::int64_t m = 0, n = 0, k = 0, batch = 0;
    };
    std::map<std::string, Row> rows;
    double total = 0, total_flops = 0;
    for (const auto& op : program.stage_ops.at(static_cast<std::size_t>(stage))) {
      if (op.type != strategy::OpType::Compute) continue;
      std::string name(strategy::to_string(op.code));
      if (op.recompute) name += " (recompute)";
      Row& row = rows[name];
      const double t = cost.op_time(op);
      ++row.count;
      row.time += t;
      row.flops += op.flops;
      row.bytes += op.bytes;
      row.m = op.m, row.n = op.n, row.k = op.k, row.batch = op.batch;
      total += t;
      total_flops += op.flops;
    }
    std::printf("%-36s %6s %10s %8s %9s  %s\n", "op", "count", "time s", "share", "TFLOP/s", "last shape m,n,k,batch");
    for (const auto& [name, row] : rows)
      std::printf("%-36s %6d %10.4f %7.1f%% %9.1f  %lld,%lld,%lld,%lld\n", name.c_str(), row.count, row.time,
                  100 * row.time / total, row.time > 0 ? row.flops / row.time / 1e12 : 0.0, (long long)row.m,
                  (long long)row.n, (long long)row.k, (long long)row.batch);
    std::printf("total compute %.4f s, %.1f TFLOP/s (peak %.0f)\n", total, total_flops / total / 1e12,
                cost.peak_flops() / 1e12);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "error: %s\n", error.what());
    return 2;
  }
  return 0;
}
