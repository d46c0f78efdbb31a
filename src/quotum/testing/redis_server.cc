#include "quotum/testing/redis_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <system_error>
#include <thread>

#include "quotum/testing/server_process.h"

namespace quotum::testing {
namespace {

// True when 127.0.0.1:port answers an inline PING with +PONG within 500 ms
// (a server still loading its AOF answers -LOADING instead).
bool AnswersPing(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string got;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      write(fd, "PING\r\n", 6) == 6) {
    pollfd p{fd, POLLIN, 0};
    char buf[64];
    ssize_t n = 0;
    if (poll(&p, 1, 500) > 0 && (n = read(fd, buf, sizeof buf)) > 0) got.assign(buf, n);
  }
  close(fd);
  return got.starts_with("+PONG");
}

}  // namespace

RedisServer::RedisServer(Options options) : opts_(std::move(options)) {}

RedisServer::~RedisServer() {
  if (pid_ > 0) Stop();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string RedisServer::FindBinary() {
  if (!opts_.binary.empty()) {
    if (IsExecutable(opts_.binary)) return opts_.binary;
    error_ = opts_.binary + " is not an executable; scripts/install-deps.sh installs redis-server";
    return "";
  }
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH")) {
    std::stringstream ss(path);
    for (std::string dir; std::getline(ss, dir, ':');) dirs.push_back(dir);
  }
  dirs.insert(dirs.end(), {"/usr/bin", "/usr/local/bin"});
  for (const auto& dir : dirs) {
    const std::string candidate = dir + "/redis-server";
    if (!dir.empty() && IsExecutable(candidate)) return candidate;
  }
  error_ =
      "redis-server not found in $PATH, /usr/bin or /usr/local/bin; "
      "scripts/install-deps.sh installs it (Debian package redis-server)";
  return "";
}

bool RedisServer::PrepareFirstStart() {
  dir_ = MakeTempDir("quotum-redis-");
  if (dir_.empty()) {
    error_ = "cannot create a temp dir for redis-server";
    return false;
  }
  port_ = PickFreePort();
  if (port_ == 0) error_ = "no free TCP port on 127.0.0.1";
  return port_ != 0;
}

std::vector<std::string> RedisServer::Arguments(const std::string& binary) const {
  std::vector<std::string> args = {binary,
                                   "--port",
                                   std::to_string(port_),
                                   "--bind",
                                   "127.0.0.1",
                                   "--save",
                                   "",
                                   "--appendonly",
                                   opts_.appendonly ? "yes" : "no",
                                   "--appendfsync",
                                   opts_.appendfsync,
                                   "--dir",
                                   dir_,
                                   "--daemonize",
                                   "no",
                                   "--logfile",
                                   ""};
  args.insert(args.end(), opts_.extra_args.begin(), opts_.extra_args.end());
  return args;
}

bool RedisServer::Start() {
  if (pid_ > 0) {
    error_ = "redis-server is already running";
    return false;
  }
  const std::string binary = FindBinary();
  if (binary.empty()) return false;
  const bool first = dir_.empty();
  if (first && !PrepareFirstStart()) return false;
  for (int attempt = 1;; ++attempt) {
    if (Launch(binary) && WaitUntilReady()) return true;
    // On the first start the free port may have been taken in between: pick another.
    const bool port_taken = LogTail().find("Address already in use") != std::string::npos;
    if (!first || !port_taken || attempt == 3) return false;
    port_ = PickFreePort();
  }
}

bool RedisServer::Launch(const std::string& binary) {
  std::vector<std::string> args = Arguments(binary);
  const std::string log = dir_ + "/redis.log";
  pid_ = fork();
  if (pid_ < 0) {
    error_ = "fork failed";
    return false;
  }
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test process
    const int out = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (out >= 0) {
      dup2(out, STDOUT_FILENO);
      dup2(out, STDERR_FILENO);
    }
    close_range(3, ~0U, 0);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  return true;
}

bool RedisServer::WaitUntilReady() {
  const auto deadline = std::chrono::steady_clock::now() + kHelperStartTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      error_ = "redis-server on port " + std::to_string(port_) + " exited (status " +
               std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status)) +
               ") before answering PING; its log:\n" + LogTail();
      return false;
    }
    if (AnswersPing(port_)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Kill9();
  error_ = "redis-server on port " + std::to_string(port_) +
           " did not answer PING within 10 s; its log:\n" + LogTail();
  return false;
}

int RedisServer::Stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void RedisServer::Kill9() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void RedisServer::Pause() {
  if (pid_ > 0) kill(pid_, SIGSTOP);
}

void RedisServer::Resume() {
  if (pid_ > 0) kill(pid_, SIGCONT);
}

std::string RedisServer::LogTail() const {
  std::ifstream in(dir_ + "/redis.log");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string all = ss.str();
  return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
}

}  // namespace quotum::testing
