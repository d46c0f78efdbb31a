#pragma once

// Shared helpers for tests that drive the real `quotum` binary over HTTP.
#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "quotum/core/billing_period.h"
#include "quotum/store/postgres/pg_connection.h"
#include "quotum/store/sqlite/db.h"
#include "quotum/store/sqlite/sqlite_store.h"
#include "quotum/testing/http_client.h"
#include "quotum/testing/postgres_server.h"
#include "quotum/testing/redis_server.h"
#include "quotum/testing/server_process.h"

namespace quotum::itest {

inline const std::string kAdminKey = "test-admin-key";

/// The quotum binary the tests start: this build's, or $QUOTUM_TEST_BINARY
/// (to run the tests against another build, e.g. an older one).
inline std::string BinaryPath() {
  const char* other = std::getenv("QUOTUM_TEST_BINARY");
  return other && *other ? other : QUOTUM_BINARY;
}

/// With QUOTUM_TEST_BACKEND=scale-out (the "scale-out/..." CTest entries),
/// the servers StartServer starts decide in a real Redis and keep their cold
/// store in a real PostgreSQL, both started once per test process and
/// stopped at its exit: the same HTTP tests, on the other backend. Empty
/// otherwise (embedded).
inline bool ScaleOut() {
  const char* backend = std::getenv("QUOTUM_TEST_BACKEND");
  return backend && std::string(backend) == "scale-out";
}

/// The scale-out backend's servers (started by the first BackendArgs call).
inline std::unique_ptr<testing::RedisServer> redis;
inline std::unique_ptr<testing::PostgresServer> postgres;

inline std::vector<std::string> BackendArgs() {
  if (!ScaleOut()) return {};
  if (!redis) {
    redis = std::make_unique<testing::RedisServer>();
    postgres = std::make_unique<testing::PostgresServer>();
    EXPECT_TRUE(redis->Start()) << redis->error();
    EXPECT_TRUE(postgres->Start()) << postgres->error();
  }
  return {"--redis-url", "redis://127.0.0.1:" + std::to_string(redis->port()), "--postgres-url",
          postgres->url()};
}

/// Runs `sql` on the cold store of the server whose data dir is `data_dir`
/// (embedded: its SQLite file; scale-out: the PostgreSQL database), behind
/// its back: for tests that plant what the server must find.
inline absl::Status ExecColdStoreSql(const std::string& data_dir, const std::string& sql) {
  if (ScaleOut()) {
    auto conn = store::postgres::PgConnection::Connect(postgres->url(), absl::Seconds(5));
    if (!conn.ok()) return conn.status();
    return (*conn)->Exec(sql).status();
  }
  auto db = store::sqlite::Db::Open(data_dir + "/" + store::sqlite::kDatabaseFileName);
  if (!db.ok()) return db.status();
  return (*db)->Exec(sql);
}

/// Starts `quotum serve` on the example config (on the backend BackendArgs
/// names); `log_path`, if set, receives its stdout and stderr.
inline std::unique_ptr<testing::ServerProcess> StartServer(const std::string& data_dir,
                                                           std::vector<std::string> extra = {},
                                                           const std::string& log_path = "") {
  testing::ServerProcess::Options o;
  o.binary = BinaryPath();
  o.config = QUOTUM_EXAMPLE_CONFIG;
  o.data_dir = data_dir;
  o.admin_key = kAdminKey;
  o.extra_args = std::move(extra);
  for (std::string& a : BackendArgs()) o.extra_args.push_back(std::move(a));
  o.log_path = log_path;
  auto s = std::make_unique<testing::ServerProcess>(o);
  EXPECT_TRUE(s->Start()) << s->error();
  return s;
}

/// StartServer on the example config with `toml` appended (plans of a
/// suite's own), written next to `data_dir`.
inline std::unique_ptr<testing::ServerProcess> StartServerWithToml(const std::string& data_dir,
                                                                   const std::string& toml) {
  std::ifstream in(QUOTUM_EXAMPLE_CONFIG);
  std::stringstream text;
  text << in.rdbuf() << toml;
  const std::string path = data_dir + ".toml";
  std::ofstream(path) << text.str();
  testing::ServerProcess::Options o;
  o.binary = BinaryPath();
  o.config = path;
  o.data_dir = data_dir;
  o.admin_key = kAdminKey;
  for (std::string& a : BackendArgs()) o.extra_args.push_back(std::move(a));
  auto s = std::make_unique<testing::ServerProcess>(o);
  EXPECT_TRUE(s->Start()) << s->error();
  return s;
}

/// Sliding-window rules weigh in the previous minute's requests, so a test
/// that fills a per-minute rule and then expects a 429 sees one more request
/// admitted if it straddles a whole minute (the previous minute's 30 weigh
/// 29.99, which rounds down). Call this first: it waits, when needed, until
/// at least `need` is left before the next whole minute of the wall clock
/// (the clock the server's windows are aligned to).
inline void StayInsideOneMinute(std::chrono::seconds need = std::chrono::seconds(10)) {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const auto next_minute = ceil<minutes>(now + nanoseconds(1));
  if (next_minute - now < need) std::this_thread::sleep_until(next_minute + milliseconds(20));
}

/// GETs `path` until the response satisfies `ready` or `patience` has
/// passed, and returns the last response. In scale-out mode, reports and
/// message reads come from PostgreSQL, which trails the decisions (made in
/// Redis) by one facts-drain round (docs/scale-out.md); embedded, the first
/// response is ready.
template <typename Ready>
testing::HttpResponse GetEventually(testing::HttpClient& c, const std::string& path,
                                    const std::map<std::string, std::string>& headers, Ready ready,
                                    std::chrono::milliseconds patience = std::chrono::seconds(5)) {
  const auto give_up = std::chrono::steady_clock::now() + patience;
  for (;;) {
    testing::HttpResponse r = c.Get(path, headers);
    if (ready(r) || std::chrono::steady_clock::now() > give_up) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

/// A monthly subscription instant whose current period began `ago` before
/// now (whole seconds): the anchor k months back on the same day and time,
/// for the first k whose month has that day.
inline absl::Time AnchorOfAPeriodBegun(absl::Duration ago) {
  const absl::Time now = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  const absl::Time begun = now - ago;
  const absl::CivilSecond b = absl::ToCivilSecond(begun, absl::UTCTimeZone());
  for (int k = 1; k <= 3; ++k) {
    const absl::CivilSecond a(b.year(), b.month() - k, b.day(), b.hour(), b.minute(), b.second());
    const absl::Time anchor = absl::FromCivil(a, absl::UTCTimeZone());
    if (a.day() == b.day() && PeriodAt(anchor, BillingInterval{}, now).start == begun)
      return anchor;
  }
  ADD_FAILURE() << "no anchor for a period begun at " << FormatRfc3339(begun);
  return begun;
}

inline std::map<std::string, std::string> Admin() { return {{"X-API-Key", kAdminKey}}; }
inline std::map<std::string, std::string> Bearer(const std::string& key) {
  return {{"Authorization", "Bearer " + key}};
}

struct Tenant {
  std::string id;
  std::string key;
  std::string key_id;
};

/// Creates a tenant through the admin API; fails the test on error.
inline Tenant CreateTenant(testing::HttpClient& c, const std::string& id, const std::string& plan,
                           const std::string& start = "") {
  boost::json::object body{{"id", id}, {"name", id + " Ltd"}, {"plan", plan}};
  if (!start.empty()) body["subscription_start"] = start;
  auto r = c.Post("/admin/tenants", boost::json::serialize(body), Admin());
  EXPECT_EQ(r.status, 201) << r.body;
  auto j = r.json();
  if (!j.is_object()) return {};
  return {id, std::string(j.at("api_key").as_string()), std::string(j.at("key_id").as_string())};
}

/// Raises a key's short-window limits (load tests must not hit the general rule).
inline void SetKeyLimits(testing::HttpClient& c, const Tenant& t, uint64_t general,
                         uint64_t messages = 1000000, uint64_t sessions = 1000000) {
  auto r = c.Send("PUT", "/admin/api-keys/" + t.key_id + "/rate-limits",
                  boost::json::serialize(boost::json::object{
                      {"general", general}, {"messages", messages}, {"sessions", sessions}}),
                  Admin());
  EXPECT_EQ(r.status, 200) << r.body;
}

/// Creates a session and turns it `working`; fails the test on error.
inline void StartSession(testing::HttpClient& c, const Tenant& t, const std::string& id) {
  auto r = c.Post("/api/v2/sessions", boost::json::serialize(boost::json::object{{"id", id}}),
                  Bearer(t.key));
  EXPECT_EQ(r.status, 201) << r.body;
  r = c.Send("PATCH", "/api/v2/sessions/" + id, R"({"status":"working"})", Bearer(t.key));
  EXPECT_EQ(r.status, 200) << r.body;
}

inline std::string ConsumeBody(const std::string& meter, uint64_t q, bool partial = false) {
  return boost::json::serialize(
      boost::json::object{{"meter", meter}, {"quantity", q}, {"partial", partial}});
}

inline uint64_t UsageField(testing::HttpClient& c, const Tenant& t, const std::string& field) {
  auto r = c.Get("/api/v2/usage/current", Bearer(t.key));
  EXPECT_EQ(r.status, 200) << r.body;
  return r.json().at(field).to_number<uint64_t>();
}

/// A suite sharing one server (on the backend BackendArgs picks) for all its
/// tests: started before the first, stopped, cleanly, after the last.
/// `Name` keeps each suite's server its own.
template <typename Name>
class OneServerSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(testing::MakeTempDir("quotum-suite-"));
    server_ = StartServer(*dir_).release();
  }
  static void TearDownTestSuite() {
    EXPECT_EQ(server_->Stop(), 0);
    delete server_;
    delete dir_;
  }
  testing::HttpClient Client() { return testing::HttpClient(server_->port()); }

  inline static std::string* dir_ = nullptr;
  inline static testing::ServerProcess* server_ = nullptr;
};

}  // namespace quotum::itest
