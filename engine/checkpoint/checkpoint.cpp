#include "engine/checkpoint/checkpoint.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <string_view>
#include <system_error>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "engine/checkpoint/checksum.hpp"
#include "engine/checkpoint/fault_injection.hpp"
#include "report/atomic_file.hpp"

namespace tandem::engine::checkpoint {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::array<char, 8> kShardMagic{'T', 'N', 'D', 'M', 'C', 'K', 'P', 'T'};
constexpr std::array<char, 8> kShardEndMagic{'T', 'N', 'D', 'M', 'E', 'N', 'D', '1'};
constexpr std::uint32_t kShardVersion = 1;
constexpr std::size_t kTrailerBytes = 16;
constexpr const char* kManifestFormat = "tandem-checkpoint";
constexpr int kManifestVersion = 1;
// Sanity bounds a damaged header must not get past (it would otherwise ask for huge buffers).
constexpr std::uint32_t kMaxSections = 4096;
constexpr std::uint32_t kMaxNameBytes = 4096;
constexpr std::uint32_t kMaxFingerprintBytes = 1 << 20;

// Appends piecewise: `"'" + text + "'"` trips GCC 12's false -Wrestrict (GCC bug 105651).
std::string quoted(const fs::path& path) {
  std::string text;
  text += '\'';
  text += path.string();
  text += '\'';
  return text;
}

// A checkpoint that is not good: the text names the file and the problem.
struct Problem {
  std::string text;
};

[[noreturn]] void problem(std::string text) { throw Problem{std::move(text)}; }

void emit(const LogSink& log, const std::string& message) {
  if (log) {
    log(message);
  } else {
    spdlog::warn("{}", message);
  }
}

void fsync_directory(const fs::path& directory) {
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// Creates `directory` (and missing parents), making each new entry durable.
void make_directory_durably(const fs::path& directory) {
  std::vector<fs::path> missing;
  for (fs::path p = directory; !p.empty() && !fs::exists(p); p = p.parent_path()) {
    missing.push_back(p);
    if (p == p.parent_path()) break;
  }
  std::error_code error;
  fs::create_directories(directory, error);
  if (error && !fs::is_directory(directory)) {
    throw CheckpointError("cannot create checkpoint directory " + quoted(directory) + ": " +
                          error.message());
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    const fs::path parent = it->parent_path().empty() ? fs::path(".") : it->parent_path();
    fsync_directory(parent);
  }
}

// ---- little-endian encoding ------------------------------------------------------------------

void put_bytes(std::string& out, const void* data, std::size_t size) {
  out.append(static_cast<const char*>(data), size);
}
template <typename T>
void put(std::string& out, T value) {
  put_bytes(out, &value, sizeof value);
}
void put_string(std::string& out, std::string_view text) {
  put<std::uint32_t>(out, static_cast<std::uint32_t>(text.size()));
  out.append(text);
}

struct SectionSource {
  std::string name;
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;
  std::uint64_t checksum = 0;
};

template <typename T>
SectionSource section(std::string name, std::span<const T> values) {
  return {std::move(name), reinterpret_cast<const std::uint8_t*>(values.data()),
          values.size_bytes(), 0};
}

void check_extra_section_names(const RankCheckpointView& shard) {
  for (const auto& [name, bytes] : shard.extra_sections) {
    for (const char* standard : {kWeightsSection, kOptimizerSection, kRngSection,
                                 kDataPositionSection, kLossHistorySection}) {
      if (name == standard) {
        throw std::invalid_argument("write_checkpoint: extra section '" + name +
                                    "' has the name of a standard section");
      }
    }
    if (name.empty() || name.size() > kMaxNameBytes) {
      throw std::invalid_argument("write_checkpoint: an extra section needs a name of 1 to 4096 bytes");
    }
  }
}

std::vector<SectionSource> sections_of(const RankCheckpointView& shard) {
  std::vector<SectionSource> sections;
  sections.push_back(section(kWeightsSection, shard.weights));
  sections.push_back(section(kOptimizerSection, shard.optimizer_state));
  sections.push_back(section(kRngSection, shard.rng_state));
  sections.push_back(section(kDataPositionSection, shard.data_position));
  sections.push_back(section(kLossHistorySection, shard.loss_history));
  for (const auto& [name, bytes] : shard.extra_sections) sections.push_back(section(name, bytes));
  for (SectionSource& s : sections) s.checksum = fnv1a64(s.data, s.size);
  return sections;
}

std::string encode_header(int rank, int world_size, std::int64_t step,
                          const std::string& fingerprint,
                          const std::vector<SectionSource>& sections) {
  std::string header;
  put_bytes(header, kShardMagic.data(), kShardMagic.size());
  put<std::uint32_t>(header, kShardVersion);
  put<std::uint32_t>(header, static_cast<std::uint32_t>(rank));
  put<std::uint32_t>(header, static_cast<std::uint32_t>(world_size));
  put<std::uint32_t>(header, static_cast<std::uint32_t>(sections.size()));
  put<std::int64_t>(header, step);
  put_string(header, fingerprint);
  for (const SectionSource& s : sections) {
    put_string(header, s.name);
    put<std::uint64_t>(header, s.size);
    put<std::uint64_t>(header, s.checksum);
  }
  return header;
}

struct WrittenShard {
  std::uint64_t bytes = 0;
  std::uint64_t checksum = 0;
};

WrittenShard write_shard(const fs::path& path, int rank, int world_size, std::int64_t step,
                         const std::string& fingerprint, const RankCheckpointView& shard,
                         const std::optional<KillRequest>& kill) {
  const std::vector<SectionSource> sections = sections_of(shard);
  const std::string header = encode_header(rank, world_size, step, fingerprint, sections);
  const std::uint64_t checksum = fnv1a64(header.data(), header.size());
  report::AtomicFileWriter writer(path);
  writer.append(header);
  for (std::size_t i = 0; i < sections.size(); ++i) {
    writer.append(std::string_view(reinterpret_cast<const char*>(sections[i].data), sections[i].size));
    if (i == 0) kill_point(kill, KillPhase::ShardPartial, rank, step);
  }
  std::string trailer;
  put<std::uint64_t>(trailer, checksum);
  put_bytes(trailer, kShardEndMagic.data(), kShardEndMagic.size());
  writer.append(trailer);
  kill_point(kill, KillPhase::ShardWritten, rank, step);
  writer.commit();
  return {writer.bytes_written(), checksum};
}

// ---- reading shards ---------------------------------------------------------------------------

class FileReader {
 public:
  FileReader(const fs::path& path, std::string name) : name_(std::move(name)) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      const int error = errno;
      if (error == ENOENT) problem(name_ + " is missing");
      problem(name_ + " cannot be read: " + std::strerror(error));
    }
    struct stat status {};
    if (::fstat(fd_, &status) != 0 || !S_ISREG(status.st_mode)) {
      problem(name_ + " is not a regular file");
    }
    size_ = static_cast<std::uint64_t>(status.st_size);
  }
  ~FileReader() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;

