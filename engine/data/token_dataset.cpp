#include "engine/data/token_dataset.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <utility>

#include "engine/data/counter_hash.hpp"
#include "engine/data/markov_chain.hpp"
#include "strategy/scenario.hpp"

static_assert(std::endian::native == std::endian::little,
              "llm.c shards and data positions are little-endian; add byte swapping for this host");

namespace tandem::engine::data {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kPositionMagic = "TNDDATA1";

// Appends piecewise: `"'" + text + "'"` trips GCC 12's false -Wrestrict (GCC bug 105651).
std::string quoted(const fs::path& path) {
  std::string text;
  text += '\'';
  text += path.string();
  text += '\'';
  return text;
}

[[noreturn]] void fail(const std::string& message) { throw DataError("training.data: " + message); }

// A read-only memory mapping of a whole file, unmapped on destruction.
class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const fs::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const int error = errno;
      if (error == ENOENT) fail(quoted(path) + " does not exist (give 'synthetic' or a path to a text file or an llm.c .bin token shard)");
      fail("cannot open " + quoted(path) + ": " + std::strerror(error));
    }
    struct stat status {};
    if (::fstat(fd, &status) != 0) {
      const int error = errno;
      ::close(fd);
      fail("cannot read " + quoted(path) + ": " + std::strerror(error));
    }
    if (S_ISDIR(status.st_mode)) {
      ::close(fd);
      fail(quoted(path) + " is a directory, not a text file or an llm.c token shard");
    }
    size_ = static_cast<std::size_t>(status.st_size);
    if (size_ > 0) {
      void* address = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (address == MAP_FAILED) {
        const int error = errno;
        ::close(fd);
        fail("cannot map " + quoted(path) + " into memory: " + std::strerror(error));
      }
      data_ = static_cast<const std::uint8_t*>(address);
    }
    ::close(fd);
  }
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<std::uint8_t*>(data_), size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

std::int32_t read_int32(const std::uint8_t* bytes, std::size_t index) {
  std::int32_t value;
  std::memcpy(&value, bytes + 4 * index, sizeof value);
  return value;
}

std::string format_name(DataFormat format) {
  switch (format) {
    case DataFormat::Synthetic: return "synthetic corpus";
    case DataFormat::Text: return "text file";
    case DataFormat::LlmcShard: return "shard";
  }
  return "data";
}

// FNV-1a 64 (offset basis 14695981039346656037, prime 1099511628211).
std::uint64_t fnv1a64(std::string_view bytes) {
  std::uint64_t hash = 14695981039346656037ULL;
  for (const unsigned char c : bytes) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  return hash;
}

std::string hex64(std::uint64_t value) {
  char text[20];
  std::snprintf(text, sizeof text, "%016" PRIx64, value);
  return text;
}

}  // namespace

std::string vocabulary_mismatch_message(DataFormat format, std::int32_t max_token,
                                        std::int64_t model_vocab) {
  std::string message = "training.data: the " + format_name(format) + "'s tokens go up to " +
                        std::to_string(max_token) + " but model.vocab is " +
                        std::to_string(model_vocab);
  if (format == DataFormat::Text) {
    message += " (byte-level text needs model.vocab >= " + std::to_string(max_token + 1) +
               "; 256 covers every byte)";
  } else if (format == DataFormat::LlmcShard) {
    message += " (an llm.c GPT-2 shard needs model.vocab >= " + std::to_string(max_token + 1) +
               ", usually 50257 or the padded 50304)";
  } else {
    message += " (set a smaller synthetic vocabulary or a larger model.vocab)";
  }
  return message;
}

struct TokenDataset::State {
  DataOptions options;
  DataFormat format = DataFormat::Synthetic;
  fs::path path;
  std::unique_ptr<MappedFile> file;
  // Files: tokens of the file, as bytes (text) or uint16 (shard), and the split.
  const std::uint8_t* text_tokens = nullptr;
  const std::uint8_t* shard_token_bytes = nullptr;  // uint16 little-endian, possibly unaligned
  std::int64_t total_tokens = 0;
  std::int64_t train_begin = 0, train_count = 0;
  std::int64_t validation_begin = 0, validation_count = 0;
  std::int64_t vocab = 0;
  std::int32_t max_token = 0;
  std::optional<MarkovChain> chain;
  std::string identity;

