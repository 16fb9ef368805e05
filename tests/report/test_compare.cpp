// Scenario diff, result diff, trace alignment and worst ops, on hand-built inputs whose answers
// are worked out by hand in the comments.

#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "report/compare.hpp"

namespace tandem::report {
namespace {

using strategy::OpCode;
using strategy::Phase;
using strategy::Stream;

TEST(DiffScenarios, ReportsChangedAddedAndRemovedKeysByPath) {
  const std::string a = R"yaml(
model:
  preset: gpt2-small
  layers: 12
strategy:
  tp: 2
  pp: 4
  micro_batches: 8
  schedule: 1f1b
cluster:
  nodes: [a100, a100]
  gpus_per_node: 8
optimizer:
  lr: 3.0e-4
seed: 1
)yaml";
  const std::string b = R"yaml(
model:
  preset: gpt2-small
  layers: 12
strategy:
  tp: 4
  pp: 4
  micro_batches: 8.0
  schedule: interleaved
  virtual_stages: 2
cluster:
  nodes: [a100, h100]
  gpus_per_node: 8
optimizer:
  lr: 0.0003
)yaml";
  const auto differences = diff_scenarios(a, b);
  // Expected, in key order: cluster.nodes, seed (removed), strategy.schedule, strategy.tp,
  // strategy.virtual_stages (added). micro_batches 8 == 8.0 and lr 3.0e-4 == 0.0003 are equal.
  ASSERT_EQ(differences.size(), 5u);
  EXPECT_EQ(differences[0].key, "cluster.nodes");
  EXPECT_EQ(differences[0].value_a, "[a100, a100]");
  EXPECT_EQ(differences[0].value_b, "[a100, h100]");
  EXPECT_EQ(differences[1].key, "seed");
  EXPECT_EQ(differences[1].value_a, "1");
  EXPECT_FALSE(differences[1].value_b);
  EXPECT_EQ(differences[2].key, "strategy.schedule");
  EXPECT_EQ(differences[2].value_a, "1f1b");
  EXPECT_EQ(differences[2].value_b, "interleaved");
  EXPECT_EQ(differences[3].key, "strategy.tp");
  EXPECT_EQ(differences[3].value_a, "2");
  EXPECT_EQ(differences[3].value_b, "4");
  EXPECT_EQ(differences[4].key, "strategy.virtual_stages");
  EXPECT_FALSE(differences[4].value_a);
  EXPECT_EQ(differences[4].value_b, "2");
}

TEST(DiffScenarios, IdenticalScenariosHaveNoDifferences) {
  const std::string text = "a: 1\nb:\n  c: [1, 2]\n  d: {e: f}\n";
  EXPECT_TRUE(diff_scenarios(text, text).empty());
  EXPECT_TRUE(diff_scenarios("", "").empty());
}

TEST(DiffScenarios, MapBecomingAScalarShowsBothSides) {
  const auto differences = diff_scenarios("failures:\n  seed: 3\n", "failures: none\n");
  ASSERT_EQ(differences.size(), 2u);
  EXPECT_EQ(differences[0].key, "failures");
  EXPECT_FALSE(differences[0].value_a);
  EXPECT_EQ(differences[0].value_b, "none");
  EXPECT_EQ(differences[1].key, "failures.seed");
  EXPECT_EQ(differences[1].value_a, "3");
  EXPECT_FALSE(differences[1].value_b);
}

TEST(DiffScenarios, InvalidYamlNamesTheSideAndLine) {
  try {
    diff_scenarios("a: 1\n", "a: 1\nb: [unclosed\n");
    FAIL() << "expected CompareError";
  } catch (const CompareError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("scenario B"), std::string::npos) << message;
    EXPECT_NE(message.find("line"), std::string::npos) << message;
  }
}