  std::uint64_t size() const { return size_; }

  void read_at(std::uint64_t offset, void* out, std::size_t count) const {
    auto* bytes = static_cast<char*>(out);
    while (count > 0) {
      const ssize_t got = ::pread(fd_, bytes, count, static_cast<off_t>(offset));
      if (got < 0) {
        if (errno == EINTR) continue;
        problem(name_ + " cannot be read: " + std::strerror(errno));
      }
      if (got == 0) problem(name_ + " ended early (truncated while being read)");
      bytes += got;
      offset += static_cast<std::uint64_t>(got);
      count -= static_cast<std::size_t>(got);
    }
  }

 private:
  std::string name_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

// Reads the header fields sequentially from `reader`, collecting the raw header bytes.
class HeaderCursor {
 public:
  HeaderCursor(const FileReader& reader, std::uint64_t limit, std::string name)
      : reader_(reader), limit_(limit), name_(std::move(name)) {}

  void take(void* out, std::size_t count) {
    if (offset_ + count > limit_) {
      problem(name_ + " is truncated or damaged: its header runs past the end of the file");
    }
    reader_.read_at(offset_, out, count);
    raw_.append(static_cast<const char*>(out), count);
    offset_ += count;
  }
  template <typename T>
  T get() {
    T value;
    take(&value, sizeof value);
    return value;
  }
  std::string get_string(std::uint32_t max_bytes, const char* what) {
    const auto length = get<std::uint32_t>();
    if (length > max_bytes) problem(name_ + " has a damaged header (" + what + " too long)");
    std::string text(length, '\0');
    take(text.data(), length);
    return text;
  }
  std::uint64_t offset() const { return offset_; }
  const std::string& raw() const { return raw_; }