  std::int32_t token(std::int64_t index) const {
    if (text_tokens != nullptr) return text_tokens[index];
    std::uint16_t value;
    std::memcpy(&value, shard_token_bytes + 2 * index, sizeof value);
    return value;
  }
};

DataOptions DataOptions::from_scenario(const strategy::TrainingSpec& training,
                                       const strategy::ModelSpec& model) {
  DataOptions options;
  options.data = training.data;
  options.seed = training.seed;
  options.model_vocab = model.vocab;
  options.seq_len = model.seq_len;
  return options;
}

TokenDataset::TokenDataset(std::unique_ptr<State> state) : state_(std::move(state)) {}
TokenDataset::~TokenDataset() = default;
TokenDataset::TokenDataset(TokenDataset&&) noexcept = default;
TokenDataset& TokenDataset::operator=(TokenDataset&&) noexcept = default;

TokenDataset TokenDataset::open(const DataOptions& options) {
  if (options.model_vocab <= 0) {
    throw std::invalid_argument("TokenDataset::open: model_vocab must be positive");
  }
  if (options.seq_len <= 0) {
    throw std::invalid_argument("TokenDataset::open: seq_len must be positive");
  }
  auto state = std::make_unique<State>();
  state->options = options;

  if (options.data == "synthetic") {
    const std::int64_t vocab =
        options.synthetic.vocab > 0
            ? options.synthetic.vocab
            : std::min<std::int64_t>(options.model_vocab, kDefaultSyntheticVocab);
    if (vocab < 2) {
      fail("the synthetic corpus needs at least 2 symbols but model.vocab is " +
           std::to_string(options.model_vocab));
    }
    if (options.synthetic.successors < 1 || options.synthetic.successors > vocab) {
      fail("the synthetic corpus's successors per symbol must be in [1, " +
           std::to_string(vocab) + "], got " + std::to_string(options.synthetic.successors));
    }
    if (vocab > options.model_vocab) {
      throw DataError(vocabulary_mismatch_message(DataFormat::Synthetic,
                                                  static_cast<std::int32_t>(vocab - 1),
                                                  options.model_vocab));
    }
    state->format = DataFormat::Synthetic;
    state->vocab = vocab;
    state->max_token = static_cast<std::int32_t>(vocab - 1);
    state->chain.emplace(MarkovChain::random(static_cast<int>(vocab),
                                             options.synthetic.successors, options.seed));
    state->identity = "synthetic markov-chain V=" + std::to_string(vocab) +
                      " K=" + std::to_string(options.synthetic.successors);
    return TokenDataset(std::move(state));
  }

  const fs::path path = options.data;
  state->path = path;
  state->file = std::make_unique<MappedFile>(path);
  const std::uint8_t* bytes = state->file->data();
  const std::size_t size = state->file->size();
  if (size == 0) fail(quoted(path) + " is empty");

  const std::int32_t magic = size >= 4 ? read_int32(bytes, 0) : 0;
  if (magic == kLlmcShardMagic || magic == kLlmcLlama3ShardMagic) {
    const std::string what = quoted(path) + " is not a valid llm.c token shard: ";
    if (magic == kLlmcLlama3ShardMagic) {
      fail(quoted(path) + " is an llm.c llama-3 shard (magic 20240801, uint32 tokens); only "
           "GPT-2 shards (magic 20240520, uint16 tokens) are supported");
    }
    const std::size_t header_bytes = kLlmcHeaderInts * 4;
    if (size < header_bytes) {
      fail(what + "the file is " + std::to_string(size) + " bytes, shorter than the " +
           std::to_string(header_bytes) + "-byte header (truncated)");
    }
    const std::int32_t version = read_int32(bytes, 1);
    if (version != kLlmcShardVersion) {
      fail(what + "version " + std::to_string(version) + " in header[1], expected " +
           std::to_string(kLlmcShardVersion));
    }
    const std::int64_t declared = read_int32(bytes, 2);
    if (declared < 0) fail(what + "negative token count " + std::to_string(declared) + " in header[2]");
    if (declared == 0) fail(what + "the header says it holds no tokens (empty shard)");
    const std::size_t payload = size - header_bytes;
    const auto present = static_cast<std::int64_t>(payload / 2);
    if (present < declared) {
      fail(what + "the header says " + std::to_string(declared) + " tokens but the file holds only " +
           std::to_string(present) + " (truncated)");
    }
    if (payload % 2 != 0 || present > declared) {
      fail(what + "the header says " + std::to_string(declared) + " tokens (" +
           std::to_string(2 * declared) + " bytes after the header) but " +
           std::to_string(payload) + " bytes follow it");
    }
    state->format = DataFormat::LlmcShard;
    state->shard_token_bytes = bytes + header_bytes;
    state->total_tokens = declared;
    state->vocab = options.shard_vocab;
    std::uint16_t max_token = 0;
    for (std::int64_t i = 0; i < declared; ++i) {
      std::uint16_t value;
      std::memcpy(&value, state->shard_token_bytes + 2 * i, sizeof value);
      max_token = std::max(max_token, value);
    }
    if (max_token >= options.shard_vocab) {
      std::int64_t first = 0;
      while (state->token(first) < options.shard_vocab) ++first;
      fail(what + "token " + std::to_string(state->token(first)) + " at position " +
           std::to_string(first) + " is outside the tokenizer's vocabulary of " +
           std::to_string(options.shard_vocab) + " (set the shard vocabulary if it is not GPT-2's)");
    }
    state->max_token = max_token;
  } else {
    const std::size_t probe = std::min<std::size_t>(size, 1024);
    if (std::memchr(bytes, 0, probe) != nullptr) {
      fail(quoted(path) + " is neither a text file (it holds NUL bytes) nor an llm.c token shard "
           "(its first int32 is " + std::to_string(magic) + ", not the magic " +
           std::to_string(kLlmcShardMagic) + ")");
    }
    state->format = DataFormat::Text;
    state->text_tokens = bytes;
    state->total_tokens = static_cast<std::int64_t>(size);
    state->vocab = 256;
    state->max_token = *std::max_element(bytes, bytes + size);
  }

  // The split: the last floor(N / 10) tokens are validation.
  const std::int64_t total = state->total_tokens;
  state->validation_count = total / 10;
  state->train_count = total - state->validation_count;
  state->train_begin = 0;
  state->validation_begin = state->train_count;
  const std::int64_t needed = options.seq_len + 1;
  if (state->validation_count < needed) {
    const std::string unit = state->format == DataFormat::Text ? "bytes" : "tokens";
    fail(quoted(path) + " is too short: it holds " + std::to_string(total) + " " + unit +
         ", so its training split (the first 90%) holds " + std::to_string(state->train_count) +
         " and its validation split (the last 10%) " + std::to_string(state->validation_count) +
         ", but each must hold at least seq_len + 1 = " + std::to_string(needed) +
         " for one sequence: use a file of at least " + std::to_string(10 * needed) + " " + unit +
         " or a shorter model.seq_len");
  }
  if (state->max_token >= options.model_vocab) {
    throw DataError(vocabulary_mismatch_message(state->format, state->max_token, options.model_vocab));
  }

  // Identity: format, token count and a hash of the first and last MiB of the file.
  const std::size_t window = std::min<std::size_t>(size, 1 << 20);
  std::string sample(reinterpret_cast<const char*>(bytes), window);
  sample.append(reinterpret_cast<const char*>(bytes + size - window), window);
  state->identity = std::string(state->format == DataFormat::Text ? "text" : "llmc-shard") +
                    " tokens=" + std::to_string(total) +
                    " fnv1a64=" + hex64(fnv1a64(sample));
  return TokenDataset(std::move(state));
}

