#include "quotum/testing/postgres_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <system_error>
#include <thread>

#include "quotum/testing/server_process.h"

namespace quotum::testing {
namespace {

/// Sends `sig` to the postmaster `postmaster` and to each of its children.
/// (Each backend leads a process group of its own, so a signal to the
/// postmaster's group misses them.)
void SignalServerAndChildren(pid_t postmaster, int sig) {
  kill(postmaster, sig);
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t comm_end = stat.rfind(')');  // the command name may hold spaces
    if (comm_end == std::string::npos) continue;
    std::istringstream fields(stat.substr(comm_end + 1));
    char state = 0;
    pid_t parent = 0;
    if ((fields >> state >> parent) && parent == postmaster) kill(std::stoi(name), sig);
  }
}

constexpr char kInstallHint[] = "scripts/install-deps.sh installs them (Debian package postgresql)";

bool HasServerBinaries(const std::string& dir) {
  return !dir.empty() && IsExecutable(dir + "/postgres") && IsExecutable(dir + "/initdb");
}

std::string TempRoot() {
  const char* base = std::getenv("TMPDIR");
  return base && *base ? base : "/tmp";
}

// The bin dirs of /usr/lib/postgresql/<major>/, newest major first.
std::vector<std::string> DebianBinDirs() {
  std::vector<std::pair<int, std::string>> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    found.emplace_back(std::atoi(entry.path().filename().c_str()), entry.path() / "bin");
  }
  std::sort(found.rbegin(), found.rend());
  std::vector<std::string> dirs;
  for (auto& [major, dir] : found) dirs.push_back(std::move(dir));
  return dirs;
}

std::string ReadTail(const std::string& path, std::streamoff from = 0) {
  std::ifstream in(path);
  in.seekg(from);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string all = ss.str();
  return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
}

std::streamoff FileSize(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? st.st_size : 0;
}

// How a child is started: argv[0] is a path or a name looked up in $PATH.
struct ChildPlan {
  std::vector<std::string> args;
  std::string log;  ///< stdout and stderr are appended here
  std::string cwd;
  bool switch_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
  bool own_process_group = false;  ///< so that Kill9 reaches its children too
};

// Forks a child that runs `plan`; its pid, or -1. The child dies with the
// thread that forked it (PR_SET_PDEATHSIG, set after the user switch, which
// clears it).
pid_t Spawn(ChildPlan plan) {
  std::vector<char*> argv;
  for (auto& a : plan.args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid != 0) return pid;
  if (plan.own_process_group) setpgid(0, 0);
  const int out = open(plan.log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (out >= 0) {
    dup2(out, STDOUT_FILENO);
    dup2(out, STDERR_FILENO);
  }
  if (plan.switch_user &&
      (setgroups(0, nullptr) != 0 || setgid(plan.gid) != 0 || setuid(plan.uid) != 0)) {
    _exit(126);
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);
  if (chdir(plan.cwd.c_str()) != 0) _exit(125);
  close_range(3, ~0U, 0);
  execvp(argv[0], argv.data());
  _exit(127);
}

}  // namespace

PostgresServer::PostgresServer(Options options) : opts_(std::move(options)) {}

PostgresServer::~PostgresServer() {
  Kill9();  // no shutdown checkpoint: the cluster is deleted next
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string PostgresServer::UrlOf(const std::string& database) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + database;
}

std::string PostgresServer::FindBinDir() {
  if (!opts_.bin_dir.empty()) {
    if (HasServerBinaries(opts_.bin_dir)) return opts_.bin_dir;
    error_ = opts_.bin_dir + " has no initdb and postgres executables; " + kInstallHint;
    return "";
  }
  std::vector<std::string> dirs = DebianBinDirs();
  dirs.push_back("/usr/local/pgsql/bin");
  if (const char* path = std::getenv("PATH")) {
    std::stringstream ss(path);
    for (std::string dir; std::getline(ss, dir, ':');) dirs.push_back(dir);
  }
  for (const auto& dir : dirs) {
    if (HasServerBinaries(dir)) return dir;
  }
  error_ = std::string(
               "PostgreSQL's initdb and postgres not found in /usr/lib/postgresql/*/bin, "
               "/usr/local/pgsql/bin or $PATH; ") +
           kInstallHint;
  return "";
}

