#pragma once
// The token dataset `engine train` reads, opened from the scenario's `training.data`:
//
//   synthetic      the built-in corpus: a seeded first-order Markov chain (markov_chain.hpp)
//                  whose entropy rate is known exactly (entropy_nats_per_token()).
//   <text file>    byte-level tokens: every byte of the file is one token (vocabulary 256).
//   <llm.c shard>  a GPT-2 token shard as written by llm.c's data scripts: a header of 256
//                  little-endian int32 (header[0] = magic 20240520, header[1] = version 1,
//                  header[2] = token count N), then N little-endian uint16 tokens; vocabulary
//                  50257 unless DataOptions::shard_vocab says otherwise.
//
// The format is detected from the content, never from the name: a file whose first int32 is
// 20240520 is a shard (and must then be a valid one); any other file is text, except that a file
// holding a NUL byte in its first 1024 bytes is refused as binary (a text corpus never has one,
// a damaged shard nearly always does). A llama-3 shard (magic 20240801, uint32 tokens) is refused
// by name. A file is mapped into memory (mmap, read-only) once, when the dataset is opened.
//
// Splits.
//   files      the last 10% of the tokens (floor(N / 10)) are the validation split, the first
//              90% the training split. A sequence never crosses the boundary, so training and
//              validation sequences never share a token position. Each split must hold at least
//              seq_len + 1 tokens, so a file needs at least 10 * (seq_len + 1) tokens.
//   synthetic  training and validation sequences are independent sample paths of the same chain
//              (different counter-hash streams of the same seed).
//
// Batches are a pure function of (seed, split, step, sequence index): sequence j of the global
// batch of step t (j counted over the whole global batch, across data-parallel ranks) is
//   files      the seq_len + 1 tokens starting at offset
//                uniform_below(counter_hash(seed, split tag, t, j), split_tokens - seq_len)
//              of its split;
//   synthetic  seq_len + 1 steps of the chain drawn from CounterStream(counter_hash(seed, split
//              tag, t, j)): first token from the stationary distribution, then one transition per
//              token.
// (counter_hash and friends: counter_hash.hpp; split tags: kTrainTag, kValidationTag.) A
// data-parallel rank asks for its slice [first_sequence, first_sequence + count); the union of
// the slices is the same global batch whatever the layout, and a resumed run needs only the step.
// Validation batches are indexed the same way by a batch index instead of a step.
//
// Inputs are tokens 0..seq_len-1 of each sequence, targets tokens 1..seq_len (inputs shifted by
// one), both [sequence][position] row-major int32 — what the embedding and cross-entropy kernels
// take.
//
// Errors a user can cause (missing file, malformed shard, too short a file, tokens outside the
// model's vocabulary) throw DataError with one message that starts "training.data: ", names the
// file and says what is wrong; the caller prints it and exits non-zero.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace tandem::strategy {
struct ModelSpec;
struct TrainingSpec;
}  // namespace tandem::strategy

namespace tandem::engine::data {

class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr std::int32_t kLlmcShardMagic = 20240520;
inline constexpr std::int32_t kLlmcShardVersion = 1;
inline constexpr std::int32_t kLlmcLlama3ShardMagic = 20240801;
inline constexpr std::size_t kLlmcHeaderInts = 256;
inline constexpr std::int64_t kGpt2Vocab = 50257;

// Split tags of the counter hash.
inline constexpr std::uint64_t kTrainTag = 0x545241494EULL;            // "TRAIN"
inline constexpr std::uint64_t kValidationTag = 0x56414C4944ULL;       // "VALID"

// Synthetic corpus defaults. V = min(model vocab, 64) symbols, each with K = 4 successors.
// Why these: the chain has 256 transitions to learn (a bigram table), and its entropy rate —
// about 1.08 nats, against ln 64 = 4.16 for a uniform guess — leaves a wide, unambiguous gap
// between "learned" and "not learned". Measured with a proxy of a tiny GPT's bigram path (a
// 64-wide embedding, LayerNorm and an untied head, Adam with 20 warm-up steps and a cosine
// schedule, 8 x 64 tokens per step): after 200 steps the validation loss is 0.046 nats above
// the entropy at lr 3e-3 (0.005 at lr 1e-2) for V = 64, but 0.17 (0.043) for V = 256, whose
// 4x as many rows each get 4x fewer updates. A 2-layer, 64-wide GPT holds that proxy (attention
// can attend to the current token), so "validation loss within 0.1 nats of the entropy after
// 200 steps" is a realistic test for V = 64.
inline constexpr int kDefaultSyntheticVocab = 64;
inline constexpr int kDefaultSyntheticSuccessors = 4;

struct SyntheticOptions {
  int vocab = 0;  // V; 0 = min(model vocab, kDefaultSyntheticVocab)
  int successors = kDefaultSyntheticSuccessors;  // K
};

struct DataOptions {
  std::string data = "synthetic";  // training.data: "synthetic" or a file path
  std::uint64_t seed = 1234;       // training.seed
  std::int64_t model_vocab = 0;    // model.vocab: every token must be below it (required, > 0)
  std::int64_t seq_len = 0;        // model.seq_len: the longest sequence asked for (required, > 0)
  std::int64_t shard_vocab = kGpt2Vocab;  // vocabulary of an llm.c shard's tokenizer
  SyntheticOptions synthetic;

