// Program generation: structure, dependencies, FLOP totals against the model formulas, and the
// collectives Megatron-LM places for each parallelism.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "strategy/model_formulas.hpp"
#include "strategy/program.hpp"
#include "strategy/scenario.hpp"

using namespace tandem::strategy;

namespace {

Scenario scenario(const std::string& strategy, const std::string& model = "{preset: gpt-22b}", int nodes = 2) {
  return parse_scenario("model: " + model + "\ncluster: {gpu: a100-80gb, nodes: " + std::to_string(nodes) +
                            ", gpus_per_node: 8}\nstrategy: " + strategy + "\n",
                        ".");
}

double flops_of(const Program& program, bool include_recompute) {
  double total = 0;
  for (int rank = 0; rank < program.layout.world_size(); ++rank)
    for (const Op& op : program.ops_of_rank(rank))
      if (op.type == OpType::Compute && op.compute_kind != ComputeKind::Optimizer &&
          (op.compute_kind == ComputeKind::Matmul || op.compute_kind == ComputeKind::Attention) &&
          (include_recompute || !op.recompute))
        total += op.flops;
  return total;
}

int count(const std::vector<Op>& ops, OpCode code) {
  int n = 0;
  for (const Op& op : ops) n += op.code == code;
  return n;
}

}  // namespace

TEST(Program, IdsAreIndicesAndDependenciesPointBackwards) {
  const Scenario s = scenario("{tp: 4, pp: 2, global_batch: 16, sequence_parallel: true, zero: 1}");
  const Program program = build_program(s);
  ASSERT_EQ(program.stage_ops.size(), 2u);
  for (const auto& ops : program.stage_ops) {
    ASSERT_FALSE(ops.empty());
    EXPECT_EQ(ops.front().code, OpCode::StepBegin);
    EXPECT_EQ(ops.back().code, OpCode::StepEnd);
    for (std::size_t i = 0; i < ops.size(); ++i) {
      EXPECT_EQ(ops[i].id, i);
      for (std::uint32_t dep : ops[i].deps) EXPECT_LT(dep, i) << to_string(ops[i].code);
    }
  }
}

TEST(Program, MatmulAndAttentionFlopsEqualThreeForwards) {
  // Summed over every rank, the forward and backward GEMM/attention FLOPs are 3x the model's
  // forward FLOPs (vocab divisible by tp so there is no padding), whatever the split.
  for (const char* strategy : {"{tp: 1, pp: 1, global_batch: 32}", "{tp: 4, pp: 2, global_batch: 16}",
                                      "{tp: 8, pp: 2, global_batch: 8, sequence_parallel: true}",
                                      "{tp: 2, pp: 2, cp: 2, global_batch: 8}"}) {
    const Scenario s = scenario(strategy);
    const double expected = model_flops_per_step(*s.model, s.strategy->global_batch);
    EXPECT_NEAR(flops_of(build_program(s), false) / expected, 1.0, 1e-9) << strategy;
  }
}

TEST(Program, RecomputeAddsPublishedOverheads) {
  // Korthikanti et al.: selective recompute re-runs Q.K^T and the attention over V (4bs^2h per
  // layer), 2.7% of the forward FLOPs of GPT-3 175B; full recompute re-runs every forward, a
  // third of forward + backward.
  const std::string model = "{preset: gpt3-175b}";
  const Scenario none = scenario("{tp: 8, pp: 2, global_batch: 2}", model);
  const Scenario selective = scenario("{tp: 8, pp: 2, global_batch: 2, recompute: selective}", model);
  const Scenario full = scenario("{tp: 8, pp: 2, global_batch: 2, recompute: full}", model);
  const double base = flops_of(build_program(none), true);
  const double forward = base / 3;
  EXPECT_NEAR((flops_of(build_program(selective), true) - base) / forward, 0.027, 0.0005);
  const double layers_forward = 96 * layer_forward_flops(*none.model, 2);
  EXPECT_NEAR((flops_of(build_program(full), true) - base) / layers_forward, 1.0, 1e-9);
  EXPECT_NEAR((flops_of(build_program(full), true) - base) / base, 0.33, 0.01);
}

