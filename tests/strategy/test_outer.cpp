// strategy.outer and cluster.sites: reference defaults, errors named by key, the quantized byte
// counts, Streaming DiLoCo's fragments and schedule, NoLoCo's groups, and the outer ops the
// program builder emits (against counts computed here from the parameter tensors).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "strategy/model_formulas.hpp"
#include "strategy/outer.hpp"
#include "strategy/program.hpp"
#include "strategy/scenario.hpp"

using namespace tandem::strategy;

namespace {

// A GPT-2-small-like model on `nodes` nodes of 4 A100s.
Scenario outer_scenario(const std::string& strategy, int nodes = 4, const std::string& cluster_extra = "") {
  return parse_scenario("model: {preset: gpt2-124m}\ncluster: {gpu: a100-80gb, nodes: " + std::to_string(nodes) +
                            ", gpus_per_node: 4" + cluster_extra + "}\nstrategy: " + strategy + "\n",
                        ".");
}

std::vector<ValidationError> errors_of(const std::string& strategy, int nodes = 4, const std::string& cluster_extra = "") {
  try {
    outer_scenario(strategy, nodes, cluster_extra);
  } catch (const ScenarioError& error) {
    return error.errors();
  }
  return {};
}

bool has_error(const std::vector<ValidationError>& errors, const std::string& path) {
  return std::any_of(errors.begin(), errors.end(), [&](const ValidationError& e) { return e.path == path; });
}

std::vector<const Op*> ops_with(const std::vector<Op>& ops, OpCode code) {
  std::vector<const Op*> found;
  for (const Op& op : ops)
    if (op.code == code) found.push_back(&op);
  return found;
}

// Elements rank `stage` holds: every tensor of its layers, the embedding on the first stage,
// the head on the last (untied GPT-2 preset? checked below), sharded over tp.
double held_elements(const Scenario& s, int stage) {
  const ModelSpec& m = *s.model;
  const StrategySpec& st = *s.strategy;
  const int per_stage = m.layers / st.pp;
  double total = 0;
  for (const ParameterTensorSpec& t : parameter_tensors(m, st.tp)) {
    bool held = false;
    if (t.layer >= 0) held = t.layer / per_stage == stage;
    else if (t.role == TensorRole::Embedding) held = stage == 0 || (m.tied_embeddings && stage == st.pp - 1);
    else if (t.role == TensorRole::Position) held = stage == 0;
    else held = stage == st.pp - 1;
    if (held) total += static_cast<double>(local_elements(t, st.tp));
  }
  return total;
}

}  // namespace

TEST(Outer, MethodsTakeTheirReferenceDefaults) {
  struct Expected {
    const char* method;
    int inner_steps;
    double outer_lr, momentum;
  };
  // OPTIMIZERS.md: DiLoCo H 500, 0.7, 0.9; SNOO K 28, 0.68, 0.37; NoLoCo H 50, 0.7, 0.5.
  for (const Expected& e : {Expected{"diloco", 500, 0.7, 0.9}, Expected{"noloco", 50, 0.7, 0.5},
                            Expected{"streaming-diloco", 100, 0.7, 0.9}}) {
    const Scenario s = outer_scenario(std::string("{tp: 4, outer: {method: ") + e.method + "}}");
    EXPECT_EQ(s.strategy->outer.inner_steps, e.inner_steps) << e.method;
    EXPECT_DOUBLE_EQ(s.strategy->outer.outer_lr, e.outer_lr) << e.method;
    EXPECT_DOUBLE_EQ(s.strategy->outer.momentum, e.momentum) << e.method;
  }
  const Scenario snoo = outer_scenario("{tp: 4, outer: {method: snoo}}", 1);
  EXPECT_EQ(snoo.strategy->outer.inner_steps, 28);
  EXPECT_DOUBLE_EQ(snoo.strategy->outer.outer_lr, 0.68);
  EXPECT_DOUBLE_EQ(snoo.strategy->outer.momentum, 0.37);
  const Scenario streaming = outer_scenario("{tp: 4, outer: {method: streaming-diloco}}");
  EXPECT_EQ(streaming.strategy->outer.fragments, 4);
  EXPECT_EQ(streaming.strategy->outer.delay, 1);
  EXPECT_DOUBLE_EQ(streaming.strategy->outer.mix, 0.5);
  EXPECT_EQ(streaming.strategy->outer.quantize, OuterQuantization::None);
  EXPECT_EQ(streaming.strategy->outer.sync_period(), 25);
  // Explicit values win; streaming keys do not leak into other methods.
  const Scenario explicit_values =
      outer_scenario("{tp: 4, outer: {method: diloco, inner_steps: 7, outer_lr: 1, momentum: 0, fragments: 3}}");
  EXPECT_EQ(explicit_values.strategy->outer.inner_steps, 7);
  EXPECT_DOUBLE_EQ(explicit_values.strategy->outer.outer_lr, 1.0);
  EXPECT_DOUBLE_EQ(explicit_values.strategy->outer.momentum, 0.0);
  EXPECT_EQ(explicit_values.strategy->outer.fragments, 1);
  EXPECT_FALSE(outer_scenario("{tp: 4}").strategy->outer.enabled());
}