void TokenDataset::fill(Split split, std::int64_t step_or_index, std::int64_t first_sequence,
                        std::int64_t count, std::int64_t seq_len, std::span<std::int32_t> inputs,
                        std::span<std::int32_t> targets) const {
  const State& s = *state_;
  if (seq_len < 1 || seq_len > s.options.seq_len) {
    throw std::invalid_argument("TokenDataset: seq_len " + std::to_string(seq_len) +
                                " outside [1, " + std::to_string(s.options.seq_len) +
                                "] (the seq_len the dataset was opened with)");
  }
  if (first_sequence < 0 || count < 0) {
    throw std::invalid_argument("TokenDataset: negative sequence index or count");
  }
  const auto elements = static_cast<std::size_t>(count * seq_len);
  if (inputs.size() != elements || targets.size() != elements) {
    throw std::invalid_argument("TokenDataset::fill: inputs and targets must hold count * seq_len = " +
                                std::to_string(elements) + " tokens");
  }
  const std::uint64_t tag = split == Split::Train ? kTrainTag : kValidationTag;
  const auto counter = static_cast<std::uint64_t>(step_or_index);
  for (std::int64_t i = 0; i < count; ++i) {
    const auto j = static_cast<std::uint64_t>(first_sequence + i);
    const std::uint64_t key = counter_hash(s.options.seed, tag, counter, j);
    std::int32_t* in = inputs.data() + i * seq_len;
    std::int32_t* out = targets.data() + i * seq_len;
    if (s.chain) {
      CounterStream stream(key);
      std::int32_t token = s.chain->sample_stationary(stream.next_unit());
      for (std::int64_t t = 0; t < seq_len; ++t) {
        in[t] = token;
        token = s.chain->sample_next(token, stream.next_unit());
        out[t] = token;
      }
      continue;
    }
    const std::int64_t begin = split == Split::Train ? s.train_begin : s.validation_begin;
    const std::int64_t length = split == Split::Train ? s.train_count : s.validation_count;
    const std::int64_t offset =
        begin + static_cast<std::int64_t>(uniform_below(key, static_cast<std::uint64_t>(length - seq_len)));
    for (std::int64_t t = 0; t < seq_len; ++t) {
      in[t] = s.token(offset + t);
      out[t] = s.token(offset + t + 1);
    }
  }
}

