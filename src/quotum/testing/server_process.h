#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace quotum::testing {

/// A real `quotum serve` child process on 127.0.0.1, port 0, in a temp data
/// dir. Start() returns once the server has printed "listening on HOST:PORT".
class ServerProcess {
 public:
  struct Options {
    std::string binary;    ///< path of the quotum executable
    std::string config;    ///< TOML config path
    std::string data_dir;  ///< created if missing
    std::string admin_key = "test-admin-key";
    std::vector<std::string> extra_args;
    /// When non-zero, the child's RLIMIT_NOFILE (soft and hard), as `ulimit -n`.
    unsigned max_open_files = 0;
    /// If set, the server's stdout and stderr are appended to this file (for
    /// tests that read its logs); Start() finds the port there.
    std::string log_path;
  };

  explicit ServerProcess(Options options) : opts_(std::move(options)) {}
  ~ServerProcess();

  /// Starts the process; false (with `error()` set) if it did not come up in 20 s.
  bool Start();
  /// Sends SIGTERM and waits; returns the exit status (or -1). Non-zero also
  /// when a sanitizer reported an error in the child (it sets the exit code).
  int Stop();
  /// SIGKILL, no drain. False (with `error()` set) when the child had already
  /// exited by itself, e.g. halted by a sanitizer report.
  bool Kill9();
  /// Sends `sig` without waiting.
  void Signal(int sig);
  /// Waits for the process to exit; returns its exit status (or -1).
  int Wait();

  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  const std::string& error() const { return error_; }
  const Options& options() const { return opts_; }

 private:
  Options opts_;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string error_;
};

/// A fresh empty directory under $TMPDIR (or /tmp), removed with everything
/// in it (and a `<dir>.toml` beside it) when this process exits, unless
/// QUOTUM_KEEP_TEST_DIRS=1.
std::string MakeTempDir(const std::string& prefix);

/// A TCP port on 127.0.0.1 that was free a moment ago, so nothing listens on
/// it (0 on failure).
int PickFreePort();

/// True when this process may execute the file `path`.
bool IsExecutable(const std::string& path);

/// How long a helper server the tests start (redis-server, postgres) may
/// take before it answers.
inline constexpr std::chrono::seconds kHelperStartTimeout{10};

}  // namespace quotum::testing