TEST(Outer, ErrorsNameTheKey) {
  EXPECT_TRUE(has_error(errors_of("{tp: 4, outer: {method: snoo}}"), "strategy.outer.method"));  // dp 4
  EXPECT_TRUE(has_error(errors_of("{tp: 4, outer: {method: noloco, group_size: 3}}"), "strategy.outer.group_size"));
  EXPECT_TRUE(has_error(errors_of("{tp: 4, outer: {method: noloco}}", 1), "strategy.outer.group_size"));  // dp 1
  EXPECT_TRUE(has_error(errors_of("{tp: 4, outer: {method: noloco, group_size: 1}}"), "strategy.outer.group_size"));
  EXPECT_TRUE(has_error(errors_of("{tp: 4, outer: {method: streaming-diloco, fragments: 13, inner_steps: 130}}"),
                        "strategy.outer.fragments"));  // 12 layers
  EXPECT_TRUE(has_error(errors_of("{tp: 4, outer: {method: streaming-diloco, fragments: 3, inner_steps: 100}}"),
                        "strategy.outer.inner_steps"));
  EXPECT_TRUE(has_error(errors_of("{tp: 4, outer: {method: streaming-diloco, fragments: 4, inner_steps: 8, delay: 2}}"),
                        "strategy.outer.delay"));
  EXPECT_TRUE(has_error(errors_of("{tp: 4, zero: 1, outer: {method: diloco}}"), "strategy.zero"));
  EXPECT_TRUE(has_error(errors_of("{tp: 4, outer: {method: gossip}}"), "strategy.outer.method"));
  EXPECT_TRUE(has_error(errors_of("{tp: 4, outer: {method: diloco, quantize: int2}}"), "strategy.outer.quantize"));
  EXPECT_TRUE(has_error(errors_of("{tp: 4, outer: {method: diloco, mix: 1.5}}"), "strategy.outer.mix"));
  EXPECT_TRUE(errors_of("{tp: 4, outer: {method: streaming-diloco, fragments: 4, inner_steps: 8, delay: 1}}").empty());
}

TEST(Sites, CountsSumToNodesAndTheWanIsRequired) {
  const std::string wan = ", wan: {bandwidth: 10Gbps, latency: 30ms}";
  const Scenario s = outer_scenario("{tp: 4}", 4, ", sites: [{name: east, nodes: 1}, {nodes: 3}]" + wan);
  ASSERT_EQ(s.cluster.sites.size(), 2u);
  EXPECT_EQ(s.cluster.sites[0].name, "east");
  EXPECT_EQ(s.cluster.sites[1].name, "site1");
  EXPECT_EQ(s.cluster.sites[1].first_node, 1);
  EXPECT_EQ(s.cluster.site_of_node(0), 0);
  EXPECT_EQ(s.cluster.site_of_node(3), 1);
  EXPECT_DOUBLE_EQ(s.cluster.wan.bandwidth_bytes_per_s, 10e9 / 8);
  EXPECT_DOUBLE_EQ(s.cluster.wan.latency_s, 0.03);
  EXPECT_TRUE(s.cluster.has_wan());
  const Scenario plain = outer_scenario("{tp: 4}");
  ASSERT_EQ(plain.cluster.sites.size(), 1u);
  EXPECT_FALSE(plain.cluster.has_wan());

  EXPECT_TRUE(has_error(errors_of("{tp: 4}", 4, ", sites: [{nodes: 1}, {nodes: 2}]" + wan), "cluster.sites"));
  EXPECT_TRUE(has_error(errors_of("{tp: 4}", 4, ", sites: [{nodes: 2}, {nodes: 2}]"), "cluster.wan.bandwidth"));
  EXPECT_TRUE(has_error(errors_of("{tp: 4}", 4, ", sites: [{nodes: 2}, {nodes: 2}], wan: {bandwidth: 1Gbps}"),
                        "cluster.wan.latency"));
  EXPECT_TRUE(has_error(errors_of("{tp: 4}", 4, wan), "cluster.wan"));
  EXPECT_TRUE(has_error(errors_of("{tp: 4}", 4, ", sites: [{name: a, nodes: 2}, {name: a, nodes: 2}]" + wan),
                        "cluster.sites[1].name"));
  EXPECT_TRUE(has_error(errors_of("{tp: 4}", 4, ", sites: [{name: a}, {nodes: 4}]" + wan), "cluster.sites[0].nodes"));
}

