// The learning-rate schedules against their closed forms (linear warm-up, then constant, cosine
// or linear decay to min_lr_ratio · peak at the last step).
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "engine/train/lr_schedule.hpp"

namespace tandem::engine {
namespace {

strategy::TrainingSpec spec(strategy::LrSchedule schedule) {
  strategy::TrainingSpec t;
  t.steps = 110;
  t.warmup_steps = 10;
  t.min_lr_ratio = 0.1;
  t.lr_schedule = schedule;
  return t;
}

TEST(EngineLrSchedule, WarmupThenCosineLinearOrConstant) {
  const double peak = 6e-4;
  for (auto schedule : {strategy::LrSchedule::Constant, strategy::LrSchedule::Cosine, strategy::LrSchedule::Linear}) {
    const strategy::TrainingSpec t = spec(schedule);
    EXPECT_DOUBLE_EQ(scheduled_learning_rate(t, peak, 1), peak / 10);
    EXPECT_DOUBLE_EQ(scheduled_learning_rate(t, peak, 5), peak / 2);
    EXPECT_DOUBLE_EQ(scheduled_learning_rate(t, peak, 10), peak);
  }
  const strategy::TrainingSpec cosine = spec(strategy::LrSchedule::Cosine);
  // Halfway through the decay (step 60 of 10..110): min + (peak - min)/2.
  EXPECT_NEAR(scheduled_learning_rate(cosine, peak, 60), 0.1 * peak + 0.45 * peak, 1e-15);
  EXPECT_NEAR(scheduled_learning_rate(cosine, peak, 35),
              0.1 * peak + 0.9 * peak * 0.5 * (1 + std::cos(std::numbers::pi * 0.25)), 1e-15);
  EXPECT_NEAR(scheduled_learning_rate(cosine, peak, 110), 0.1 * peak, 1e-15);
  const strategy::TrainingSpec linear = spec(strategy::LrSchedule::Linear);
  EXPECT_NEAR(scheduled_learning_rate(linear, peak, 35), peak - 0.9 * peak * 0.25, 1e-15);
  EXPECT_NEAR(scheduled_learning_rate(linear, peak, 110), 0.1 * peak, 1e-15);
  EXPECT_DOUBLE_EQ(scheduled_learning_rate(spec(strategy::LrSchedule::Constant), peak, 100), peak);
}

}  // namespace
}  // namespace tandem::engine
