#pragma once
// The learning-rate schedule of a run (training.lr_schedule, warmup_steps, min_lr_ratio).
//   steps 1..warmup:   linear warm-up, lr = peak · step / warmup
//   after warm-up:     progress p = (step − warmup) / (steps − warmup) in [0, 1]
//     constant         peak
//     cosine           min + (peak − min) · (1 + cos(π p)) / 2
//     linear           peak − (peak − min) · p
//   with min = peak · min_lr_ratio. Steps count from 1.

#include "strategy/scenario.hpp"

namespace tandem::engine {

double scheduled_learning_rate(const strategy::TrainingSpec& training, double peak_lr, int step);

}  // namespace tandem::engine