TEST(Outer, QuantizedBytesCountValuesAndScales) {
  // 1000 values: 4 blocks of 256 -> 4 fp32 scales.
  EXPECT_DOUBLE_EQ(quantized_bytes(1000, OuterQuantization::None), 4000);
  EXPECT_DOUBLE_EQ(quantized_bytes(1000, OuterQuantization::Fp8), 1000 + 16);
  EXPECT_DOUBLE_EQ(quantized_bytes(1000, OuterQuantization::Int4), 500 + 16);
  EXPECT_DOUBLE_EQ(quantized_bytes(1001, OuterQuantization::Int4), 501 + 16);
  EXPECT_DOUBLE_EQ(quantized_bytes(1025, OuterQuantization::Fp8), 1025 + 20);
}

TEST(Outer, FragmentsCoverTheParametersInEqualContiguousRanges) {
  for (std::int64_t n : {1, 7, 1000, 124439808}) {
    for (int f : {1, 3, 4, 12}) {
      std::int64_t next = 0;
      std::int64_t smallest = n, largest = 0;
      for (int i = 0; i < f; ++i) {
        const auto [begin, end] = fragment_range(n, f, i);
        EXPECT_EQ(begin, next);
        next = end;
        smallest = std::min(smallest, end - begin);
        largest = std::max(largest, end - begin);
      }
      EXPECT_EQ(next, n);
      EXPECT_LE(largest - smallest, 1);
      EXPECT_EQ(largest, (n + f - 1) / f);
    }
  }
}

TEST(Outer, ScheduleSendsOneFragmentEveryHOverFSteps) {
  OuterSpec streaming;
  streaming.method = OuterMethod::StreamingDiLoCo;
  streaming.inner_steps = 8;
  streaming.fragments = 4;
  std::vector<int> sent;
  for (int step = 1; step <= 20; ++step) sent.push_back(fragment_starting_after(streaming, step));
  EXPECT_EQ(sent, (std::vector<int>{-1, 0, -1, 1, -1, 2, -1, 3, -1, 0, -1, 1, -1, 2, -1, 3, -1, 0, -1, 1}));
  OuterSpec diloco;
  diloco.method = OuterMethod::DiLoCo;
  diloco.inner_steps = 3;
  EXPECT_EQ(fragment_starting_after(diloco, 3), 0);
  EXPECT_EQ(fragment_starting_after(diloco, 4), -1);
  EXPECT_EQ(fragment_starting_after(diloco, 6), 0);
  EXPECT_EQ(fragment_starting_after(OuterSpec{}, 1), -1);
}