 private:
  const FileReader& reader_;
  std::uint64_t limit_;
  std::string name_;
  std::uint64_t offset_ = 0;
  std::string raw_;
};

struct SectionEntry {
  std::string name;
  std::uint64_t length = 0;
  std::uint64_t checksum = 0;
};

// Verifies `path` in full; fills `contents` when given. Throws Problem.
ShardFile parse_shard(const fs::path& path, const std::string& name, bool keep_contents) {
  FileReader reader(path, name);
  const std::uint64_t size = reader.size();
  constexpr std::uint64_t kFixed = 8 + 4 * 4 + 8 + 4;
  if (size < kFixed + kTrailerBytes) {
    problem(name + " is truncated: " + std::to_string(size) + " bytes, shorter than any shard");
  }
  std::array<char, 8> end_magic{};
  std::uint64_t trailer_checksum = 0;
  reader.read_at(size - kTrailerBytes, &trailer_checksum, sizeof trailer_checksum);
  reader.read_at(size - 8, end_magic.data(), end_magic.size());

  HeaderCursor cursor(reader, size - kTrailerBytes, name);
  std::array<char, 8> magic{};
  cursor.take(magic.data(), magic.size());
  if (magic != kShardMagic) problem(name + " is not a Tandem checkpoint shard (bad magic)");
  if (end_magic != kShardEndMagic) {
    problem(name + " is truncated or damaged: its end marker is missing (" + std::to_string(size) +
            " bytes)");
  }
  const auto version = cursor.get<std::uint32_t>();
  if (version != kShardVersion) {
    problem(name + " has format version " + std::to_string(version) + "; this build reads version " +
            std::to_string(kShardVersion));
  }
  ShardFile shard;
  shard.rank = static_cast<int>(cursor.get<std::uint32_t>());
  shard.world_size = static_cast<int>(cursor.get<std::uint32_t>());
  const auto count = cursor.get<std::uint32_t>();
  shard.step = cursor.get<std::int64_t>();
  if (count > kMaxSections) problem(name + " has a damaged header (section count " + std::to_string(count) + ")");
  shard.fingerprint = cursor.get_string(kMaxFingerprintBytes, "fingerprint");
  std::vector<SectionEntry> entries;
  std::uint64_t payload_total = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    SectionEntry entry;
    entry.name = cursor.get_string(kMaxNameBytes, "section name");
    entry.length = cursor.get<std::uint64_t>();
    entry.checksum = cursor.get<std::uint64_t>();
    if (entry.length > size) problem(name + " has a damaged header (section '" + entry.name + "' length)");
    payload_total += entry.length;
    entries.push_back(std::move(entry));
  }
  const std::uint64_t header_checksum = fnv1a64(cursor.raw().data(), cursor.raw().size());
  if (header_checksum != trailer_checksum) {
    problem(name + " is damaged: its header checksum does not match (" +
            checksum_text(header_checksum) + " computed, " + checksum_text(trailer_checksum) +
            " recorded)");
  }
  shard.checksum = trailer_checksum;
  const std::uint64_t expected = cursor.offset() + payload_total + kTrailerBytes;
  if (expected != size) {
    problem(name + " is " + std::string(size < expected ? "truncated" : "damaged") + ": " +
            std::to_string(size) + " bytes, its header describes " + std::to_string(expected));
  }
  if (shard.world_size < 1 || shard.rank < 0 || shard.rank >= shard.world_size || shard.step < 0) {
    problem(name + " has an impossible header (rank " + std::to_string(shard.rank) + " of " +
            std::to_string(shard.world_size) + ", step " + std::to_string(shard.step) + ")");
  }