TEST(DiffResults, NumericFieldsWithAbsoluteAndRelativeDeltas) {
  const std::string a = R"({"step_time_s": 2.0, "mfu": 0.40, "fits": true, "schedule": "1f1b",
    "memory": {"peak_bytes": [100, 200]}, "gpus": 64, "only_a": 5, "zero": 0})";
  const std::string b = R"({"step_time_s": 1.5, "mfu": 0.50, "fits": false, "schedule": "gpipe",
    "memory": {"peak_bytes": [100, 300]}, "gpus": 64, "only_b": 7, "zero": 2})";
  const auto differences = diff_results(a, b);
  // Keys in order: fits, gpus, memory.peak_bytes[0], memory.peak_bytes[1], mfu, only_a, only_b,
  // step_time_s, zero. "schedule" is not numeric.
  ASSERT_EQ(differences.size(), 9u);
  const auto& fits = differences[0];
  EXPECT_EQ(fits.key, "fits");
  EXPECT_EQ(fits.value_a, 1.0);
  EXPECT_EQ(fits.value_b, 0.0);
  EXPECT_EQ(differences[1].key, "gpus");
  EXPECT_FALSE(differences[1].changed());
  EXPECT_EQ(differences[1].absolute, 0.0);
  EXPECT_EQ(differences[2].key, "memory.peak_bytes[0]");
  const auto& peak = differences[3];
  EXPECT_EQ(peak.key, "memory.peak_bytes[1]");
  EXPECT_EQ(peak.absolute, 100.0);
  EXPECT_DOUBLE_EQ(*peak.relative, 0.5);
  const auto& mfu = differences[4];
  EXPECT_EQ(mfu.key, "mfu");
  EXPECT_NEAR(*mfu.absolute, 0.10, 1e-15);
  EXPECT_NEAR(*mfu.relative, 0.25, 1e-15);
  EXPECT_EQ(differences[5].key, "only_a");
  EXPECT_EQ(differences[5].value_a, 5.0);
  EXPECT_FALSE(differences[5].value_b);
  EXPECT_FALSE(differences[5].absolute);
  EXPECT_TRUE(differences[5].changed());
  EXPECT_EQ(differences[6].key, "only_b");
  const auto& step = differences[7];
  EXPECT_EQ(step.key, "step_time_s");
  EXPECT_DOUBLE_EQ(*step.absolute, -0.5);
  EXPECT_DOUBLE_EQ(*step.relative, -0.25);
  const auto& zero = differences[8];
  EXPECT_EQ(zero.absolute, 2.0);
  EXPECT_FALSE(zero.relative) << "relative change from 0 is undefined";
}

TEST(DiffResults, InvalidJsonNamesTheSide) {
  try {
    diff_results("{\"a\": 1", "{}");
    FAIL() << "expected CompareError";
  } catch (const CompareError& error) {
    EXPECT_NE(std::string(error.what()).find("result A"), std::string::npos) << error.what();
  }
}

TraceRecord op(int rank, int rank_class, std::uint32_t op_id, OpCode code, double start,
               double end, Stream stream = Stream::Compute) {
  TraceRecord record;
  record.rank = rank;
  record.rank_class = rank_class;
  record.op_id = op_id;
  record.code = code;
  record.stream = stream;
  record.phase = Phase::Forward;
  record.layer = 0;
  record.start_s = start;
  record.end_s = end;
  return record;
}

// The twin (folded) predicts one representative per class; the engine measured two ranks of
// class 0 over two steps and one rank of class 1.
struct AlignmentFixture : ::testing::Test {
  std::vector<TraceRecord> predicted = {
      op(0, 0, 0, OpCode::StepBegin, 0.0, 0.0),
      op(0, 0, 1, OpCode::QkvForward, 0.0, 1.0),       // predicted 1.0
      op(0, 0, 2, OpCode::AttentionCoreForward, 1.0, 3.0),  // predicted 2.0
      op(0, 0, 3, OpCode::MlpUpForward, 3.0, 3.5),     // predicted 0.5
      op(4, 1, 1, OpCode::QkvForward, 0.0, 1.2),       // class 1: predicted 1.2
      op(4, 1, 9, OpCode::DpGradientReduce, 1.2, 2.0, Stream::DpComm),  // never measured
  };
  std::vector<TraceRecord> measured = {
      // class 0, rank 0, step 1 (times from the run start)
      op(0, 0, 0, OpCode::StepBegin, 10.0, 10.0),
      op(0, 0, 1, OpCode::QkvForward, 10.0, 10.8),
      op(0, 0, 2, OpCode::AttentionCoreForward, 10.8, 12.8),
      op(0, 0, 3, OpCode::MlpUpForward, 12.8, 13.8),
      // class 0, rank 1, step 1
      op(1, 0, 1, OpCode::QkvForward, 10.0, 11.0),
      op(1, 0, 2, OpCode::AttentionCoreForward, 11.0, 13.5),
      op(1, 0, 3, OpCode::MlpUpForward, 13.5, 14.5),
      // class 0, rank 0, step 2
      op(0, 0, 1, OpCode::QkvForward, 20.0, 20.9),
      op(0, 0, 2, OpCode::AttentionCoreForward, 20.9, 22.9),
      op(0, 0, 3, OpCode::MlpUpForward, 22.9, 23.9),
      // class 1, rank 4
      op(4, 1, 1, OpCode::QkvForward, 10.0, 11.0),
      op(4, 1, 5, OpCode::MlpDownForward, 11.0, 12.0),  // never predicted
  };
};

