#include "report/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <utility>

#include <spdlog/spdlog.h>

namespace tandem::report {
namespace {

namespace fs = std::filesystem;

// Appends piecewise: `"'" + text + "'"` trips GCC 12's false -Wrestrict (GCC bug 105651).
std::string quoted(const fs::path& path) {
  std::string text;
  text.reserve(path.native().size() + 2);
  text += '\'';
  text += path.native();
  text += '\'';
  return text;
}

std::string errno_text(int error) { return std::strerror(error); }

// The directory a relative name like "trace.json" lives in.
fs::path directory_of(const fs::path& path) {
  fs::path parent = path.parent_path();
  return parent.empty() ? fs::path(".") : parent;
}

[[noreturn]] void fail_write(const fs::path& path, const std::string& reason) {
  throw FileError("cannot write " + quoted(path) + ": " + reason);
}

void close_quietly(int fd) noexcept {
  if (fd >= 0) ::close(fd);
}

}  // namespace

AtomicFileWriter::AtomicFileWriter(fs::path path) : path_(std::move(path)) {
  if (path_.empty()) throw FileError("cannot write a file with an empty path");
  if (!path_.has_filename()) fail_write(path_, "the path names a directory, not a file");
  const fs::path directory = directory_of(path_);

  struct stat directory_status {};
  if (::stat(directory.c_str(), &directory_status) != 0) {
    const int error = errno;
    if (error == ENOENT) fail_write(path_, "directory " + quoted(directory) + " does not exist");
    fail_write(path_, "cannot access directory " + quoted(directory) + ": " + errno_text(error));
  }
  if (!S_ISDIR(directory_status.st_mode)) {
    fail_write(path_, quoted(directory) + " is not a directory");
  }

  struct stat target_status {};
  bool keep_mode = false;
  if (::stat(path_.c_str(), &target_status) == 0) {
    if (S_ISDIR(target_status.st_mode)) fail_write(path_, "it is a directory");
    keep_mode = S_ISREG(target_status.st_mode);
  }

  // A name no other writer (another thread, another process) picks: pid plus a random tag,
  // created with O_EXCL so a clash is retried rather than shared.
  std::random_device entropy;
  for (int attempt = 0; attempt < 16 && fd_ < 0; ++attempt) {
    char tag[32];
    std::snprintf(tag, sizeof tag, ".tmp-%d-%08x", static_cast<int>(::getpid()), entropy());
    std::string name(".");
    name += path_.filename().native();
    name += tag;
    temporary_path_ = directory / name;
    fd_ = ::open(temporary_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0 && errno != EEXIST) {
      const int error = errno;
      fail_write(path_, "cannot create a file in " + quoted(directory) + ": " + errno_text(error));
    }
  }
  if (fd_ < 0) fail_write(path_, "cannot pick an unused temporary name in " + quoted(directory));
  if (keep_mode && ::fchmod(fd_, target_status.st_mode & 07777) != 0) {
    const int error = errno;
    abandon();
    fail_write(path_, "cannot set permissions of the temporary file: " + errno_text(error));
  }
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!committed_) abandon();
}

void AtomicFileWriter::abandon() noexcept {
  close_quietly(fd_);
  fd_ = -1;
  if (!temporary_path_.empty()) {
    ::unlink(temporary_path_.c_str());
    temporary_path_.clear();
  }
}

void AtomicFileWriter::append(std::string_view bytes) {
  if (committed_ || fd_ < 0) fail_write(path_, "append after commit (internal error)");
  const char* data = bytes.data();
  std::size_t remaining = bytes.size();
  while (remaining > 0) {
    const ssize_t written = ::write(fd_, data, remaining);
    if (written < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      abandon();
      fail_write(path_, errno_text(error) + " after " + std::to_string(bytes_written_) +
                            " bytes (the previous content, if any, is unchanged)");
    }
    data += written;
    remaining -= static_cast<std::size_t>(written);
    bytes_written_ += static_cast<std::size_t>(written);
  }
}

void AtomicFileWriter::commit() {
  if (committed_ || fd_ < 0) fail_write(path_, "commit called twice (internal error)");
  if (::fsync(fd_) != 0) {
    const int error = errno;
    abandon();
    fail_write(path_, "cannot flush to disk: " + errno_text(error));
  }
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) {
    const int error = errno;
    abandon();
    fail_write(path_, "cannot close: " + errno_text(error));
  }
  if (::rename(temporary_path_.c_str(), path_.c_str()) != 0) {
    const int error = errno;
    abandon();
    fail_write(path_, "cannot replace the file: " + errno_text(error));
  }
  temporary_path_.clear();
  committed_ = true;

  // Make the rename durable. The new content is already in place, so a failure here is only a
  // warning: some file systems do not support fsync on a directory.
  const fs::path directory = directory_of(path_);
  const int directory_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (directory_fd >= 0) {
    if (::fsync(directory_fd) != 0 && errno != EINVAL) {
      spdlog::warn("wrote {} but could not fsync its directory: {}", quoted(path_),
                   errno_text(errno));
    }
    ::close(directory_fd);
  }
}

void write_file_atomically(const fs::path& path, std::string_view bytes) {
  AtomicFileWriter writer(path);
  writer.append(bytes);
  writer.commit();
}

std::string read_file(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    throw FileError("cannot read " + quoted(path) + ": " + errno_text(error));
  }
  struct stat status {};
  if (::fstat(fd, &status) == 0 && S_ISDIR(status.st_mode)) {
    ::close(fd);
    throw FileError("cannot read " + quoted(path) + ": it is a directory");
  }
  std::string content;
  if (status.st_size > 0) content.reserve(static_cast<std::size_t>(status.st_size));
  char buffer[1 << 16];
  while (true) {
    const ssize_t count = ::read(fd, buffer, sizeof buffer);
    if (count == 0) break;
    if (count < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      throw FileError("cannot read " + quoted(path) + ": " + errno_text(error));
    }
    content.append(buffer, static_cast<std::size_t>(count));
  }
  ::close(fd);
  return content;
}

}  // namespace tandem::report
