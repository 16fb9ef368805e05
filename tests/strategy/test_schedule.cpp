// Pipeline schedules: every micro-batch's forward and backward exactly once per chunk, in a
// valid order, and the bubble fraction (p-1)/m (1F1B) and (p-1)/(v*m) (interleaved) measured
// by executing the schedules with unit costs.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "strategy/pipeline_schedule.hpp"

using namespace tandem::strategy;

namespace {

// Executes every stage's step list with forward cost tf and backward cost tb per chunk (data
// dependencies across stages, each stage one step at a time); returns the makespan.
double execute(Schedule schedule, int p, int m, int v, double tf, double tb) {
  std::vector<std::vector<PipelineStep>> steps;
  for (int stage = 0; stage < p; ++stage) steps.push_back(pipeline_schedule(schedule, p, stage, m, v));
  const int chunks = p * v;
  // finish[(forward, micro-batch, global chunk)]
  std::map<std::tuple<bool, int, int>, double> finish;
  std::vector<std::size_t> next(static_cast<std::size_t>(p), 0);
  std::vector<double> free_at(static_cast<std::size_t>(p), 0);
  bool progress = true;
  while (progress) {
    progress = false;
    for (int stage = 0; stage < p; ++stage) {
      auto& index = next[static_cast<std::size_t>(stage)];
      if (index >= steps[static_cast<std::size_t>(stage)].size()) continue;
      const PipelineStep step = steps[static_cast<std::size_t>(stage)][index];
      const int chunk = global_chunk(stage, step.chunk, p);
      double ready = free_at[static_cast<std::size_t>(stage)];
      std::tuple<bool, int, int> dependency;
      bool has_dependency = false;
      if (step.forward && chunk > 0) {
        dependency = {true, step.micro_batch, chunk - 1};
        has_dependency = true;
      } else if (!step.forward) {
        dependency = chunk + 1 < chunks ? std::make_tuple(false, step.micro_batch, chunk + 1)
                                        : std::make_tuple(true, step.micro_batch, chunk);
        has_dependency = true;
      }
      if (has_dependency) {
        auto it = finish.find(dependency);
        if (it == finish.end()) continue;
        ready = std::max(ready, it->second);
      }
      const double end = ready + (step.forward ? tf : tb);
      finish[{step.forward, step.micro_batch, chunk}] = end;
      free_at[static_cast<std::size_t>(stage)] = end;
      ++index;
      progress = true;
    }
  }
  for (int stage = 0; stage < p; ++stage)
    EXPECT_EQ(next[static_cast<std::size_t>(stage)], steps[static_cast<std::size_t>(stage)].size()) << "deadlock";
  return *std::max_element(free_at.begin(), free_at.end());
}

}  // namespace

TEST(Schedule, EveryForwardAndBackwardOnce) {
  for (Schedule schedule : {Schedule::GPipe, Schedule::OneFOneB, Schedule::Interleaved}) {
    for (int p : {1, 2, 4, 8}) {
      const int v = schedule == Schedule::Interleaved && p > 1 ? 3 : 1;
      for (int m : {p, 2 * p, 4 * p}) {
        for (int stage = 0; stage < p; ++stage) {
          std::set<std::tuple<bool, int, int>> seen;
          std::set<std::pair<int, int>> forwarded;
          for (const PipelineStep& step : pipeline_schedule(schedule, p, stage, m, v)) {
            EXPECT_TRUE(seen.insert({step.forward, step.micro_batch, step.chunk}).second);
            if (step.forward) forwarded.insert({step.micro_batch, step.chunk});
            else EXPECT_TRUE(forwarded.count({step.micro_batch, step.chunk})) << "backward before forward";
          }
          EXPECT_EQ(seen.size(), static_cast<std::size_t>(2 * m * v));
        }
      }
    }
  }
}

TEST(Schedule, OneFOneBWarmupIsPMinusStageMinusOne) {
  const auto steps = pipeline_schedule(Schedule::OneFOneB, 4, 0, 8, 1);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(steps[static_cast<std::size_t>(i)].forward);
  EXPECT_FALSE(steps[4].forward);
  EXPECT_EQ(peak_in_flight(steps), 4);
  EXPECT_EQ(peak_in_flight(pipeline_schedule(Schedule::OneFOneB, 4, 3, 8, 1)), 1);
  EXPECT_EQ(peak_in_flight(pipeline_schedule(Schedule::GPipe, 4, 3, 8, 1)), 8);
}

TEST(Schedule, OneFOneBBubbleIsPMinusOneOverM) {
  for (int p : {2, 4, 8}) {
    for (int m : {8, 16, 64}) {
      const double tf = 1, tb = 2;
      const double makespan = execute(Schedule::OneFOneB, p, m, 1, tf, tb);
      const double ideal = m * (tf + tb);
      EXPECT_NEAR((makespan - ideal) / ideal, static_cast<double>(p - 1) / m, 1e-12) << p << " " << m;
      EXPECT_NEAR(execute(Schedule::GPipe, p, m, 1, tf, tb), makespan, 1e-12);
    }
  }
}

TEST(Schedule, InterleavedBubbleIsPMinusOneOverVM) {
  for (int p : {2, 4, 8}) {
    for (int v : {2, 3}) {
      for (int m : {p, 2 * p, 8 * p}) {
        // Each chunk does 1/v of the stage's work.
        const double tf = 1.0 / v, tb = 2.0 / v;
        const double makespan = execute(Schedule::Interleaved, p, m, v, tf, tb);
        const double ideal = m * v * (tf + tb);
        EXPECT_NEAR((makespan - ideal) / ideal, static_cast<double>(p - 1) / (v * m), 1e-12)
            << "p=" << p << " v=" << v << " m=" << m;
      }
    }
  }
}