bool PostgresServer::ResolveServerUser() {
  switch_user_ = geteuid() == 0;
  if (!switch_user_) return true;
  const passwd* pw = getpwnam("postgres");
  if (!pw) {
    error_ = std::string(
                 "running as root, and PostgreSQL refuses root: it needs the postgres OS user, "
                 "which the postgresql package creates; ") +
             kInstallHint;
    return false;
  }
  server_uid_ = pw->pw_uid;
  server_gid_ = pw->pw_gid;
  return true;
}

bool PostgresServer::GiveToServerUser(const std::string& path) {
  if (!switch_user_ || chown(path.c_str(), server_uid_, server_gid_) == 0) return true;
  error_ = "cannot chown " + path + " to the postgres user";
  return false;
}

bool PostgresServer::RunAsServerUser(const std::vector<std::string>& args, const std::string& log) {
  const pid_t pid = Spawn({args, log, TempRoot(), switch_user_, server_uid_, server_gid_, false});
  if (pid < 0) return false;
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string PostgresServer::TemplateCluster(const std::string& bin_dir) {
  struct stat st {};
  stat((bin_dir + "/postgres").c_str(), &st);
  const std::string key = bin_dir + "|" + std::to_string(st.st_size) + "|" +
                          std::to_string(st.st_mtime) + "|" +
                          std::to_string(switch_user_ ? server_uid_ : geteuid());
  const std::string path =
      TempRoot() + "/quotum-pg-template-" + std::to_string(std::hash<std::string>{}(key));
  auto valid = [&] { return access((path + "/data/PG_VERSION").c_str(), F_OK) == 0; };
  if (valid()) return path + "/data";
  const std::string staging = MakeTempDir("quotum-pg-template-new-");
  std::error_code ec;
  if (staging.empty() || !GiveToServerUser(staging)) {
    error_ = "cannot prepare a temp dir for initdb";
    return "";
  }
  if (!RunAsServerUser({bin_dir + "/initdb", "-D", staging + "/data", "-U", "postgres", "-A",
                        "trust", "-E", "UTF8", "--locale=C", "-N"},
                       staging + "/initdb.log")) {
    error_ = "initdb failed; its log:\n" + ReadTail(staging + "/initdb.log");
    std::filesystem::remove_all(staging, ec);
    return "";
  }
  // Published with one rename; another test process may have been first.
  if (rename(staging.c_str(), path.c_str()) != 0) {
    if (!valid()) {
      std::filesystem::remove_all(path, ec);  // a remnant (a temp cleaner ate part of it)
      rename(staging.c_str(), path.c_str());
    }
    std::filesystem::remove_all(staging, ec);
  }
  if (!valid()) error_ = "cannot publish the template cluster " + path;
  return valid() ? path + "/data" : "";
}

bool PostgresServer::PrepareFirstStart(const std::string& bin_dir) {
  if (!ResolveServerUser()) return false;
  const std::string cluster = TemplateCluster(bin_dir);
  if (cluster.empty()) return false;
  dir_ = MakeTempDir("quotum-pg-");
  if (dir_.empty()) {
    error_ = "cannot create a temp dir for postgres";
    return false;
  }
  if (!GiveToServerUser(dir_)) return false;
  if (!RunAsServerUser({"cp", "-a", cluster, dir_ + "/data"}, dir_ + "/postgres.log")) {
    error_ = "cannot copy the template cluster " + cluster + ": " + LogTail();
    return false;
  }
  port_ = PickFreePort();
  if (port_ == 0) error_ = "no free TCP port on 127.0.0.1";
  return port_ != 0;
}

// fsync=off: no disk flushes (a machine crash is not what the tests
// simulate); commits still reach the OS, so they survive a kill -9.
bool PostgresServer::Launch(const std::string& bin_dir) {
  std::vector<std::string> args = {bin_dir + "/postgres",        "-D", dir_ + "/data", "-p",
                                   std::to_string(port_),        "-k", dir_,           "-c",
                                   "listen_addresses=127.0.0.1", "-c", "fsync=off",    "-c",
                                   "full_page_writes=off"};
  args.insert(args.end(), opts_.extra_args.begin(), opts_.extra_args.end());
  pid_ = Spawn({args, dir_ + "/postgres.log", dir_, switch_user_, server_uid_, server_gid_, true});
  if (pid_ < 0) error_ = "fork failed";
  return pid_ > 0;
}

bool PostgresServer::WaitUntilReady() {
  const std::string conninfo = "host=127.0.0.1 port=" + std::to_string(port_) +
                               " user=postgres dbname=postgres connect_timeout=2";
  const auto deadline = std::chrono::steady_clock::now() + kHelperStartTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      error_ = "postgres on port " + std::to_string(port_) + " exited (status " +
               std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status)) +
               ") before accepting connections; its log:\n" + LogTail();
      return false;
    }
    if (PQping(conninfo.c_str()) == PQPING_OK) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Kill9();
  error_ = "postgres on port " + std::to_string(port_) +
           " did not accept connections within 10 s; its log:\n" + LogTail();
  return false;
}