TEST(Outer, NolocoGroupsPartitionTheWorkersAndDependOnlyOnSeedAndStep) {
  for (int workers : {2, 4, 8, 12}) {
    for (int size : {2, 4}) {
      if (workers % size) continue;
      for (std::int64_t step : {0, 1, 17}) {
        const std::vector<int> groups = noloco_groups(99, step, workers, size);
        std::map<int, int> members;
        for (int g : groups) ++members[g];
        EXPECT_EQ(static_cast<int>(members.size()), workers / size);
        for (const auto& [g, count] : members) {
          EXPECT_GE(g, 0);
          EXPECT_LT(g, workers / size);
          EXPECT_EQ(count, size);
        }
        EXPECT_EQ(groups, noloco_groups(99, step, workers, size));  // a pure function
      }
    }
  }
  // Different outer steps and seeds regroup the workers (some of 20 steps differ from step 0).
  std::set<std::vector<int>> seen;
  for (std::int64_t step = 0; step < 20; ++step) seen.insert(noloco_groups(7, step, 8, 2));
  EXPECT_GT(seen.size(), 10u);
  EXPECT_NE(noloco_groups(1, 0, 16, 2), noloco_groups(2, 0, 16, 2));
}

TEST(OuterProgram, DilocoAllReducesFp32PseudoGradientsEveryHSteps) {
  const Scenario plain = outer_scenario("{tp: 2, pp: 2, global_batch: 32}");
  const Scenario diloco = outer_scenario("{tp: 2, pp: 2, global_batch: 32, outer: {method: diloco, inner_steps: 40}}");
  const Program plain_program = build_program(plain);
  const Program diloco_program = build_program(diloco);
  for (int stage = 0; stage < 2; ++stage) {
    const auto& ops = diloco_program.stage_ops[static_cast<std::size_t>(stage)];
    const auto& plain_ops = plain_program.stage_ops[static_cast<std::size_t>(stage)];
    // No gradient all-reduce across workers in the inner step.
    EXPECT_FALSE(ops_with(plain_ops, OpCode::DpGradientReduce).empty());
    EXPECT_TRUE(ops_with(ops, OpCode::DpGradientReduce).empty());
    const auto syncs = ops_with(ops, OpCode::OuterSync);
    ASSERT_EQ(syncs.size(), 1u);
    EXPECT_EQ(syncs[0]->collective, CollectiveKind::AllReduce);
    EXPECT_EQ(syncs[0]->group, GroupKind::Data);
    EXPECT_EQ(syncs[0]->period, 40);
    EXPECT_EQ(syncs[0]->overlap_steps, 0);
    EXPECT_DOUBLE_EQ(syncs[0]->bytes, 4 * held_elements(diloco, stage));
    const auto updates = ops_with(ops, OpCode::OuterStep);
    ASSERT_EQ(updates.size(), 1u);
    EXPECT_EQ(updates[0]->period, 40);
    EXPECT_EQ(updates[0]->type, OpType::Compute);
    // The exchange follows the inner optimizer step; the update follows the exchange; StepEnd
    // waits for the update.
    const Op& optimizer = *ops_with(ops, OpCode::OptimizerStep).front();
    EXPECT_NE(std::find(syncs[0]->deps.begin(), syncs[0]->deps.end(), optimizer.id), syncs[0]->deps.end());
    EXPECT_NE(std::find(updates[0]->deps.begin(), updates[0]->deps.end(), syncs[0]->id), updates[0]->deps.end());
    EXPECT_NE(std::find(ops.back().deps.begin(), ops.back().deps.end(), updates[0]->id), ops.back().deps.end());
    // The inner ops are those of plain training without the gradient reduction, in order.
    std::vector<OpCode> inner, reference;
    for (const Op& op : ops)
      if (op.period == 1 && op.code != OpCode::StepEnd) inner.push_back(op.code);
    for (const Op& op : plain_ops)
      if (op.code != OpCode::DpGradientReduce && op.code != OpCode::StepEnd) reference.push_back(op.code);
    EXPECT_EQ(inner, reference);
  }
}

TEST(OuterProgram, SnooAndOneWorkerHaveNoExchange) {
  const Scenario snoo = outer_scenario("{tp: 4, outer: {method: snoo}}", 1);
  const Program program = build_program(snoo);
  const auto& ops = program.stage_ops[0];
  EXPECT_TRUE(ops_with(ops, OpCode::OuterSync).empty());
  ASSERT_EQ(ops_with(ops, OpCode::OuterStep).size(), 1u);
  EXPECT_EQ(ops_with(ops, OpCode::OuterStep)[0]->period, 28);
  const Scenario one = outer_scenario("{tp: 4, outer: {method: diloco, inner_steps: 1}}", 1);
  EXPECT_TRUE(ops_with(build_program(one).stage_ops[0], OpCode::OuterSync).empty());
}