TEST_F(AlignmentFixture, PairsByRankClassWithMedianDurations) {
  const TraceAlignment alignment = align_traces(predicted, measured);
  // Class 0: op 0 marker (0 vs 0); op 1 measured {0.8, 1.0, 0.9} -> median 0.9;
  // op 2 measured {2.0, 2.5, 2.0} -> 2.0; op 3 measured {1.0, 1.0, 1.0} -> 1.0. Class 1: op 1 1.0.
  ASSERT_EQ(alignment.ops.size(), 5u);
  const OpAlignment& marker = alignment.ops[0];
  EXPECT_EQ(marker.code, OpCode::StepBegin);
  EXPECT_FALSE(marker.relative_error);

  const OpAlignment& qkv = alignment.ops[1];
  EXPECT_EQ(qkv.group, 0);
  EXPECT_EQ(qkv.op_id, 1u);
  EXPECT_EQ(qkv.code, OpCode::QkvForward);
  EXPECT_DOUBLE_EQ(qkv.predicted_s, 1.0);
  EXPECT_NEAR(qkv.measured_s, 0.9, 1e-12);
  EXPECT_EQ(qkv.predicted_samples, 1u);
  EXPECT_EQ(qkv.measured_samples, 3u);
  EXPECT_NEAR(*qkv.relative_error, (1.0 - 0.9) / 0.9, 1e-12);

  EXPECT_NEAR(alignment.ops[2].measured_s, 2.0, 1e-12);
  EXPECT_NEAR(*alignment.ops[2].relative_error, 0.0, 1e-12);
  EXPECT_NEAR(*alignment.ops[3].relative_error, -0.5, 1e-12);  // 0.5 predicted vs 1.0
  EXPECT_EQ(alignment.ops[4].group, 1);
  EXPECT_NEAR(*alignment.ops[4].relative_error, 0.2, 1e-12);   // 1.2 predicted vs 1.0

  ASSERT_EQ(alignment.only_predicted.size(), 1u);
  EXPECT_EQ(alignment.only_predicted[0], (OpKey{1, 9}));
  ASSERT_EQ(alignment.only_measured.size(), 1u);
  EXPECT_EQ(alignment.only_measured[0], (OpKey{1, 5}));
}

TEST_F(AlignmentFixture, MeanAndMinAggregation) {
  const auto mean = align_traces(predicted, measured, {AlignBy::RankClass, Aggregate::Mean});
  EXPECT_NEAR(mean.ops[2].measured_s, (2.0 + 2.5 + 2.0) / 3, 1e-12);
  const auto minimum = align_traces(predicted, measured, {AlignBy::RankClass, Aggregate::Min});
  EXPECT_NEAR(minimum.ops[1].measured_s, 0.8, 1e-12);
}

TEST_F(AlignmentFixture, WorstOpsSortedByAbsoluteRelativeError) {
  const TraceAlignment alignment = align_traces(predicted, measured);
  // |errors|: class0 op3 0.5, class1 op1 0.2, class0 op1 0.111, class0 op2 0; marker skipped.
  const auto worst = worst_ops(alignment, 3);
  ASSERT_EQ(worst.size(), 3u);
  EXPECT_EQ(worst[0].code, OpCode::MlpUpForward);
  EXPECT_EQ(worst[1].group, 1);
  EXPECT_EQ(worst[1].code, OpCode::QkvForward);
  EXPECT_EQ(worst[2].group, 0);
  EXPECT_EQ(worst[2].code, OpCode::QkvForward);
  EXPECT_EQ(worst_ops(alignment, 100).size(), 4u);
  // Ignoring ops measured shorter than 0.95 s leaves op 3 (1.0 s), class 1 op 1 and op 2.
  const auto long_ones = worst_ops(alignment, 100, 0.95);
  ASSERT_EQ(long_ones.size(), 3u);
  EXPECT_EQ(long_ones[0].code, OpCode::MlpUpForward);
  EXPECT_EQ(long_ones[2].code, OpCode::AttentionCoreForward);
}

TEST_F(AlignmentFixture, PairsByRankWhenAsked) {
  const auto alignment = align_traces(predicted, measured, {AlignBy::Rank, Aggregate::Median});
  // Rank 0 ops 0..3 and rank 4 op 1 pair; rank 1 (never predicted) ops 1..3 and rank 4 op 5
  // are measured only; rank 4 op 9 predicted only.
  EXPECT_EQ(alignment.ops.size(), 5u);
  EXPECT_EQ(alignment.only_measured.size(), 4u);
  EXPECT_EQ(alignment.only_predicted.size(), 1u);
  // Rank 0 op 2 over two steps: {2.0, 2.0}; op 1: {0.8, 0.9} -> median 0.85.
  EXPECT_NEAR(alignment.ops[1].measured_s, 0.85, 1e-12);
}

TEST_F(AlignmentFixture, DifferentProgramsAreRejected) {
  measured[1].code = OpCode::MlpDownForward;  // rank 0's op 1 is now a different op
  try {
    align_traces(predicted, measured);
    FAIL() << "expected CompareError";
  } catch (const CompareError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("op 1"), std::string::npos) << message;
    EXPECT_NE(message.find("qkv-fwd"), std::string::npos) << message;
    EXPECT_NE(message.find("mlp-down-fwd"), std::string::npos) << message;
  }
}

TEST_F(AlignmentFixture, SameKeyWithDifferentCodesAcrossTracesIsRejected) {
  measured[1].code = OpCode::MlpDownForward;  // rank 0's op 1, both steps
  measured[7].code = OpCode::MlpDownForward;
  try {
    align_traces(predicted, measured, {AlignBy::Rank, Aggregate::Median});
    FAIL() << "expected CompareError";
  } catch (const CompareError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("different programs"), std::string::npos) << message;
    EXPECT_NE(message.find("op 1 of rank 0"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace tandem::report