  std::vector<std::string> seen;
  std::uint64_t offset = cursor.offset();
  std::vector<char> chunk;
  for (const SectionEntry& entry : entries) {
    if (std::find(seen.begin(), seen.end(), entry.name) != seen.end()) {
      problem(name + " lists section '" + entry.name + "' twice");
    }
    seen.push_back(entry.name);
    Fnv1a64 hash;
    std::vector<std::uint8_t> bytes;
    if (keep_contents) {
      bytes.resize(entry.length);
      reader.read_at(offset, bytes.data(), bytes.size());
      hash.update(bytes.data(), bytes.size());
    } else {
      chunk.resize(std::min<std::uint64_t>(entry.length, 1 << 20));
      for (std::uint64_t done = 0; done < entry.length;) {
        const auto piece = static_cast<std::size_t>(std::min<std::uint64_t>(entry.length - done, chunk.size()));
        reader.read_at(offset + done, chunk.data(), piece);
        hash.update(chunk.data(), piece);
        done += piece;
      }
    }
    if (hash.value() != entry.checksum) {
      problem(name + " is damaged: section '" + entry.name + "' fails its checksum (" +
              checksum_text(hash.value()) + " computed, " + checksum_text(entry.checksum) +
              " recorded)");
    }
    offset += entry.length;
    if (!keep_contents) continue;
    RankCheckpoint& c = shard.contents;
    auto into_values = [&](auto& values, std::size_t element) {
      if (bytes.size() % element != 0) {
        problem(name + ": section '" + entry.name + "' holds " + std::to_string(bytes.size()) +
                " bytes, not a whole number of " + std::to_string(element) + "-byte values");
      }
      values.resize(bytes.size() / element);
      if (!bytes.empty()) std::memcpy(values.data(), bytes.data(), bytes.size());
    };
    if (entry.name == kWeightsSection) {
      into_values(c.weights, sizeof(float));
    } else if (entry.name == kLossHistorySection) {
      into_values(c.loss_history, sizeof(double));
    } else if (entry.name == kOptimizerSection) {
      c.optimizer_state = std::move(bytes);
    } else if (entry.name == kRngSection) {
      c.rng_state = std::move(bytes);
    } else if (entry.name == kDataPositionSection) {
      c.data_position = std::move(bytes);
    } else {
      c.extra_sections[entry.name] = std::move(bytes);
    }
  }
  for (const char* required : {kWeightsSection, kOptimizerSection, kRngSection,
                               kDataPositionSection, kLossHistorySection}) {
    if (std::find(seen.begin(), seen.end(), required) == seen.end()) {
      problem(name + " lacks the '" + std::string(required) + "' section");
    }
  }
  return shard;
}

// ---- manifest ---------------------------------------------------------------------------------

std::string manifest_text(const CheckpointInfo& info) {
  json manifest = json::object();
  manifest["format"] = kManifestFormat;
  manifest["version"] = kManifestVersion;
  manifest["step"] = info.step;
  manifest["world_size"] = info.world_size;
  manifest["fingerprint"] = info.fingerprint;
  json shards = json::array();
  for (const ShardEntry& entry : info.shards) {
    shards.push_back({{"rank", entry.rank},
                      {"file", entry.file},
                      {"bytes", entry.bytes},
                      {"checksum", checksum_text(entry.checksum)}});
  }
  manifest["shards"] = std::move(shards);
  const std::string compact = manifest.dump();
  manifest["manifest_checksum"] = checksum_text(fnv1a64(compact.data(), compact.size()));
  return manifest.dump(2) + "\n";
}

// Parses and verifies step_directory/manifest.json. Throws Problem.
CheckpointInfo read_manifest(const fs::path& step_directory, std::int64_t step) {
  const fs::path path = step_directory / kManifestFileName;
  std::error_code error;
  if (!fs::exists(path, error)) {
    problem(std::string(kManifestFileName) +
            " is missing (the checkpoint's write was interrupted before it completed)");
  }
  std::string text;
  try {
    text = report::read_file(path);
  } catch (const std::exception& e) {
    problem(std::string(kManifestFileName) + " cannot be read: " + e.what());
  }
  json manifest;
  try {
    manifest = json::parse(text);
  } catch (const json::exception& e) {
    problem(std::string(kManifestFileName) + " is corrupt (not valid JSON: " + e.what() + ")");
  }
  const std::string bad = std::string(kManifestFileName) + " is corrupt: ";
  if (!manifest.is_object()) problem(bad + "not a JSON object");
  const auto recorded = manifest.find("manifest_checksum");
  std::uint64_t recorded_checksum = 0;
  if (recorded == manifest.end() || !recorded->is_string() ||
      !parse_checksum_text(recorded->get<std::string>(), recorded_checksum)) {
    problem(bad + "no valid manifest_checksum");
  }
  manifest.erase("manifest_checksum");
  const std::string compact = manifest.dump();
  const std::uint64_t computed = fnv1a64(compact.data(), compact.size());
  if (computed != recorded_checksum) {
    problem(bad + "its content does not match its manifest_checksum (" + checksum_text(computed) +
            " computed, " + checksum_text(recorded_checksum) + " recorded)");
  }
  try {
    if (manifest.at("format").get<std::string>() != kManifestFormat) problem(bad + "unknown format");
    if (manifest.at("version").get<int>() != kManifestVersion) {
      problem(std::string(kManifestFileName) + " has version " +
              manifest.at("version").dump() + "; this build reads version " +
              std::to_string(kManifestVersion));
    }
    CheckpointInfo info;
    info.directory = step_directory;
    info.step = manifest.at("step").get<std::int64_t>();
    info.world_size = manifest.at("world_size").get<int>();
    info.fingerprint = manifest.at("fingerprint").get<std::string>();
    if (info.step != step) {
      problem(bad + "it records step " + std::to_string(info.step) + " but its directory is " +
              step_directory_name(step));
    }
    if (info.world_size < 1) problem(bad + "world_size " + std::to_string(info.world_size));
    const json& shards = manifest.at("shards");
    if (!shards.is_array() || shards.size() != static_cast<std::size_t>(info.world_size)) {
      problem(bad + "it must list one shard per rank (" + std::to_string(info.world_size) + ")");
    }
    info.shards.resize(shards.size());
    std::vector<char> listed(shards.size(), 0);
    for (const json& entry : shards) {
      ShardEntry shard;
      shard.rank = entry.at("rank").get<int>();
      shard.file = entry.at("file").get<std::string>();
      shard.bytes = entry.at("bytes").get<std::uint64_t>();
      if (!parse_checksum_text(entry.at("checksum").get<std::string>(), shard.checksum)) {
        problem(bad + "a shard checksum is not of the form fnv1a64:<16 hex digits>");
      }
      if (shard.rank < 0 || shard.rank >= info.world_size || listed[shard.rank]) {
        problem(bad + "shard ranks must be 0.." + std::to_string(info.world_size - 1) +
                ", each once");
      }
      if (shard.file != shard_file_name(shard.rank)) {
        problem(bad + "rank " + std::to_string(shard.rank) + "'s shard is named '" + shard.file +
                "', not " + shard_file_name(shard.rank));
      }
      listed[shard.rank] = 1;
      info.shards[shard.rank] = std::move(shard);
    }
    return info;
  } catch (const json::exception& e) {
    problem(bad + "a field is missing or has the wrong type (" + e.what() + ")");
  }
}

