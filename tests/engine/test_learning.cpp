// The synthetic-corpus learning test: the built-in tiny-cpu scenario (2 layers, 64 wide) trained on
// the built-in Markov-chain corpus must end with a validation loss close to the corpus's exact
// entropy rate (the minimum any model can reach) and far below a uniform guess.
#include <gtest/gtest.h>

#include <cmath>

#include "comm/communicator.hpp"
#include "engine/train/trainer.hpp"
#include "strategy/scenario.hpp"

namespace tandem::engine {
namespace {

TEST(EngineLearning, TinyModelApproachesTheEntropyOfTheSyntheticCorpus) {
  const strategy::Scenario builtin = strategy::load_builtin_scenario("tiny-cpu");
  // One kernel thread: CI runs tests side by side on two cores, where spinning OpenMP teams
  // only slow each other down (the result does not depend on the thread count).
  const strategy::Scenario scenario = strategy::scenario_from_document(
      strategy::with_override(builtin.document, "cluster.threads_per_rank", "1"), builtin.base_dir);
  auto world = comm::make_single_process_communicator();
  TrainOptions options;
  options.use_database = false;
  options.verbosity = 0;
  const TrainResult result = train(scenario, *world, options);
  ASSERT_TRUE(result.entropy_nats_per_token.has_value());
  ASSERT_TRUE(result.final_val_loss.has_value());
  const double entropy = *result.entropy_nats_per_token;
  const double val = *result.final_val_loss;
  std::printf("  entropy %.4f nats/token, validation loss %.4f after %d steps (ln 64 = %.4f)\n", entropy, val,
              result.steps, std::log(64.0));
  EXPECT_EQ(result.steps, scenario.training.steps);
  // Cross-entropy can never be below the entropy rate (up to the sampling noise of the
  // validation batches), and after the run it must be within 0.1 nats of it.
  EXPECT_GT(val, entropy - 0.05);
  EXPECT_LT(val, entropy + 0.10);
  EXPECT_LT(val, 0.5 * std::log(64.0));
}

}  // namespace
}  // namespace tandem::engine