TEST(Program, TensorParallelCollectivesPerLayer) {
  const Scenario plain = scenario("{tp: 8, pp: 1, global_batch: 2}");
  const Program ops_program = build_program(plain);
  const auto& ops = ops_program.stage_ops[0];
  const int layers = plain.model->layers;
  const int m = plain.strategy->micro_batches();
  EXPECT_EQ(count(ops, OpCode::TpAttentionOutputForward), layers * m);
  EXPECT_EQ(count(ops, OpCode::TpMlpOutputForward), layers * m);
  EXPECT_EQ(count(ops, OpCode::TpAttentionInputBackward), layers * m);
  EXPECT_EQ(count(ops, OpCode::TpAttentionInputForward), 0);  // identity without SP
  for (const Op& op : ops)
    if (op.code == OpCode::TpMlpOutputForward) {
      EXPECT_EQ(op.collective, CollectiveKind::AllReduce);
      EXPECT_DOUBLE_EQ(op.bytes, 2.0 * 2048 * 6144);  // s*b*h in bf16
    }
  const Scenario sp = scenario("{tp: 8, pp: 1, global_batch: 2, sequence_parallel: true}");
  const Program sp_ops_program = build_program(sp);
  const auto& sp_ops = sp_ops_program.stage_ops[0];
  EXPECT_EQ(count(sp_ops, OpCode::TpAttentionInputForward), layers * m);
  for (const Op& op : sp_ops) {
    if (op.code == OpCode::TpMlpOutputForward) {
      EXPECT_EQ(op.collective, CollectiveKind::ReduceScatter);
    }
  }
  // SP moves the same bytes as all-reduce (all-gather + reduce-scatter = one all-reduce).
}

TEST(Program, PipelineSendsMatchReceives) {
  const Scenario s = scenario("{tp: 2, pp: 4, global_batch: 16}");
  const Program program = build_program(s);
  for (int stage = 0; stage + 1 < 4; ++stage) {
    const auto& here = program.stage_ops[static_cast<std::size_t>(stage)];
    const auto& next = program.stage_ops[static_cast<std::size_t>(stage + 1)];
    EXPECT_EQ(count(here, OpCode::PpSendActivation), count(next, OpCode::PpRecvActivation));
    EXPECT_EQ(count(next, OpCode::PpSendGradient), count(here, OpCode::PpRecvGradient));
    EXPECT_EQ(count(here, OpCode::PpSendActivation), s.strategy->micro_batches());
  }
  EXPECT_EQ(count(program.stage_ops[0], OpCode::PpRecvActivation), 0);
  EXPECT_EQ(count(program.stage_ops[3], OpCode::PpSendActivation), 0);
}

TEST(Program, DataParallelBucketsCoverEveryGradient) {
  for (int zero : {0, 1, 2}) {
    const Scenario s = scenario("{tp: 2, pp: 2, global_batch: 16, zero: " + std::to_string(zero) + "}");
    const Program program = build_program(s);
    double reduced = 0;
    int gathers = 0;
    for (const auto& ops : program.stage_ops)
      for (const Op& op : ops) {
        if (op.code == OpCode::DpGradientReduce) {
          reduced += op.bytes;
          EXPECT_EQ(op.collective, zero == 0 ? CollectiveKind::AllReduce : CollectiveKind::ReduceScatter);
          EXPECT_EQ(op.group, GroupKind::Data);
        }
        gathers += op.code == OpCode::DpParameterGather;
      }
    // Gradients of one tensor-parallel rank of each stage, 2 bytes each (bf16).
    double expected = 0;
    for (const ParameterTensorSpec& tensor : parameter_tensors(*s.model, 2))
      expected += 2.0 * static_cast<double>(local_elements(tensor, 2));
    EXPECT_NEAR(reduced, expected, 1) << "zero " << zero;
    EXPECT_EQ(gathers > 0, zero > 0);
  }
}

TEST(Program, EveryStepStartsByZeroingTheRanksGradients) {
  // The engine clears the gradients before a step accumulates into them: the first compute op of
  // every stage writes each of its tensor-parallel rank's gradients once (2 bytes each, bf16).
  const Scenario s = scenario("{tp: 2, pp: 2, global_batch: 16}");
  const Program program = build_program(s);
  double zeroed = 0;
  for (const auto& ops : program.stage_ops) {
    ASSERT_GE(ops.size(), 2u);
    EXPECT_EQ(ops[1].code, OpCode::GradientZero);
    EXPECT_EQ(ops[1].type, OpType::Compute);
    EXPECT_EQ(count(ops, OpCode::GradientZero), 1);
    zeroed += ops[1].bytes;
  }
  double expected = 0;
  for (const ParameterTensorSpec& tensor : parameter_tensors(*s.model, 2))
    expected += 2.0 * static_cast<double>(local_elements(tensor, 2));
  EXPECT_NEAR(zeroed, expected, 1);
}