// Sizes of every listed shard (cheap: retention uses only this).
void check_shard_sizes(const CheckpointInfo& info) {
  for (const ShardEntry& entry : info.shards) {
    std::error_code error;
    const fs::path path = info.directory / entry.file;
    if (!fs::exists(path, error)) problem(entry.file + " is missing");
    const std::uintmax_t size = fs::file_size(path, error);
    if (error) problem(entry.file + " cannot be read: " + error.message());
    if (size != entry.bytes) {
      problem(entry.file + " is " + std::string(size < entry.bytes ? "truncated" : "damaged") +
              ": " + std::to_string(size) + " bytes, the manifest lists " +
              std::to_string(entry.bytes));
    }
  }
}

// Verifies every shard in full against the manifest; returns rank `load_rank`'s contents.
std::optional<RankCheckpoint> verify_shards(const CheckpointInfo& info,
                                            std::optional<int> load_rank) {
  check_shard_sizes(info);
  std::optional<RankCheckpoint> loaded;
  // Other ranks' shards first (streamed), this rank's last (read into memory).
  std::vector<int> order;
  for (int r = 0; r < info.world_size; ++r) {
    if (!load_rank || r != *load_rank) order.push_back(r);
  }
  if (load_rank) order.push_back(*load_rank);
  for (const int r : order) {
    const ShardEntry& entry = info.shards[r];
    const bool keep = load_rank && r == *load_rank;
    ShardFile shard = parse_shard(info.directory / entry.file, entry.file, keep);
    if (shard.checksum != entry.checksum) {
      problem(entry.file + " does not match the manifest: checksum " +
              checksum_text(shard.checksum) + ", the manifest lists " +
              checksum_text(entry.checksum));
    }
    if (shard.rank != r || shard.world_size != info.world_size || shard.step != info.step ||
        shard.fingerprint != info.fingerprint) {
      problem(entry.file + " does not belong to this checkpoint (its header says rank " +
              std::to_string(shard.rank) + " of " + std::to_string(shard.world_size) +
              ", step " + std::to_string(shard.step) + ")");
    }
    if (keep) {
      if (shard.contents.loss_history.size() != static_cast<std::size_t>(info.step)) {
        problem(entry.file + " holds " + std::to_string(shard.contents.loss_history.size()) +
                " losses for step " + std::to_string(info.step));
      }
      loaded = std::move(shard.contents);
    }
  }
  return loaded;
}