  // training.data, training.seed, model.vocab, model.seq_len of a scenario.
  static DataOptions from_scenario(const strategy::TrainingSpec& training,
                                   const strategy::ModelSpec& model);
};

enum class DataFormat { Synthetic, Text, LlmcShard };
enum class Split { Train, Validation };

struct Batch {
  std::int64_t sequences = 0;
  std::int64_t seq_len = 0;
  std::vector<std::int32_t> inputs;   // [sequences][seq_len]
  std::vector<std::int32_t> targets;  // [sequences][seq_len]: inputs shifted by one
};

class MarkovChain;

class TokenDataset {
 public:
  // Opens and validates training.data (see above). Throws DataError.
  static TokenDataset open(const DataOptions& options);
  ~TokenDataset();
  TokenDataset(TokenDataset&&) noexcept;
  TokenDataset& operator=(TokenDataset&&) noexcept;

  // Sequences [first_sequence, first_sequence + count) of the global training batch of `step`.
  // seq_len must be in [1, options.seq_len]. Throws std::invalid_argument otherwise.
  Batch global_sequences(std::int64_t step, std::int64_t first_sequence, std::int64_t count,
                         std::int64_t seq_len) const;
  // The same from the validation split: sequences [first_sequence, first_sequence + count) of
  // validation batch `index`.
  Batch validation_sequences(std::int64_t index, std::int64_t first_sequence, std::int64_t count,
                             std::int64_t seq_len) const;
  // The whole validation batch `index` of `count` sequences (first_sequence 0).
  Batch validation_batch(std::int64_t index, std::int64_t count, std::int64_t seq_len) const;
  // Without allocation: inputs and targets must each hold count * seq_len elements.
  void fill(Split split, std::int64_t step_or_index, std::int64_t first_sequence,
            std::int64_t count, std::int64_t seq_len, std::span<std::int32_t> inputs,
            std::span<std::int32_t> targets) const;

  DataFormat format() const;
  // The format's vocabulary: V (synthetic), 256 (text), shard_vocab (llm.c shard).
  std::int64_t vocab() const;
  // The largest token the data holds (synthetic: V - 1).
  std::int32_t max_token() const;
  // Token counts of the two splits (files); nullopt for synthetic (unbounded).
  std::optional<std::int64_t> train_tokens() const;
  std::optional<std::int64_t> validation_tokens() const;
  // Synthetic only: the exact minimal expected cross-entropy per predicted token (nats).
  std::optional<double> entropy_nats_per_token() const;
  // The chain of the synthetic corpus (nullptr for files).
  const MarkovChain* chain() const;
  // One line for logs: "synthetic Markov chain (V=64, 4 successors per symbol, seed 1234,
  // entropy 1.0712 nats/token)", "text file '/data/input.txt' (1115394 byte tokens: 1003855
  // train, 111539 validation)", ...
  std::string describe() const;
  // What the data is, independent of where the file lives: format, parameters or token count and
  // a hash of the content's first and last MiB. A checkpoint's data position records it.
  std::string identity() const;
  std::uint64_t seed() const;

  // The data position a checkpoint records: after `steps_done` optimizer steps the next batch is
  // step steps_done + 1. Bytes: "TNDDATA1", i64 steps_done, u64 seed, u64 length + identity.
  std::vector<std::uint8_t> encode_position(std::int64_t steps_done) const;
  // steps_done of an encoded position. Throws DataError when the bytes are not a data position
  // or were written for other data or another seed (the message names both).
  std::int64_t decode_position(std::span<const std::uint8_t> bytes) const;

 private:
  struct State;
  explicit TokenDataset(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// The message DataError carries when the data's tokens do not fit the model, e.g.
// "training.data: the shard's tokens go up to 50256 but model.vocab is 256". Exposed for tests.
std::string vocabulary_mismatch_message(DataFormat format, std::int32_t max_token,
                                        std::int64_t model_vocab);

}  // namespace tandem::engine::data