bool PostgresServer::Start() {
  if (pid_ > 0) {
    error_ = "postgres is already running";
    return false;
  }
  const std::string bin_dir = FindBinDir();
  if (bin_dir.empty()) return false;
  const bool first = dir_.empty();
  if (first && !PrepareFirstStart(bin_dir)) return false;
  for (int attempt = 1;; ++attempt) {
    const std::streamoff log_start = FileSize(dir_ + "/postgres.log");
    if (Launch(bin_dir) && WaitUntilReady()) {
      return !first || Execute("CREATE DATABASE quotum");
    }
    const std::string log = ReadTail(dir_ + "/postgres.log", log_start);
    // The free port may have been taken in between (first start: pick
    // another), or the backends of a killed server may still be exiting.
    const bool port_taken = log.find("could not bind") != std::string::npos;
    const bool old_backends = log.find("pre-existing shared memory") != std::string::npos;
    if (attempt == 3 || !((first && port_taken) || old_backends)) return false;
    if (port_taken) port_ = PickFreePort();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

bool PostgresServer::Execute(const std::string& sql, const std::string& database) {
  PGconn* conn = PQconnectdb(("host=127.0.0.1 port=" + std::to_string(port_) +
                              " user=postgres connect_timeout=5 dbname=" + database)
                                 .c_str());
  bool ok = PQstatus(conn) == CONNECTION_OK;
  if (ok) {
    PGresult* r = PQexec(conn, sql.c_str());
    ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
  }
  if (!ok) error_ = sql + ": " + PQerrorMessage(conn);
  PQfinish(conn);
  return ok;
}

std::string PostgresServer::CreateDatabase() {
  const std::string name =
      "t" + std::to_string(getpid()) + "_" + std::to_string(++databases_created_);
  return Execute("CREATE DATABASE " + name) ? UrlOf(name) : "";
}

bool PostgresServer::ResetDatabase(const std::string& database) {
  return Execute(
      "SET client_min_messages=warning; DROP SCHEMA public CASCADE; CREATE SCHEMA public",
      database);
}

int PostgresServer::Stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGINT);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void PostgresServer::Kill9() {
  if (pid_ <= 0) return;
  kill(-pid_, SIGKILL);  // the postmaster's process group: it and its backends
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void PostgresServer::Pause() {
  if (pid_ > 0) SignalServerAndChildren(pid_, SIGSTOP);
}

void PostgresServer::Resume() {
  if (pid_ > 0) SignalServerAndChildren(pid_, SIGCONT);
}

std::string PostgresServer::LogTail() const { return ReadTail(dir_ + "/postgres.log"); }

}  // namespace quotum::testing
