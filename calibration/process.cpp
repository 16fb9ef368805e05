#include "calibration/process.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <map>
#include <sstream>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>

extern char** environ;

namespace tandem::calibration {

ProcessResult run_process(const std::vector<std::string>& argv, const std::vector<std::string>& extra_environment,
                          double timeout_s) {
  int out_pipe[2], err_pipe[2];
  if (::pipe(out_pipe) != 0 || ::pipe(err_pipe) != 0) throw std::runtime_error("pipe() failed");
  std::vector<std::string> environment;
  for (char** e = environ; *e != nullptr; ++e) environment.emplace_back(*e);
  for (const std::string& extra : extra_environment) {
    const std::string key = extra.substr(0, extra.find('=') + 1);
    environment.erase(std::remove_if(environment.begin(), environment.end(),
                                     [&](const std::string& e) { return e.starts_with(key); }),
                      environment.end());
    environment.push_back(extra);
  }
  std::vector<char*> args, envp;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const std::string& e : environment) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork() failed");
  if (pid == 0) {
    ::setpgid(0, 0);  // its own process group: a timeout ends mpirun and its ranks together
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    ::execve(args[0], args.data(), envp.data());
    std::fprintf(stderr, "cannot run %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ProcessResult result;
  const auto start = std::chrono::steady_clock::now();
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  char buffer[65536];
  while (open_fds > 0) {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (elapsed > timeout_s) {
      ::kill(-pid, SIGKILL);
      result.timed_out = true;
      break;
    }
    if (::poll(fds, 2, 200) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? result.out : result.err).append(buffer, static_cast<std::size_t>(n));
      }
    }
  }
  for (auto& fd : fds)
    if (fd.fd >= 0) ::close(fd.fd);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  return result;
}

std::filesystem::path find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return {};
  std::stringstream dirs(path);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::filesystem::path candidate = std::filesystem::path(dir.empty() ? "." : dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

std::filesystem::path find_mpirun() {
  const std::filesystem::path mpirun = find_on_path("mpirun");
  return mpirun.empty() ? find_on_path("mpiexec") : mpirun;
}

namespace {

bool is_open_mpi(const std::filesystem::path& mpirun) {
  static std::map<std::string, bool> cache;
  auto it = cache.find(mpirun.string());
  if (it != cache.end()) return it->second;
  bool open = false;
  try {
    const ProcessResult r = run_process({mpirun.string(), "--version"}, {}, 20);
    open = (r.out + r.err).find("Open MPI") != std::string::npos || (r.out + r.err).find("OpenRTE") != std::string::npos;
  } catch (const std::exception&) {
  }
  cache[mpirun.string()] = open;
  return open;
}

// The Open MPI parameters of the launch (mpirun passes --mca X Y to its ranks as OMPI_MCA_X=Y).
constexpr std::pair<const char*, const char*> kOpenMpiTransport[] = {
    {"pml", "ob1"}, {"btl", "self,vader"}, {"btl_vader_single_copy_mechanism", "none"}};

}  // namespace

std::vector<std::string> mpirun_prefix(const std::filesystem::path& mpirun, int ranks,
                                       std::vector<std::string>& environment) {
  std::vector<std::string> argv{mpirun.string(), "-np", std::to_string(ranks)};
  if (is_open_mpi(mpirun)) {
    for (const char* flag : {"--oversubscribe", "--bind-to", "none"}) argv.emplace_back(flag);
    for (const auto& [key, value] : kOpenMpiTransport)
      for (const char* part : {"--mca", key, value}) argv.emplace_back(part);
    environment.emplace_back("OMPI_ALLOW_RUN_AS_ROOT=1");
    environment.emplace_back("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1");
  }
  return argv;
}

std::string mpi_transport_settings() {
  std::string settings;
  for (const auto& [key, value] : kOpenMpiTransport) {
    (void)value;
    const char* set = std::getenv(("OMPI_MCA_" + std::string(key)).c_str());
    if (set == nullptr) continue;
    if (!settings.empty()) settings += ' ';
    settings += std::string(key) + "=" + set;
  }
  return settings;
}

std::string tandem_mpi_transport() {
  std::string settings;
  for (const auto& [key, value] : kOpenMpiTransport) settings += (settings.empty() ? "" : " ") + std::string(key) + "=" + value;
  return settings;
}

}  // namespace tandem::calibration