// The tokens of a fingerprint ("dp=2 tp=1;pp=1" -> dp=2, tp=1, pp=1) that differ.
std::string fingerprint_difference(const std::string& theirs, const std::string& ours) {
  auto tokens = [](const std::string& text) {
    std::vector<std::string> out;
    std::string current;
    for (const char c : text) {
      if (c == ' ' || c == ';' || c == ',' || c == '\n' || c == '\t') {
        if (!current.empty()) out.push_back(std::move(current));
        current.clear();
      } else {
        current += c;
      }
    }
    if (!current.empty()) out.push_back(std::move(current));
    return out;
  };
  const auto a = tokens(theirs), b = tokens(ours);
  std::string only_a, only_b;
  for (const auto& t : a) {
    if (std::find(b.begin(), b.end(), t) == b.end()) only_a += (only_a.empty() ? "" : " ") + t;
  }
  for (const auto& t : b) {
    if (std::find(a.begin(), a.end(), t) == a.end()) only_b += (only_b.empty() ? "" : " ") + t;
  }
  if (only_a.empty() && only_b.empty()) return "";
  return " (the checkpoint has '" + only_a + "' where this run has '" + only_b + "')";
}

void refuse_mismatch(const CheckpointInfo& info, int world_size, const std::string& fingerprint) {
  if (info.world_size != world_size) {
    throw CheckpointMismatch(
        "checkpoint " + quoted(info.directory) + " was written by a run of " +
        std::to_string(info.world_size) + " ranks but this run has " +
        std::to_string(world_size) +
        ": a checkpoint resumes only with the world size it was written with — run with " +
        std::to_string(info.world_size) +
        " ranks, or start afresh with another training.checkpoint_dir");
  }
  if (info.fingerprint != fingerprint) {
    throw CheckpointMismatch(
        "checkpoint " + quoted(info.directory) +
        " was written for another strategy: its fingerprint is '" + info.fingerprint +
        "' but this run's is '" + fingerprint + "'" +
        fingerprint_difference(info.fingerprint, fingerprint) +
        " — resume with the strategy it was written with, or start afresh with another "
        "training.checkpoint_dir");
  }
}

std::string skipped(const fs::path& step_directory, const std::string& why) {
  return "checkpoint " + quoted(step_directory) + " skipped: " + why +
         "; falling back to an older checkpoint";
}

// Retention (rank 0, after the new manifest is durable).
void apply_retention(const fs::path& dir, std::int64_t current_step, int keep,
                     const LogSink& log, const std::optional<KillRequest>& kill) {
  if (keep <= 0) return;
  std::vector<std::int64_t> steps;
  try {
    steps = list_checkpoint_steps(dir);
  } catch (const std::exception& e) {
    emit(log, std::string("checkpoint retention skipped: ") + e.what());
    return;
  }
  int complete = 0;
  std::optional<std::int64_t> oldest_kept;
  for (const std::int64_t step : steps) {
    if (step > current_step) continue;
    try {
      const CheckpointInfo info = read_manifest(dir / step_directory_name(step), step);
      check_shard_sizes(info);
    } catch (const Problem&) {
      continue;
    }
    if (++complete == keep) {
      oldest_kept = step;
      break;
    }
  }
  if (!oldest_kept) return;
  std::vector<std::int64_t> doomed;
  for (const std::int64_t step : steps) {
    if (step < *oldest_kept) doomed.push_back(step);
  }
  std::sort(doomed.begin(), doomed.end());  // oldest first
  for (std::size_t i = 0; i < doomed.size(); ++i) {
    const fs::path step_directory = dir / step_directory_name(doomed[i]);
    std::error_code error;
    // The manifest goes first: from then on the directory is an incomplete checkpoint, never a
    // good one with missing shards.
    fs::remove(step_directory / kManifestFileName, error);
    if (error) {
      emit(log, "checkpoint retention: cannot delete " +
                    quoted(step_directory / kManifestFileName) + ": " + error.message());
      continue;
    }
    fsync_directory(step_directory);
    if (i == 0) kill_point(kill, KillPhase::Retention, 0, current_step);
    fs::remove_all(step_directory, error);
    if (error) {
      emit(log, "checkpoint retention: cannot delete " + quoted(step_directory) + ": " +
                    error.message());
    }
  }
  if (!doomed.empty()) fsync_directory(dir);
}

// Rank 0's preparation: the step directory exists, durably, without a manifest or temporaries.
void prepare_step_directory(const fs::path& dir, const fs::path& step_directory) {
  make_directory_durably(dir);
  make_directory_durably(step_directory);
  std::error_code error;
  const fs::path manifest = step_directory / kManifestFileName;
  if (fs::exists(manifest, error)) {
    fs::remove(manifest, error);
    if (error) {
      throw CheckpointError("cannot replace checkpoint " + quoted(step_directory) +
                            ": cannot delete its old manifest: " + error.message());
    }
  }
  // Temporaries of an interrupted write (".rank-0.bin.tmp-<pid>-<tag>", ".manifest.json.tmp-...").
  for (const auto& entry : fs::directory_iterator(step_directory, error)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 1 && name[0] == '.' && name.find(".tmp-") != std::string::npos) {
      std::error_code ignored;
      fs::remove(entry.path(), ignored);
    }
  }
  fsync_directory(step_directory);
}

}  // namespace

