#include "quotum/testing/server_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string_view>
#include <vector>

namespace quotum::testing {
namespace {

// The directories MakeTempDir made, removed (each with a `<dir>.toml` beside
// it, where the suites write their configs) when the test process that made
// them exits: a child forked from it leaves them alone.
// QUOTUM_KEEP_TEST_DIRS=1 keeps them, to look into a failure.
class MadeTempDirs {
 public:
  void Add(std::string dir) {
    std::lock_guard<std::mutex> lock(mu_);
    dirs_.push_back(std::move(dir));
  }
  ~MadeTempDirs() {
    const char* keep = std::getenv("QUOTUM_KEEP_TEST_DIRS");
    if (getpid() != owner_ || (keep != nullptr && std::string_view(keep) == "1")) return;
    std::error_code ec;
    for (const std::string& dir : dirs_) {
      std::filesystem::remove_all(dir, ec);
      std::filesystem::remove(dir + ".toml", ec);
    }
  }

 private:
  const pid_t owner_ = getpid();
  std::mutex mu_;
  std::vector<std::string> dirs_;
};

MadeTempDirs& TempDirsMade() {
  static MadeTempDirs dirs;
  return dirs;
}

}  // namespace

int PickFreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

std::string MakeTempDir(const std::string& prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/" + prefix + "XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) return {};
  TempDirsMade().Add(buf.data());
  return std::string(buf.data());
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) Kill9();
}

bool ServerProcess::Start() {
  std::filesystem::create_directories(opts_.data_dir);
  // The child's stdout: a pipe read until "listening on", or the log file
  // (read from its current end) when the test wants the whole output.
  const bool to_file = !opts_.log_path.empty();
  int out[2] = {-1, -1};
  if (to_file) {
    out[1] = open(opts_.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    out[0] = out[1] < 0 ? -1 : open(opts_.log_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (out[0] >= 0) lseek(out[0], 0, SEEK_END);
  } else if (pipe(out) != 0) {
    out[0] = out[1] = -1;
  }
  if (out[0] < 0 || out[1] < 0) {
    error_ = to_file ? "cannot open " + opts_.log_path : "pipe failed";
    if (out[1] >= 0) close(out[1]);
    return false;
  }
  pid_ = fork();
  if (pid_ == 0) {
    dup2(out[1], STDOUT_FILENO);
    if (to_file) dup2(out[1], STDERR_FILENO);
    close(out[0]);
    close(out[1]);
    if (opts_.max_open_files) {
      rlimit lim{opts_.max_open_files, opts_.max_open_files};
      setrlimit(RLIMIT_NOFILE, &lim);
    }
    std::vector<std::string> args = {opts_.binary,  "serve",        "--config",   opts_.config,
                                     "--listen",    "127.0.0.1:0",  "--data-dir", opts_.data_dir,
                                     "--admin-key", opts_.admin_key};
    args.insert(args.end(), opts_.extra_args.begin(), opts_.extra_args.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(opts_.binary.c_str(), argv.data());
    _exit(127);
  }
  close(out[1]);
  std::string buf;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, 100) > 0) {
      char c[256];
      ssize_t n = read(out[0], c, sizeof c);
      if (n < 0 || (n == 0 && !to_file)) break;
      if (n == 0) {  // the end of the log file for now: the server may still write
        if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
          pid_ = -1;
          break;
        }
        usleep(10000);
        continue;
      }
      buf.append(c, static_cast<size_t>(n));
      auto pos = buf.find("listening on ");
      auto nl = pos == std::string::npos ? std::string::npos : buf.find('\n', pos);
      if (nl != std::string::npos) {
        std::string ep = buf.substr(pos + 13, nl - pos - 13);
        port_ = std::atoi(ep.substr(ep.rfind(':') + 1).c_str());
        // Keep draining stdout in the background is unnecessary: the server
        // prints nothing else on stdout.
        close(out[0]);
        return port_ > 0;
      }
    }
  }
  close(out[0]);
  const std::string exited = Kill9() ? "" : "; " + error_;
  error_ = "server did not print 'listening on' within 20 s; got: " + buf + exited;
  return false;
}

int ServerProcess::Stop() {
  Signal(SIGTERM);
  return Wait();
}

void ServerProcess::Signal(int sig) {
  if (pid_ > 0) kill(pid_, sig);
}

int ServerProcess::Wait() {
  if (pid_ <= 0) return -1;
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool ServerProcess::Kill9() {
  if (pid_ <= 0) return true;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    error_ = "quotum exited by itself before the kill, status " +
             std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status)) +
             " (see its stderr: a sanitizer report?)";
    return false;
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return true;
}

bool IsExecutable(const std::string& path) { return access(path.c_str(), X_OK) == 0; }

}  // namespace quotum::testing