namespace {
Batch make_batch(const TokenDataset& dataset, Split split, std::int64_t counter,
                 std::int64_t first_sequence, std::int64_t count, std::int64_t seq_len) {
  Batch batch;
  batch.sequences = count;
  batch.seq_len = seq_len;
  const auto elements = static_cast<std::size_t>(std::max<std::int64_t>(count, 0) *
                                                 std::max<std::int64_t>(seq_len, 0));
  batch.inputs.resize(elements);
  batch.targets.resize(elements);
  dataset.fill(split, counter, first_sequence, count, seq_len, batch.inputs, batch.targets);
  return batch;
}
}  // namespace

Batch TokenDataset::global_sequences(std::int64_t step, std::int64_t first_sequence,
                                     std::int64_t count, std::int64_t seq_len) const {
  return make_batch(*this, Split::Train, step, first_sequence, count, seq_len);
}

Batch TokenDataset::validation_sequences(std::int64_t index, std::int64_t first_sequence,
                                         std::int64_t count, std::int64_t seq_len) const {
  return make_batch(*this, Split::Validation, index, first_sequence, count, seq_len);
}

Batch TokenDataset::validation_batch(std::int64_t index, std::int64_t count,
                                     std::int64_t seq_len) const {
  return validation_sequences(index, 0, count, seq_len);
}

