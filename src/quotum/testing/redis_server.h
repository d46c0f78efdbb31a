#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace quotum::testing {

/// A real `redis-server` child on 127.0.0.1, on a free port, with its data in
/// a fresh temp dir (removed by the destructor). For tests of the Redis
/// backend: it can be stopped, killed and started again on the same port and
/// dir ("Redis goes down and comes back").
class RedisServer {
 public:
  struct Options {
    /// The redis-server executable; empty: searched in $PATH, then /usr/bin,
    /// /usr/local/bin.
    std::string binary;
    bool appendonly = true;
    std::string appendfsync = "everysec";  ///< always | everysec | no
    std::vector<std::string> extra_args;   ///< e.g. {"--maxmemory", "10mb"}
  };

  RedisServer() : RedisServer(Options()) {}
  explicit RedisServer(Options options);
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  /// Starts the server (the first time on a free port in a new temp dir,
  /// later on the same ones) and returns once it answers PING; false (with
  /// `error()` set) when redis-server is missing or not up within 10 s.
  bool Start();
  /// SIGTERM, then waits for the exit (Redis writes its AOF/RDB on the way);
  /// returns the exit status, or -1.
  int Stop();
  /// SIGKILL and wait: no shutdown work at all.
  void Kill9();
  /// SIGSTOP: the connections stay open and every command waits, as behind
  /// a stalled network, until Resume (SIGCONT).
  void Pause();
  void Resume();

  bool running() const { return pid_ > 0; }
  int port() const { return port_; }
  /// The data dir (--dir): AOF files and redis.log live here.
  const std::string& dir() const { return dir_; }
  const std::string& error() const { return error_; }

 private:
  /// The redis-server path, or "" with `error_` set.
  std::string FindBinary();
  /// Allocates the port and dir on the first start.
  bool PrepareFirstStart();
  std::vector<std::string> Arguments(const std::string& binary) const;
  /// Forks and execs redis-server (stdout and stderr to dir/redis.log).
  bool Launch(const std::string& binary);
  /// Polls PING until PONG, the child's exit, or the deadline.
  bool WaitUntilReady();
  /// The last lines of redis.log, for error messages.
  std::string LogTail() const;

  Options opts_;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string dir_;
  std::string error_;
};

}  // namespace quotum::testing
