#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace quotum::testing {

/// A real PostgreSQL server child (`postgres`) on 127.0.0.1, on a free port,
/// with its cluster and unix socket in a fresh temp dir (removed by the
/// destructor). For tests of the PostgreSQL backend: it can be stopped, killed
/// and started again on the same port and dir ("the database goes down and
/// comes back"), and it hands out fresh empty databases cheaply.
///
/// PostgreSQL refuses to run as root: when the test runs as root, initdb and
/// postgres run as the `postgres` OS user (the temp dir is given to it);
/// otherwise as the test's own user. The server dies with the test process.
///
/// The destructor kills the server and removes the dir.
///
/// initdb runs once per machine and build of PostgreSQL: its cluster is kept
/// as a template in $TMPDIR (quotum-pg-template-*) and copied for each
/// server, which makes Start() take a few hundred milliseconds.
class PostgresServer {
 public:
  struct Options {
    /// The dir of initdb and postgres; empty: the newest
    /// /usr/lib/postgresql/*/bin, then /usr/local/pgsql/bin, then $PATH.
    std::string bin_dir;
    std::vector<std::string> extra_args;  ///< e.g. {"-c", "max_connections=20"}
  };

  PostgresServer() : PostgresServer(Options()) {}
  explicit PostgresServer(Options options);
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  /// Starts the server (the first time: a new cluster on a free port in a new
  /// temp dir with an empty database "quotum"; later on the same ones) and
  /// returns once it accepts connections; false (with `error()` set) when
  /// the binaries are missing or it is not up within 10 s.
  bool Start();
  /// Fast shutdown (SIGINT: open sessions are ended), then waits for the
  /// exit; returns the exit status, or -1.
  int Stop();
  /// SIGKILL to the server and all its backends, and wait: no shutdown work.
  void Kill9();
  /// SIGSTOP to the server and all its backends: connections stay open and
  /// every query waits, as behind a stalled disk or network, until Resume.
  void Pause();
  /// SIGCONT to the server and its backends after Pause.
  void Resume();

  /// A new empty database with a unique name on the running server; returns
  /// its URL, or "" with `error()` set. Takes 0.1 to 0.3 s (it copies
  /// template1's few hundred files).
  std::string CreateDatabase();
  /// Empties `database` (a name, e.g. "quotum") for the next test: drops
  /// schema public with everything in it (the Quotum store keeps all its
  /// tables, schema_migrations included, there) and creates it again. Some
  /// tens of milliseconds. False with `error()` set on failure.
  bool ResetDatabase(const std::string& database);

  /// postgresql://postgres@127.0.0.1:PORT/quotum
  std::string url() const { return UrlOf("quotum"); }
  /// postgresql://postgres@127.0.0.1:PORT/<database>
  std::string UrlOf(const std::string& database) const;

  bool running() const { return pid_ > 0; }
  int port() const { return port_; }
  /// The temp dir: data/ (the cluster), postgres.log and the unix socket.
  const std::string& dir() const { return dir_; }
  const std::string& error() const { return error_; }

 private:
  /// The dir holding initdb and postgres, or "" with `error_` set.
  std::string FindBinDir();
  /// Decides whom initdb and postgres run as (the postgres user when root).
  bool ResolveServerUser();
  /// Gives `path` to the server's user (when running as root).
  bool GiveToServerUser(const std::string& path);
  /// The dir, the cluster (from the template) and the port of the first start.
  bool PrepareFirstStart(const std::string& bin_dir);
  /// The initdb'd template cluster for `bin_dir` (made on first use).
  std::string TemplateCluster(const std::string& bin_dir);
  /// Runs `args` as the server's user and waits; true on exit status 0.
  bool RunAsServerUser(const std::vector<std::string>& args, const std::string& log);
  /// Forks and execs postgres (stdout and stderr to dir/postgres.log).
  bool Launch(const std::string& bin_dir);
  /// Polls the server until it accepts connections, the child exits, or the
  /// deadline.
  bool WaitUntilReady();
  /// Runs SQL on `database`; false with `error_` set.
  bool Execute(const std::string& sql, const std::string& database = "postgres");
  /// The last lines of postgres.log, for error messages.
  std::string LogTail() const;

  Options opts_;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string dir_;
  std::string error_;
  int databases_created_ = 0;
  bool switch_user_ = false;  ///< running as root: children setuid to the postgres user
  uid_t server_uid_ = 0;
  gid_t server_gid_ = 0;
};

}  // namespace quotum::testing