TEST(Program, ClippingReadsEachRanksGradientsOnceBeforeTheNormIsReduced) {
  // grad-norm: the sum of squares of the gradients a rank holds (its ZeRO shard), 2 bytes each
  // (bf16); the norm's all-reduce waits for it and the optimizer for the all-reduce.
  for (int zero : {0, 1}) {
    const Scenario s = scenario("{tp: 2, pp: 2, global_batch: 16, zero: " + std::to_string(zero) + "}", "{preset: gpt-22b}", 1);
    ASSERT_GT(s.training.grad_clip, 0);
    const Program program = build_program(s);
    double read = 0;
    for (const auto& ops : program.stage_ops) {
      ASSERT_EQ(count(ops, OpCode::GradientNorm), 1);
      const auto norm = std::find_if(ops.begin(), ops.end(), [](const Op& op) { return op.code == OpCode::GradientNorm; });
      const auto reduce = std::find_if(ops.begin(), ops.end(), [](const Op& op) { return op.code == OpCode::GradientNormReduce; });
      const auto step = std::find_if(ops.begin(), ops.end(), [](const Op& op) { return op.code == OpCode::OptimizerStep; });
      ASSERT_NE(reduce, ops.end());
      EXPECT_NE(std::find(reduce->deps.begin(), reduce->deps.end(), norm->id), reduce->deps.end());
      EXPECT_NE(std::find(step->deps.begin(), step->deps.end(), reduce->id), step->deps.end());
      EXPECT_EQ(norm->flops, norm->bytes);  // 2 FLOPs per 2-byte gradient
      read += norm->bytes;
    }
    double expected = 0;
    for (const ParameterTensorSpec& tensor : parameter_tensors(*s.model, 2))
      expected += 2.0 * static_cast<double>(local_elements(tensor, 2));
    EXPECT_NEAR(read, expected / (zero >= 1 ? 2 : 1), 1) << "zero " << zero;
  }
}

TEST(Program, TheResidualBackwardCarriesNoWork) {
  // Both branches of a residual read its gradient; the norm backward adds its branch into it. So
  // the engine runs no kernel for it, and the program gives the twin nothing to charge.
  const Program program = build_program(scenario("{tp: 1, pp: 1, global_batch: 8}", "{preset: gpt2-124m}", 1));
  int residuals = 0;
  for (const Op& op : program.stage_ops[0])
    if (op.code == OpCode::MlpResidualBackward || op.code == OpCode::AttentionResidualBackward) {
      ++residuals;
      EXPECT_EQ(op.bytes, 0);
      EXPECT_EQ(op.flops, 0);
    }
  EXPECT_EQ(residuals, 2 * 12);
}

TEST(Program, OverlappedBucketsStartDuringBackward) {
  const Scenario s = scenario("{tp: 8, pp: 1, global_batch: 4, overlap_grad_reduce: true}");
  const Program ops_program = build_program(s);
  const auto& ops = ops_program.stage_ops[0];
  std::size_t first_reduce = ops.size(), last_backward = 0;
  for (const Op& op : ops) {
    if (op.code == OpCode::DpGradientReduce) first_reduce = std::min<std::size_t>(first_reduce, op.id);
    if (op.code == OpCode::QkvBackwardWeight) last_backward = op.id;
  }
  EXPECT_LT(first_reduce, last_backward);
  const Scenario later = scenario("{tp: 8, pp: 1, global_batch: 4, overlap_grad_reduce: false}");
  const Program later_ops_program = build_program(later);
  const auto& later_ops = later_ops_program.stage_ops[0];
  std::size_t later_last_backward = 0;
  for (const Op& op : later_ops)
    if (op.code == OpCode::QkvBackwardWeight) later_last_backward = op.id;
  for (const Op& op : later_ops) {
    if (op.code == OpCode::DpGradientReduce) {
      EXPECT_GT(op.id, later_last_backward);
    }
  }
}

