#include "engine/train/lr_schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace tandem::engine {

double scheduled_learning_rate(const strategy::TrainingSpec& training, double peak_lr, int step) {
  const int warmup = training.warmup_steps;
  if (warmup > 0 && step <= warmup) return peak_lr * step / warmup;
  const double min_lr = peak_lr * training.min_lr_ratio;
  const int decay_steps = training.steps - warmup;
  const double progress =
      decay_steps > 0 ? std::clamp(static_cast<double>(step - warmup) / decay_steps, 0.0, 1.0) : 1.0;
  switch (training.lr_schedule) {
    case strategy::LrSchedule::Constant:
      return peak_lr;
    case strategy::LrSchedule::Cosine:
      return min_lr + (peak_lr - min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
    case strategy::LrSchedule::Linear:
      return peak_lr - (peak_lr - min_lr) * progress;
  }
  return peak_lr;
}

}  // namespace tandem::engine