RankCheckpointView::RankCheckpointView(const RankCheckpoint& shard)
    : weights(shard.weights),
      optimizer_state(shard.optimizer_state),
      rng_state(shard.rng_state),
      data_position(shard.data_position),
      loss_history(shard.loss_history) {
  for (const auto& [name, bytes] : shard.extra_sections) extra_sections.emplace(name, bytes);
}

std::string step_directory_name(std::int64_t step) {
  char text[32];
  std::snprintf(text, sizeof text, "step-%08lld", static_cast<long long>(step));
  return text;
}

std::string shard_file_name(int rank) { return "rank-" + std::to_string(rank) + ".bin"; }

std::vector<std::int64_t> list_checkpoint_steps(const fs::path& dir) {
  std::vector<std::int64_t> steps;
  std::error_code error;
  if (!fs::exists(dir, error)) return steps;
  fs::directory_iterator it(dir, error);
  if (error) {
    throw CheckpointError("cannot list checkpoint directory " + quoted(dir) + ": " +
                          error.message());
  }
  for (const auto& entry : it) {
    const std::string name = entry.path().filename().string();
    if (name.size() < 13 || name.compare(0, 5, "step-") != 0) continue;
    const std::string_view digits = std::string_view(name).substr(5);
    if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    std::int64_t step = 0;
    const auto [end, parse_error] = std::from_chars(digits.data(), digits.data() + digits.size(), step);
    if (parse_error != std::errc() || end != digits.data() + digits.size()) continue;
    if (name != step_directory_name(step)) continue;  // "step-0000000012" is not ours
    std::error_code ignored;
    if (!entry.is_directory(ignored)) continue;
    steps.push_back(step);
  }
  std::sort(steps.rbegin(), steps.rend());
  return steps;
}

CheckpointInfo write_checkpoint(const fs::path& dir, std::int64_t step,
                                const std::string& fingerprint, const RankCheckpointView& shard,
                                comm::Communicator& world, const WriteOptions& options) {
  if (step < 0) throw std::invalid_argument("write_checkpoint: negative step " + std::to_string(step));
  if (shard.loss_history.size() != static_cast<std::size_t>(step)) {
    throw std::invalid_argument("write_checkpoint: the loss history holds " +
                                std::to_string(shard.loss_history.size()) +
                                " values but the checkpoint is of step " + std::to_string(step) +
                                " (it must hold the loss of every step from 1)");
  }
  if (fingerprint.size() > kMaxFingerprintBytes) {
    throw std::invalid_argument("write_checkpoint: fingerprint longer than 1 MiB");
  }
  check_extra_section_names(shard);
  const std::optional<KillRequest> kill = kill_request_from_environment();
  const int rank = world.rank();
  const int world_size = world.size();
  const fs::path step_directory = dir / step_directory_name(step);

  // 1. Rank 0 prepares the directory; the broadcast of its outcome is the first barrier.
  std::string failure;
  if (rank == 0) {
    try {
      prepare_step_directory(dir, step_directory);
    } catch (const std::exception& e) {
      failure = e.what();
    }
  }
  std::int32_t prepared = failure.empty() ? 1 : 0;
  world.broadcast(&prepared, 1, comm::DataType::Int32, 0);
  if (!prepared) {
    throw CheckpointError(rank == 0 ? failure
                                    : "rank 0 could not prepare checkpoint " +
                                          quoted(step_directory) + " (see its error)");
  }

  // 2. Every rank writes its shard.
  WrittenShard written;
  try {
    written = write_shard(step_directory / shard_file_name(rank), rank, world_size, step,
                          fingerprint, shard, kill);
  } catch (const std::exception& e) {
    failure = std::string("rank ") + std::to_string(rank) + " could not write its checkpoint shard: " + e.what();
  }
  if (failure.empty()) kill_point(kill, KillPhase::ShardRenamed, rank, step);

  // 3. Gather every shard's size and checksum (-1: that rank failed). Returns once every shard
  //    is durable: the barrier before the manifest.
  std::array<std::int64_t, 2> mine{failure.empty() ? static_cast<std::int64_t>(written.bytes) : -1,
                                   static_cast<std::int64_t>(written.checksum)};
  std::vector<std::int64_t> all(2 * static_cast<std::size_t>(world_size));
  world.all_gather(mine.data(), all.data(), 2, comm::DataType::Int64);
  if (!failure.empty()) throw CheckpointError(failure);
  CheckpointInfo info;
  info.step = step;
  info.directory = step_directory;
  info.world_size = world_size;
  info.fingerprint = fingerprint;
  for (int r = 0; r < world_size; ++r) {
    if (all[2 * r] < 0) {
      throw CheckpointError("rank " + std::to_string(r) + " could not write its shard of checkpoint " +
                            quoted(step_directory) +
                            " (see its error); the previous checkpoint is still the newest good one");
    }
    info.shards.push_back({r, shard_file_name(r), static_cast<std::uint64_t>(all[2 * r]),
                           static_cast<std::uint64_t>(all[2 * r + 1])});
  }
  kill_point(kill, KillPhase::Barrier, rank, step);

  // 4. Rank 0 writes the manifest, then 5. applies retention.
  if (rank == 0) {
    try {
      report::AtomicFileWriter writer(step_directory / kManifestFileName);
      writer.append(manifest_text(info));
      kill_point(kill, KillPhase::ManifestWritten, rank, step);
      writer.commit();
    } catch (const std::exception& e) {
      failure = std::string("cannot write the manifest of checkpoint ") + quoted(step_directory) +
                ": " + e.what();
    }
    if (failure.empty()) {
      kill_point(kill, KillPhase::ManifestRenamed, rank, step);
      apply_retention(dir, step, options.keep, options.log, kill);
    }
  }

  // 6. Everyone learns rank 0's outcome.
  std::int32_t completed = failure.empty() ? 1 : 0;
  world.broadcast(&completed, 1, comm::DataType::Int32, 0);
  if (!completed) {
    throw CheckpointError(rank == 0 ? failure
                                    : "rank 0 could not write the manifest of checkpoint " +
                                          quoted(step_directory) + " (see its error)");
  }
  return info;
}

