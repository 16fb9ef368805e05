// Batches: a pure function of (seed, step, sequence index, split) — the same global batch for any
// data-parallel layout, the same in every run, and given by the documented counter hash.

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/data/token_dataset.hpp"
#include "tests/engine_data/test_support.hpp"

namespace tandem::engine::data {
namespace {

using testing::TemporaryDirectory;

struct Sources {
  TemporaryDirectory directory;
  std::vector<DataOptions> options;
  std::vector<std::uint16_t> shard_tokens;
  Sources() {
    DataOptions synthetic;
    synthetic.model_vocab = 256;
    synthetic.seq_len = 32;
    synthetic.seed = 5;
    options.push_back(synthetic);

    std::mt19937 random(3);
    std::string text;
    for (int i = 0; i < 5000; ++i) text.push_back(static_cast<char>('a' + random() % 26));
    testing::write_bytes(directory / "text.txt", text);
    DataOptions text_options = synthetic;
    text_options.data = (directory / "text.txt").string();
    options.push_back(text_options);

    shard_tokens.resize(6000);
    for (auto& token : shard_tokens) token = static_cast<std::uint16_t>(random() % 50257);
    testing::write_bytes(directory / "shard.bin", testing::llmc_shard_bytes(shard_tokens));
    DataOptions shard_options = synthetic;
    shard_options.data = (directory / "shard.bin").string();
    shard_options.model_vocab = 50257;
    options.push_back(shard_options);
  }
};

TEST(Batches, GlobalBatchIsTheSameForEveryDataParallelLayout) {
  Sources sources;
  const std::int64_t global = 8, seq_len = 32;
  for (const DataOptions& options : sources.options) {
    const TokenDataset dataset = TokenDataset::open(options);
    for (const std::int64_t step : {1, 2, 17, 1000}) {
      const Batch whole = dataset.global_sequences(step, 0, global, seq_len);
      for (const std::int64_t dp : {1, 2, 4}) {
        std::vector<std::int32_t> inputs, targets;
        const std::int64_t per_rank = global / dp;
        for (std::int64_t rank = 0; rank < dp; ++rank) {
          const Batch slice = dataset.global_sequences(step, rank * per_rank, per_rank, seq_len);
          EXPECT_EQ(slice.sequences, per_rank);
          inputs.insert(inputs.end(), slice.inputs.begin(), slice.inputs.end());
          targets.insert(targets.end(), slice.targets.begin(), slice.targets.end());
        }
        EXPECT_EQ(inputs, whole.inputs) << options.data << " step " << step << " dp " << dp;
        EXPECT_EQ(targets, whole.targets) << options.data << " step " << step << " dp " << dp;
      }
      // Validation batches too.
      const Batch validation = dataset.validation_batch(step, global, seq_len);
      const Batch second_half = dataset.validation_sequences(step, global / 2, global / 2, seq_len);
      EXPECT_TRUE(std::equal(second_half.inputs.begin(), second_half.inputs.end(),
                             validation.inputs.begin() + (global / 2) * seq_len));
    }
  }
}

TEST(Batches, DeterministicAcrossOpeningsAndDifferentAcrossStepsAndSeeds) {
  Sources sources;
  for (const DataOptions& options : sources.options) {
    const auto first = std::make_unique<TokenDataset>(TokenDataset::open(options));
    const Batch a = first->global_sequences(7, 0, 4, 32);
    const Batch validation = first->validation_batch(3, 4, 32);
    const TokenDataset second = TokenDataset::open(options);  // a "new run"
    EXPECT_EQ(second.global_sequences(7, 0, 4, 32).inputs, a.inputs);
    EXPECT_EQ(second.validation_batch(3, 4, 32).targets, validation.targets);
    EXPECT_NE(second.global_sequences(8, 0, 4, 32).inputs, a.inputs);
    EXPECT_NE(second.validation_batch(7, 4, 32).inputs, a.inputs);  // validation != training
    DataOptions other_seed = options;
    other_seed.seed = options.seed + 1;
    EXPECT_NE(TokenDataset::open(other_seed).global_sequences(7, 0, 4, 32).inputs, a.inputs);
    // A shorter seq_len than the dataset was opened with is honoured.
    const Batch short_batch = second.global_sequences(7, 0, 3, 5);
    EXPECT_EQ(short_batch.inputs.size(), 15u);
    EXPECT_EQ(short_batch.seq_len, 5);
  }
}

TEST(Batches, FileOffsetsFollowTheDocumentedCounterHash) {
  Sources sources;
  const DataOptions& options = sources.options[2];  // the shard: 5400 train, 600 validation
  const TokenDataset dataset = TokenDataset::open(options);
  for (const std::int64_t step : {1, 9, 123456}) {
    const Batch batch = dataset.global_sequences(step, 3, 2, 32);
    for (std::int64_t i = 0; i < 2; ++i) {
      const std::uint64_t key = testing::reference_counter_hash(
          options.seed, 0x545241494EULL, static_cast<std::uint64_t>(step), 3 + i);
      const std::uint64_t offset = testing::reference_below(key, 5400 - 32);
      for (int t = 0; t < 32; ++t) {
        EXPECT_EQ(batch.inputs[i * 32 + t], sources.shard_tokens[offset + t]);
        EXPECT_EQ(batch.targets[i * 32 + t], sources.shard_tokens[offset + t + 1]);
      }
    }
    const Batch validation = dataset.validation_sequences(step, 1, 1, 32);
    const std::uint64_t key = testing::reference_counter_hash(
        options.seed, 0x56414C4944ULL, static_cast<std::uint64_t>(step), 1);
    const std::uint64_t offset = 5400 + testing::reference_below(key, 600 - 32);
    for (int t = 0; t < 32; ++t) EXPECT_EQ(validation.inputs[t], sources.shard_tokens[offset + t]);
  }
}

TEST(Batches, SplitMix64MatchesItsPublishedReferenceOutputs) {
  // splitmix64 seeded with 0 (Vigna's reference code): the first three outputs.
  EXPECT_EQ(testing::reference_mix(0), 0xE220A8397B1DCDAFULL);
  std::uint64_t state = 0;
  auto next = [&state] {
    state += 0x9E3779B97F4A7C15ULL;
    return testing::reference_splitmix_output(state);
  };
  EXPECT_EQ(next(), 0xE220A8397B1DCDAFULL);
  EXPECT_EQ(next(), 0x6E789E6AA1B965F4ULL);
  EXPECT_EQ(next(), 0x06C45D188009454FULL);
}

TEST(Batches, BadArgumentsAreRejected) {
  Sources sources;
  const TokenDataset dataset = TokenDataset::open(sources.options[1]);
  EXPECT_THROW(dataset.global_sequences(1, 0, 2, 33), std::invalid_argument);  // > seq_len
  EXPECT_THROW(dataset.global_sequences(1, 0, 2, 0), std::invalid_argument);
  EXPECT_THROW(dataset.global_sequences(1, -1, 2, 8), std::invalid_argument);
  std::vector<std::int32_t> too_small(3);
  EXPECT_THROW(dataset.fill(Split::Train, 1, 0, 1, 8, too_small, too_small), std::invalid_argument);
}

TEST(Batches, DataPositionRoundTripsAndRefusesOtherData) {
  Sources sources;
  const TokenDataset synthetic = TokenDataset::open(sources.options[0]);
  const TokenDataset text = TokenDataset::open(sources.options[1]);
  const auto bytes = synthetic.encode_position(40);
  EXPECT_EQ(synthetic.decode_position(bytes), 40);
  EXPECT_EQ(TokenDataset::open(sources.options[0]).decode_position(bytes), 40);
  try {
    text.decode_position(bytes);
    ADD_FAILURE() << "other data accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("trained on other data (synthetic"), std::string::npos)
        << e.what();
  }
  DataOptions other_seed = sources.options[1];
  other_seed.seed = 77;
  try {
    TokenDataset::open(other_seed).decode_position(text.encode_position(3));
    ADD_FAILURE() << "another seed accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("training.seed 5 but this run has seed 77"),
              std::string::npos)
        << e.what();
  }
  auto truncated = bytes;
  truncated.pop_back();
  EXPECT_THROW(synthetic.decode_position(truncated), DataError);
}

}  // namespace
}  // namespace tandem::engine::data
