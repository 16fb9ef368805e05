#pragma once
// The one way Tandem writes a file: traces, Chrome traces, scenarios written by the tuner,
// engine checkpoints.
//
// A reader (or a crash) never sees a half-written target: the bytes go to a temporary file in
// the target's directory, which is flushed to disk (fsync) and then renamed over the target; the
// directory is fsynced so the rename itself survives a power loss. On any failure the temporary
// file is removed, the old target (if any) is left untouched, and a FileError names the path
// and the reason (missing directory, permission denied, disk full, ...).
//
// The parent directory must exist: a missing directory is reported, not silently created
// (callers that own a directory, like the run store, create it themselves).

#include <cstddef>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

namespace tandem::report {

// A file could not be read or written; what() names the path and the reason.
class FileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Replaces `path` with `bytes` atomically (see above). A new file gets mode 0644 (minus the
// umask); an existing file keeps its permission bits.
void write_file_atomically(const std::filesystem::path& path, std::string_view bytes);

// The whole content of `path`. Throws FileError naming the path when it cannot be read.
std::string read_file(const std::filesystem::path& path);

// Streams a large file (a Chrome trace of 10^6 events, a checkpoint) to its target with the same
// guarantee as write_file_atomically: append() as often as needed, then commit(). Destroying the
// writer without commit() (an exception on the way) removes the temporary file and leaves the
// target as it was.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::filesystem::path path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void append(std::string_view bytes);
  // Flushes, fsyncs, renames over the target and fsyncs the directory. Call once.
  void commit();

  const std::filesystem::path& path() const { return path_; }
  std::size_t bytes_written() const { return bytes_written_; }

 private:
  void abandon() noexcept;

  std::filesystem::path path_;
  std::filesystem::path temporary_path_;
  int fd_ = -1;
  std::size_t bytes_written_ = 0;
  bool committed_ = false;
};

}  // namespace tandem::report