std::optional<LoadedCheckpoint> load_latest_good(const fs::path& dir, int rank, int world_size,
                                                 const std::string& fingerprint,
                                                 const LogSink& log) {
  if (world_size < 1 || rank < 0 || rank >= world_size) {
    throw std::invalid_argument("load_latest_good: rank " + std::to_string(rank) +
                                " is not in [0, " + std::to_string(world_size) + ")");
  }
  for (const std::int64_t step : list_checkpoint_steps(dir)) {
    const fs::path step_directory = dir / step_directory_name(step);
    try {
      CheckpointInfo info = read_manifest(step_directory, step);
      refuse_mismatch(info, world_size, fingerprint);
      std::optional<RankCheckpoint> shard = verify_shards(info, rank);
      return LoadedCheckpoint{std::move(info), std::move(*shard)};
    } catch (const Problem& p) {
      emit(log, skipped(step_directory, p.text));
    }
  }
  return std::nullopt;
}

std::optional<CheckpointInfo> find_latest_good(const fs::path& dir, const LogSink& log) {
  for (const std::int64_t step : list_checkpoint_steps(dir)) {
    const fs::path step_directory = dir / step_directory_name(step);
    try {
      CheckpointInfo info = read_manifest(step_directory, step);
      verify_shards(info, std::nullopt);
      return info;
    } catch (const Problem& p) {
      emit(log, skipped(step_directory, p.text));
    }
  }
  return std::nullopt;
}

std::optional<std::string> checkpoint_problem(const fs::path& step_directory) {
  const std::string name = step_directory.filename().string();
  std::int64_t step = -1;
  if (name.size() > 5 && name.compare(0, 5, "step-") == 0) {
    const std::string_view digits = std::string_view(name).substr(5);
    std::from_chars(digits.data(), digits.data() + digits.size(), step);
  }
  if (step < 0) return quoted(step_directory) + " is not a step-NNNNNNNN checkpoint directory";
  try {
    const CheckpointInfo info = read_manifest(step_directory, step);
    verify_shards(info, std::nullopt);
    return std::nullopt;
  } catch (const Problem& p) {
    return p.text;
  }
}

ShardFile read_shard(const fs::path& shard_path) {
  try {
    return parse_shard(shard_path, shard_path.filename().string(), true);
  } catch (const Problem& p) {
    throw CheckpointError("checkpoint shard " + quoted(shard_path) + ": " + p.text);
  }
}

}  // namespace tandem::engine::checkpoint