// Megatron-LM overlaps a column-parallel linear's input-gradient reduction with its
// weight-gradient GEMM since September 2021; before, the reduction ran after the linear's whole
// backward and the next op waited for it.
TEST(Program, TensorParallelInputGradientReductionOverlapsTheWeightGradientOrFollowsIt) {
  const std::vector<std::pair<OpCode, OpCode>> linears = {
      {OpCode::TpMlpInputBackward, OpCode::MlpUpBackwardWeight},
      {OpCode::TpAttentionInputBackward, OpCode::QkvBackwardWeight},
      {OpCode::TpLmHeadInputBackward, OpCode::LmHeadBackwardWeight}};
  for (const bool overlap : {true, false}) {
    const Scenario s = scenario(std::string("{tp: 8, pp: 1, global_batch: 2, overlap_tp_input_grad: ") +
                                (overlap ? "true" : "false") + "}");
    const Program program = build_program(s);
    const auto& ops = program.stage_ops[0];
    for (const auto& linear : linears) {
      const OpCode reduction_code = linear.first, weight_code = linear.second;
      int checked = 0;
      for (const Op& reduction : ops) {
        if (reduction.code != reduction_code) continue;
        ASSERT_EQ(reduction.deps.size(), 1u);
        const Op& started_after = ops[reduction.deps[0]];
        // The weight-gradient GEMM of the same layer and micro-batch.
        const auto weight = std::find_if(ops.begin(), ops.end(), [&](const Op& op) {
          return op.code == weight_code && op.layer == reduction.layer && op.micro_batch == reduction.micro_batch;
        });
        ASSERT_NE(weight, ops.end());
        // The first compute op that waits for the reduction.
        const auto waiter = std::find_if(ops.begin() + reduction.id + 1, ops.end(), [&](const Op& op) {
          return std::find(op.deps.begin(), op.deps.end(), reduction.id) != op.deps.end();
        });
        ASSERT_NE(waiter, ops.end());
        if (overlap) {
          EXPECT_LT(reduction.id, weight->id);  // started before the GEMM, from the input-gradient GEMM
          EXPECT_NE(started_after.code, weight_code);
          EXPECT_GT(waiter->id, weight->id);
        } else {
          EXPECT_EQ(started_after.id, weight->id);  // after the GEMM
        }
        ++checked;
      }
      EXPECT_GT(checked, 0) << to_string(reduction_code);
    }
  }
}

TEST(Program, FoldingGroupsRanksByStageAndHardware) {
  const Scenario s = parse_scenario(
      "model: {preset: gpt-22b}\ncluster:\n  gpu: a100-80gb\n  nodes: 4\n  node_groups: [{nodes: 2}, {nodes: 2, nic: {count: 2}}]\n"
      "strategy: {tp: 8, pp: 2, global_batch: 16}\n",
      ".");
  const Program folded = build_program(s);
  // pp stages x node groups; stage 0 lives on nodes 0-1 (group 0), stage 1 on nodes 2-3.
  EXPECT_EQ(folded.classes.size(), 2u);
  std::size_t ranks = 0;
  for (const RankClass& c : folded.classes) ranks += c.ranks.size();
  EXPECT_EQ(ranks, 32u);
  const Program flat = build_program(s, {.fold = false});
  EXPECT_EQ(flat.classes.size(), 32u);
  EXPECT_EQ(&flat.ops_of_rank(31), &flat.stage_ops[1]);
}

TEST(Program, ContextParallelRingExchangesKeyValueBlocks) {
  const Scenario s = scenario("{tp: 2, pp: 1, cp: 4, global_batch: 4}");
  const Program ops_program = build_program(s);
  const auto& ops = ops_program.stage_ops[0];
  const int layers = s.model->layers, m = s.strategy->micro_batches();
  EXPECT_EQ(count(ops, OpCode::CpKeyValueForward), layers * m * 3);
  EXPECT_EQ(count(ops, OpCode::AttentionCoreForward), layers * m * 4);
  for (const Op& op : ops) {
    if (op.code == OpCode::DpGradientReduce) {
      EXPECT_EQ(op.group, GroupKind::DataContext);
    }
  }
}

TEST(Program, LayoutGroupsFollowMegatronOrder) {
  const ParallelLayout layout(2, 1, 4, 2, 8);  // tp 2, cp 1, dp 4, pp 2
  EXPECT_EQ(layout.group_of(5, GroupKind::Tensor), (std::vector<int>{4, 5}));
  EXPECT_EQ(layout.group_of(5, GroupKind::Data), (std::vector<int>{1, 3, 5, 7}));
  EXPECT_EQ(layout.group_of(5, GroupKind::Pipeline), (std::vector<int>{5, 13}));
  EXPECT_EQ(layout.all_groups(GroupKind::Tensor).size(), 8u);
  EXPECT_EQ(layout.all_groups(GroupKind::Data).size(), 4u);
  for (int rank = 0; rank < 16; ++rank) EXPECT_EQ(layout.rank_of(layout.coordinates(rank)), rank);
}