TEST(OuterProgram, StreamingExchangesOneQuantizedFragmentOverlappingTheStep) {
  for (const char* quantize : {"none", "fp8", "int4"}) {
    const Scenario s = outer_scenario(std::string("{tp: 4, outer: {method: streaming-diloco, inner_steps: 60, "
                                                  "fragments: 3, delay: 2, quantize: ") +
                                      quantize + "}}");
    const Program program = build_program(s);
    const auto syncs = ops_with(program.stage_ops[0], OpCode::OuterFragmentSync);
    ASSERT_EQ(syncs.size(), 1u);
    const double fragment = std::ceil(held_elements(s, 0) / 3);
    const double scales = 4 * std::ceil(fragment / 256);
    const double expected = std::string(quantize) == "none" ? 4 * fragment
                            : std::string(quantize) == "fp8" ? fragment + scales
                                                              : std::ceil(fragment / 2) + scales;
    EXPECT_DOUBLE_EQ(syncs[0]->bytes, expected) << quantize;
    EXPECT_EQ(syncs[0]->period, 20);
    EXPECT_EQ(syncs[0]->overlap_steps, 2);
    EXPECT_EQ(syncs[0]->deps, std::vector<std::uint32_t>{0});  // started before this step (StepBegin)
  }
  // Without a delay the exchange blocks after the inner optimizer step.
  const Scenario blocking = outer_scenario("{tp: 4, outer: {method: streaming-diloco, delay: 0}}");
  const Program program = build_program(blocking);
  const auto& ops = program.stage_ops[0];
  const Op& optimizer = *ops_with(ops, OpCode::OptimizerStep).front();
  EXPECT_EQ(ops_with(ops, OpCode::OuterFragmentSync)[0]->deps, std::vector<std::uint32_t>{optimizer.id});
}

TEST(OuterProgram, NolocoAveragesWithinSeededGroupsAndFoldsBySites) {
  // 8 workers (one per node), 4 per site: groups of 2 from the permutation of outer step 0.
  const Scenario s = outer_scenario(
      "{tp: 4, outer: {method: noloco, inner_steps: 10}}", 8,
      ", sites: [{nodes: 4}, {nodes: 4}], wan: {bandwidth: 10Gbps, latency: 30ms}");
  const Program program = build_program(s);
  const auto averages = ops_with(program.stage_ops[0], OpCode::OuterGroupAverage);
  ASSERT_EQ(averages.size(), 1u);
  EXPECT_EQ(averages[0]->group, GroupKind::OuterGroup);
  EXPECT_DOUBLE_EQ(averages[0]->bytes, 4 * held_elements(s, 0));
  EXPECT_EQ(averages[0]->period, 10);
  const std::vector<int> expected = noloco_groups(s.training.seed, 0, 8, 2);
  for (int rank = 0; rank < program.layout.world_size(); ++rank) {
    const std::vector<int> group = program.layout.group_of(rank, GroupKind::OuterGroup);
    ASSERT_EQ(group.size(), 2u);
    for (int member : group) {
      EXPECT_EQ(program.layout.coordinates(member).tp, program.layout.coordinates(rank).tp);
      EXPECT_EQ(expected[static_cast<std::size_t>(program.layout.coordinates(member).dp)],
                expected[static_cast<std::size_t>(program.layout.coordinates(rank).dp)]);
    }
  }
  // Ranks fold only with ranks of the same site whose group spans the same sites.
  for (const RankClass& c : program.classes) {
    std::set<std::vector<int>> signatures;
    for (int rank : c.ranks) {
      EXPECT_EQ(s.cluster.site_of_node(program.layout.node_of(rank)), c.site);
      std::vector<int> sites;
      for (int member : program.layout.group_of(rank, GroupKind::OuterGroup))
        sites.push_back(s.cluster.site_of_node(program.layout.node_of(member)));
      std::sort(sites.begin(), sites.end());
      sites.erase(std::unique(sites.begin(), sites.end()), sites.end());
      signatures.insert(sites);
    }
    EXPECT_EQ(signatures.size(), 1u);
  }
}