DataFormat TokenDataset::format() const { return state_->format; }
std::int64_t TokenDataset::vocab() const { return state_->vocab; }
std::int32_t TokenDataset::max_token() const { return state_->max_token; }
std::uint64_t TokenDataset::seed() const { return state_->options.seed; }
std::string TokenDataset::identity() const { return state_->identity; }
const MarkovChain* TokenDataset::chain() const {
  return state_->chain ? &*state_->chain : nullptr;
}

std::optional<std::int64_t> TokenDataset::train_tokens() const {
  if (state_->chain) return std::nullopt;
  return state_->train_count;
}

std::optional<std::int64_t> TokenDataset::validation_tokens() const {
  if (state_->chain) return std::nullopt;
  return state_->validation_count;
}

std::optional<double> TokenDataset::entropy_nats_per_token() const {
  if (!state_->chain) return std::nullopt;
  return state_->chain->entropy_rate_nats();
}

std::string TokenDataset::describe() const {
  const State& s = *state_;
  char text[512];
  if (s.chain) {
    std::snprintf(text, sizeof text,
                  "synthetic Markov chain (V=%d, %d successors per symbol, seed %" PRIu64
                  ", entropy %.4f nats/token)",
                  s.chain->states(), s.options.synthetic.successors, s.options.seed,
                  s.chain->entropy_rate_nats());
    return text;
  }
  const char* unit = s.format == DataFormat::Text ? "byte tokens" : "GPT-2 tokens";
  const char* kind = s.format == DataFormat::Text ? "text file" : "llm.c token shard";
  std::snprintf(text, sizeof text, "%s '%s' (%" PRId64 " %s: %" PRId64 " train, %" PRId64
                " validation)", kind, s.path.c_str(), s.total_tokens, unit, s.train_count,
                s.validation_count);
  return text;
}

std::vector<std::uint8_t> TokenDataset::encode_position(std::int64_t steps_done) const {
  std::vector<std::uint8_t> out(kPositionMagic.size() + 24 + state_->identity.size());
  std::size_t at = 0;
  auto append = [&out, &at](const void* data, std::size_t size) {
    if (size > 0) std::memcpy(out.data() + at, data, size);
    at += size;
  };
  append(kPositionMagic.data(), kPositionMagic.size());
  const std::uint64_t seed = state_->options.seed;
  const std::uint64_t length = state_->identity.size();
  append(&steps_done, sizeof steps_done);
  append(&seed, sizeof seed);
  append(&length, sizeof length);
  append(state_->identity.data(), state_->identity.size());
  return out;
}

std::int64_t TokenDataset::decode_position(std::span<const std::uint8_t> bytes) const {
  const std::size_t fixed = kPositionMagic.size() + 24;
  if (bytes.size() < fixed ||
      std::memcmp(bytes.data(), kPositionMagic.data(), kPositionMagic.size()) != 0) {
    throw DataError("training.data: the checkpoint's data position is not in the expected format");
  }
  std::int64_t steps_done;
  std::uint64_t seed, length;
  const std::uint8_t* p = bytes.data() + kPositionMagic.size();
  std::memcpy(&steps_done, p, 8);
  std::memcpy(&seed, p + 8, 8);
  std::memcpy(&length, p + 16, 8);
  if (bytes.size() != fixed + length) {
    throw DataError("training.data: the checkpoint's data position is truncated or corrupt");
  }
  const std::string identity(reinterpret_cast<const char*>(p + 24), length);
  if (identity != state_->identity) {
    throw DataError("training.data: the checkpoint was trained on other data (" + identity +
                    ") than this run reads (" + state_->identity +
                    "); resume with the same training.data");
  }
  if (seed != state_->options.seed) {
    throw DataError("training.data: the checkpoint's data order comes from training.seed " +
                    std::to_string(seed) + " but this run has seed " +
                    std::to_string(state_->options.seed) + "; resume with the same seed");
  }
  if (steps_done < 0) throw DataError("training.data: the checkpoint's data position is corrupt");
  return steps_done;
}

}  // namespace tandem::engine::data
