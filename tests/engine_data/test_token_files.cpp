// Text files and llm.c shards: what goes in comes out, and every malformed file is refused with
// one message naming the file and the problem.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "engine/data/token_dataset.hpp"
#include "tests/engine_data/test_support.hpp"

namespace tandem::engine::data {
namespace {

using testing::llmc_shard_bytes;
using testing::TemporaryDirectory;
using testing::write_bytes;

DataOptions options_for(const std::filesystem::path& path, std::int64_t model_vocab,
                        std::int64_t seq_len) {
  DataOptions options;
  options.data = path.string();
  options.seed = 42;
  options.model_vocab = model_vocab;
  options.seq_len = seq_len;
  return options;
}

// The message of the DataError that opening `options` throws ("" if none).
std::string refusal(const DataOptions& options) {
  try {
    TokenDataset::open(options);
  } catch (const DataError& e) {
    return e.what();
  }
  return "";
}

// Offsets o in [begin, end - seq_len) where file[o..o+seq_len] matches the sequence.
std::vector<std::int64_t> matching_offsets(const std::vector<std::int32_t>& file,
                                           const std::int32_t* inputs, const std::int32_t* targets,
                                           std::int64_t seq_len, std::int64_t begin,
                                           std::int64_t end) {
  std::vector<std::int64_t> found;
  for (std::int64_t o = begin; o + seq_len + 1 <= end; ++o) {
    bool same = true;
    for (std::int64_t t = 0; t < seq_len && same; ++t) {
      same = file[o + t] == inputs[t] && file[o + t + 1] == targets[t];
    }
    if (same) found.push_back(o);
  }
  return found;
}

TEST(TokenFiles, TextBytesComeOutAsTokensIncludingHighBytes) {
  TemporaryDirectory directory;
  std::mt19937 random(7);
  std::string text;
  for (int i = 0; i < 3000; ++i) text.push_back(static_cast<char>(1 + random() % 255));
  text[100] = static_cast<char>(0xE2);  // UTF-8 lead byte: token 226, not a negative char
  const auto path = directory / "corpus.txt";
  write_bytes(path, text);
  std::vector<std::int32_t> expected;
  for (const char c : text) expected.push_back(static_cast<unsigned char>(c));

  const std::int64_t seq_len = 16;
  const TokenDataset dataset = TokenDataset::open(options_for(path, 256, seq_len));
  EXPECT_EQ(dataset.format(), DataFormat::Text);
  EXPECT_EQ(dataset.vocab(), 256);
  EXPECT_EQ(dataset.train_tokens(), 2700);
  EXPECT_EQ(dataset.validation_tokens(), 300);
  EXPECT_EQ(dataset.max_token(), *std::max_element(expected.begin(), expected.end()));
  EXPECT_FALSE(dataset.entropy_nats_per_token().has_value());

  std::int64_t lowest = 1 << 30, highest = -1;
  for (std::int64_t step = 1; step <= 60; ++step) {
    const Batch batch = dataset.global_sequences(step, 0, 8, seq_len);
    ASSERT_EQ(batch.inputs.size(), 8u * seq_len);
    for (int s = 0; s < 8; ++s) {
      const auto found = matching_offsets(expected, &batch.inputs[s * seq_len],
                                          &batch.targets[s * seq_len], seq_len, 0, 2700);
      ASSERT_FALSE(found.empty()) << "step " << step << " sequence " << s
                                  << " is not a window of the training split";
      lowest = std::min(lowest, found.front());
      highest = std::max(highest, found.front());
    }
  }
  // 480 uniform offsets over [0, 2684): both ends of the split are reached.
  EXPECT_LT(lowest, 60);
  EXPECT_GT(highest, 2684 - 60);

  // Byte 0xE2 at position 100 appears as token 226 whenever a window covers it.
  for (std::int64_t step = 1; step < 3000; ++step) {
    const Batch batch = dataset.global_sequences(step, 0, 1, seq_len);
    const auto found = matching_offsets(expected, batch.inputs.data(), batch.targets.data(),
                                        seq_len, 0, 2700);
    if (found.front() <= 100 && 100 < found.front() + seq_len) {
      EXPECT_EQ(batch.inputs[100 - found.front()], 226);
      break;
    }
  }
}

TEST(TokenFiles, ValidationSequencesComeFromTheLastTenPercentOnly) {
  TemporaryDirectory directory;
  // Shard tokens equal to their position: a token says where it was read.
  std::vector<std::uint16_t> tokens(20000);
  for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<std::uint16_t>(i);
  const auto path = directory / "positions.bin";
  write_bytes(path, llmc_shard_bytes(tokens));
  DataOptions options = options_for(path, 65536, 32);
  options.shard_vocab = 65536;
  const TokenDataset dataset = TokenDataset::open(options);
  EXPECT_EQ(dataset.train_tokens(), 18000);
  EXPECT_EQ(dataset.validation_tokens(), 2000);
  for (std::int64_t index = 0; index < 200; ++index) {
    const Batch train = dataset.global_sequences(index + 1, 0, 4, 32);
    const Batch validation = dataset.validation_batch(index, 4, 32);
    for (std::size_t i = 0; i < train.inputs.size(); ++i) {
      ASSERT_LT(train.targets[i], 18000);  // the last target of a training window stays in it
      ASSERT_EQ(train.targets[i], train.inputs[i] + 1);
      ASSERT_GE(validation.inputs[i], 18000);
      ASSERT_EQ(validation.targets[i], validation.inputs[i] + 1);
    }
  }
}

TEST(TokenFiles, LlmcShardWrittenByTheTestIsReadBack) {
  TemporaryDirectory directory;
  std::mt19937 random(11);
  std::vector<std::uint16_t> tokens(5000);
  for (auto& token : tokens) token = static_cast<std::uint16_t>(random() % 50257);
  tokens[1234] = 50256;  // <|endoftext|>, the largest GPT-2 token
  const auto path = directory / "tokens.dat";  // the extension does not matter
  write_bytes(path, llmc_shard_bytes(tokens));
  std::vector<std::int32_t> expected(tokens.begin(), tokens.end());

  const TokenDataset dataset = TokenDataset::open(options_for(path, 50304, 64));
  EXPECT_EQ(dataset.format(), DataFormat::LlmcShard);
  EXPECT_EQ(dataset.vocab(), 50257);
  EXPECT_EQ(dataset.max_token(), 50256);
  EXPECT_EQ(dataset.train_tokens(), 4500);
  EXPECT_EQ(dataset.validation_tokens(), 500);
  for (std::int64_t step = 1; step <= 20; ++step) {
    const Batch batch = dataset.global_sequences(step, 0, 4, 64);
    for (int s = 0; s < 4; ++s) {
      EXPECT_FALSE(matching_offsets(expected, &batch.inputs[s * 64], &batch.targets[s * 64], 64,
                                    0, 4500)
                       .empty());
    }
    const Batch validation = dataset.validation_batch(step, 2, 64);
    for (int s = 0; s < 2; ++s) {
      EXPECT_FALSE(matching_offsets(expected, &validation.inputs[s * 64],
                                    &validation.targets[s * 64], 64, 4500, 5000)
                       .empty());
    }
  }
}

TEST(TokenFiles, EveryMalformedShardIsRefusedWithItsReason) {
  TemporaryDirectory directory;
  std::vector<std::uint16_t> tokens(3000, 7);
  struct Case {
    std::string name;
    std::string bytes;
    std::string reason;
  };
  std::string truncated_header = llmc_shard_bytes(tokens).substr(0, 600);
  std::string odd = llmc_shard_bytes(tokens) + "x";
  std::vector<std::uint16_t> outside = tokens;
  outside[77] = 60000;
  std::string binary = llmc_shard_bytes(tokens, /*magic=*/12345);
  const std::vector<Case> cases = {
      {"version.bin", llmc_shard_bytes(tokens, 20240520, 2), "version 2 in header[1], expected 1"},
      {"truncated.bin", llmc_shard_bytes(tokens, 20240520, 1, 4000),
       "the header says 4000 tokens but the file holds only 3000 (truncated)"},
      {"empty.bin", llmc_shard_bytes({}, 20240520, 1, 0), "holds no tokens (empty shard)"},
      {"short-header.bin", truncated_header, "shorter than the 1024-byte header (truncated)"},
      {"longer.bin", llmc_shard_bytes(tokens, 20240520, 1, 2000),
       "the header says 2000 tokens (4000 bytes after the header) but 6000 bytes follow it"},
      {"odd.bin", odd, "but 6001 bytes follow it"},
      {"negative.bin", llmc_shard_bytes(tokens, 20240520, 1, -5), "negative token count -5"},
      {"outside.bin", llmc_shard_bytes(outside),
       "token 60000 at position 77 is outside the tokenizer's vocabulary of 50257"},
      {"bad-magic.bin", binary,
       "is neither a text file (it holds NUL bytes) nor an llm.c token shard (its first int32 is "
       "12345, not the magic 20240520)"},
      {"llama3.bin", llmc_shard_bytes(tokens, 20240801),
       "is an llm.c llama-3 shard (magic 20240801, uint32 tokens)"},
  };
  for (const Case& c : cases) {
    const auto path = directory / c.name;
    write_bytes(path, c.bytes);
    const std::string message = refusal(options_for(path, 65536, 16));
    EXPECT_NE(message.find("training.data: "), std::string::npos) << c.name << ": " << message;
    EXPECT_NE(message.find(path.string()), std::string::npos) << c.name << ": " << message;
    EXPECT_NE(message.find(c.reason), std::string::npos)
        << c.name << ": expected \"" << c.reason << "\" in \"" << message << "\"";
  }
}

TEST(TokenFiles, MissingEmptyAndDirectoryPathsAreRefused) {
  TemporaryDirectory directory;
  const auto empty = directory / "empty.txt";
  write_bytes(empty, "");
  EXPECT_NE(refusal(options_for(empty, 256, 8)).find("is empty"), std::string::npos);
  const auto missing = directory / "missing.txt";
  EXPECT_NE(refusal(options_for(missing, 256, 8)).find("does not exist"), std::string::npos);
  EXPECT_NE(refusal(options_for(directory / "", 256, 8)).find("is a directory"), std::string::npos);
}

TEST(TokenFiles, TextTooShortForOneSequenceInEachSplitIsRefused) {
  TemporaryDirectory directory;
  const auto path = directory / "short.txt";
  write_bytes(path, std::string(600, 'a'));  // validation split: 60 bytes < 65
  const std::string message = refusal(options_for(path, 256, 64));
  EXPECT_NE(message.find("is too short"), std::string::npos) << message;
  EXPECT_NE(message.find("validation split (the last 10%) 60"), std::string::npos) << message;
  EXPECT_NE(message.find("at least 650 bytes"), std::string::npos) << message;
  // Exactly 10 * (seq_len + 1) bytes is enough.
  write_bytes(path, std::string(650, 'a'));
  EXPECT_NO_THROW(TokenDataset::open(options_for(path, 256, 64)));
}

TEST(TokenFiles, TokensBeyondTheModelVocabularyAreRefused) {
  TemporaryDirectory directory;
  std::vector<std::uint16_t> tokens(3000, 3);
  tokens[10] = 50256;
  const auto shard = directory / "gpt2.bin";
  write_bytes(shard, llmc_shard_bytes(tokens));
  const std::string message = refusal(options_for(shard, 256, 16));
  EXPECT_EQ(message.rfind("training.data: the shard's tokens go up to 50256 but model.vocab is 256", 0), 0u)
      << message;
  EXPECT_EQ(message, vocabulary_mismatch_message(DataFormat::LlmcShard, 50256, 256));

  const auto text = directory / "text.txt";
  write_bytes(text, std::string(3000, 'z'));  // byte 122
  EXPECT_EQ(refusal(options_for(text, 100, 16))
                .rfind("training.data: the text file's tokens go up to 122 but model.vocab is 100", 0),
            0u);
  EXPECT_NO_THROW(TokenDataset::open(options_for(text, 123, 16)));

  DataOptions synthetic;
  synthetic.model_vocab = 32;
  synthetic.seq_len = 8;
  synthetic.synthetic.vocab = 64;
  EXPECT_EQ(refusal(synthetic).rfind(
                "training.data: the synthetic corpus's tokens go up to 63 but model.vocab is 32", 0),
            0u);
}

TEST(TokenFiles, TinyShakespeareFromSharedData) {
  const std::filesystem::path folder =
      std::filesystem::path(TANDEM_SHARED_DATA_DIR) / "data" / "tinyshakespeare";
  std::filesystem::path path;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(folder, error)) {
    if (entry.is_regular_file() && entry.file_size() > 100000) path = entry.path();
  }
  if (path.empty()) {
    GTEST_SKIP() << "shared data not found: no text file of more than 100 kB in " << folder
                 << " (a fresh clone has no ../shared)";
  }
  const TokenDataset dataset = TokenDataset::open(options_for(path, 256, 256));
  EXPECT_EQ(dataset.format(), DataFormat::Text);
  const auto size = static_cast<std::int64_t>(std::filesystem::file_size(path));
  EXPECT_EQ(*dataset.train_tokens() + *dataset.validation_tokens(), size);
  const Batch batch = dataset.global_sequences(1, 0, 4, 256);
  for (const std::int32_t token : batch.inputs) EXPECT_LT(token, 128);  // plain English text
}

}  // namespace
}  // namespace tandem::engine::data
