// write_file_atomically / AtomicFileWriter / read_file: the target is either the old content or
// the new, never a mix, and failures name the path.

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "report/atomic_file.hpp"
#include "tests/support/temporary_directory.hpp"

namespace tandem::report {
namespace {

namespace fs = std::filesystem;
using testing::TemporaryDirectory;

std::string slurp(const fs::path& path) {
  std::string content;
  FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return "<missing>";
  char buffer[4096];
  std::size_t count;
  while ((count = std::fread(buffer, 1, sizeof buffer, file)) > 0) content.append(buffer, count);
  std::fclose(file);
  return content;
}

void put(const fs::path& path, const std::string& content) {
  FILE* file = std::fopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr);
  std::fwrite(content.data(), 1, content.size(), file);
  std::fclose(file);
}

std::size_t entries_in(const fs::path& directory) {
  std::size_t count = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(directory)) ++count;
  return count;
}

// Runs `body` in a child process and returns its exit status (body's return value), so a test
// can change process-wide state (resource limits, user id) without affecting the others.
template <typename Body>
int in_child(Body body) {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(body());
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

TEST(AtomicFile, RoundTripsBinaryContentAndReplacesLongerFiles) {
  TemporaryDirectory directory;
  const fs::path target = directory / "data.bin";
  std::string binary("\0\x01\xff line\n\r\n", 12);
  for (int i = 0; i < 100000; ++i) binary.push_back(static_cast<char>(i * 7919 % 256));
  write_file_atomically(target, binary);
  EXPECT_EQ(slurp(target), binary);
  EXPECT_EQ(read_file(target), binary);

  write_file_atomically(target, "short");  // no tail of the old content survives
  EXPECT_EQ(slurp(target), "short");
  write_file_atomically(target, "");
  EXPECT_EQ(slurp(target), "");
  EXPECT_EQ(entries_in(directory.path()), 1u) << "temporary files left behind";
}

TEST(AtomicFile, RelativePathWritesIntoTheWorkingDirectory) {
  TemporaryDirectory directory;
  const fs::path previous = fs::current_path();
  fs::current_path(directory.path());
  write_file_atomically("relative.txt", "here");
  fs::current_path(previous);
  EXPECT_EQ(slurp(directory / "relative.txt"), "here");
}

TEST(AtomicFile, KeepsThePermissionsOfAnExistingFile) {
  TemporaryDirectory directory;
  const fs::path target = directory / "secret.yaml";
  put(target, "old");
  ASSERT_EQ(::chmod(target.c_str(), 0600), 0);
  write_file_atomically(target, "new");
  struct stat status {};
  ASSERT_EQ(::stat(target.c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 0777, 0600u);
  EXPECT_EQ(slurp(target), "new");
}

TEST(AtomicFile, MissingDirectoryIsReportedWithThePath) {
  TemporaryDirectory directory;
  const fs::path target = directory / "no-such-dir" / "trace.json";
  try {
    write_file_atomically(target, "x");
    FAIL() << "expected FileError";
  } catch (const FileError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find(target.string()), std::string::npos) << message;
    EXPECT_NE(message.find("does not exist"), std::string::npos) << message;
  }
  EXPECT_FALSE(fs::exists(directory / "no-such-dir"));
}

TEST(AtomicFile, TargetThatIsADirectoryIsRefused) {
  TemporaryDirectory directory;
  fs::create_directory(directory / "sub");
  EXPECT_THROW(write_file_atomically(directory / "sub", "x"), FileError);
  EXPECT_TRUE(fs::is_directory(directory / "sub"));
  EXPECT_EQ(entries_in(directory.path()), 1u);
}

// Writing into a read-only directory fails with "Permission denied" and the path, and the old
// file is untouched. Root ignores directory permissions, so the write runs in a child process
// that drops to an unprivileged user when the suite runs as root.
TEST(AtomicFile, ReadOnlyDirectoryFailsAndLeavesTheOldFileIntact) {
  TemporaryDirectory directory;
  ASSERT_EQ(::chmod(directory.path().c_str(), 0755), 0);  // the unprivileged user must reach it
  const fs::path locked = directory / "locked";
  fs::create_directory(locked);
  const fs::path target = locked / "scenario.yaml";
  put(target, "old content");
  ASSERT_EQ(::chmod(locked.c_str(), 0555), 0);

  const int status = in_child([&] {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) return 3;
    try {
      write_file_atomically(target, "new content that must not appear");
      return 1;
    } catch (const FileError& error) {
      const std::string message = error.what();
      if (message.find(target.string()) == std::string::npos) return 4;
      if (message.find("Permission denied") == std::string::npos) return 5;
      return 0;
    }
  });
  if (status == 3) GTEST_SKIP() << "cannot drop root privileges to test directory permissions";
  EXPECT_EQ(status, 0) << "1: write succeeded, 4: message lacks the path, 5: lacks the reason";
  EXPECT_EQ(slurp(target), "old content");
  EXPECT_EQ(entries_in(locked), 1u);
}

// A write that fails half-way (here: the file-size limit, as a full disk would) removes the
// temporary file and leaves the old content in place. RLIMIT_FSIZE binds root too.
TEST(AtomicFile, FailureHalfWayLeavesTheOldFileIntact) {
  TemporaryDirectory directory;
  const fs::path target = directory / "checkpoint.bin";
  put(target, "previous checkpoint");
  const int status = in_child([&] {
    std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit limit {4096, 4096};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 3;
    try {
      write_file_atomically(target, std::string(1 << 20, 'x'));
      return 1;
    } catch (const FileError& error) {
      const std::string message = error.what();
      if (message.find(target.string()) == std::string::npos) return 4;
      if (message.find("File too large") == std::string::npos) return 5;
      return 0;
    }
  });
  EXPECT_EQ(status, 0) << "1: write succeeded, 4: message lacks the path, 5: lacks the reason";
  EXPECT_EQ(slurp(target), "previous checkpoint");
  EXPECT_EQ(entries_in(directory.path()), 1u) << "temporary file left behind";
}

TEST(AtomicFile, WriterAbandonedWithoutCommitChangesNothing) {
  TemporaryDirectory directory;
  const fs::path target = directory / "trace.json";
  put(target, "old");
  {
    AtomicFileWriter writer(target);
    writer.append("partial ");
    writer.append("content");
    EXPECT_EQ(writer.bytes_written(), 15u);
    EXPECT_EQ(slurp(target), "old");  // nothing visible before commit
  }
  EXPECT_EQ(slurp(target), "old");
  EXPECT_EQ(entries_in(directory.path()), 1u);

  AtomicFileWriter writer(target);
  writer.append("new ");
  writer.append("content");
  writer.commit();
  EXPECT_EQ(slurp(target), "new content");
}

TEST(ReadFile, MissingFileNamesThePath) {
  TemporaryDirectory directory;
  const fs::path missing = directory / "absent.yaml";
  try {
    read_file(missing);
    FAIL() << "expected FileError";
  } catch (const FileError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find(missing.string()), std::string::npos) << message;
    EXPECT_NE(message.find("No such file or directory"), std::string::npos) << message;
  }
  EXPECT_THROW(read_file(directory.path()), FileError);
}

}  // namespace
}  // namespace tandem::report
