// HTTP API tests against one real server started on port 0.
#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/time/time.h"
#include "harness.h"
#include "quotum/core/billing_period.h"
#include "quotum/testing/raw_connection.h"

namespace quotum::itest {
namespace {

using testing::HttpClient;

class ApiTest : public OneServerSuite<ApiTest> {};

TEST_F(ApiTest, HealthAndReadiness) {
  auto c = Client();
  EXPECT_EQ(c.Get("/healthz").status, 200);
  auto r = c.Get("/readyz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.json().at("status"), "ready");
}

// Issue 10: a read that waits on the store runs on the read pool, so the I/O
// thread that took it goes on serving its other connections. The store is held
// from outside while that read is sent on as many connections as there are I/O
// threads (embedded: SQLite's write lock, which /readyz waits on for up to 5 s,
// on the probe pool since 3ceba37, so this case no longer covers the read pool;
// scale-out: an exclusive lock on PostgreSQL's alerts table, which
// GET /api/v2/alerts waits on); /healthz on further connections, which share
// those threads, answers meanwhile. Before the pool, it waited behind the read.
// In scale-out, where those reads fill the read pool, /metrics answers too.
TEST_F(ApiTest, AReadWaitingOnTheStoreHoldsUpNoOtherConnection) {
  auto c = Client();
  const Tenant t = CreateTenant(c, "pooled", "pro");
  std::unique_ptr<store::sqlite::Db> sqlite;
  std::unique_ptr<store::postgres::PgConnection> pg;
  auto exec = [&](const char* sql) { return pg ? pg->Exec(sql).status() : sqlite->Exec(sql); };
  std::string read;
  if (ScaleOut()) {
    auto conn = store::postgres::PgConnection::Connect(postgres->url(), absl::Seconds(5));
    ASSERT_TRUE(conn.ok()) << conn.status();
    pg = std::move(*conn);
    ASSERT_EQ(exec("BEGIN"), absl::OkStatus());
    ASSERT_EQ(exec("LOCK TABLE alerts IN ACCESS EXCLUSIVE MODE"), absl::OkStatus());
    read = "GET /api/v2/alerts HTTP/1.1\r\nHost: q\r\nAuthorization: Bearer " + t.key + "\r\n\r\n";
  } else {
    auto db = store::sqlite::Db::Open(*dir_ + "/" + store::sqlite::kDatabaseFileName);
    ASSERT_TRUE(db.ok()) << db.status();
    sqlite = std::move(*db);
    ASSERT_EQ(exec("BEGIN IMMEDIATE"), absl::OkStatus());
    read = "GET /readyz HTTP/1.1\r\nHost: q\r\n\r\n";
  }
  std::vector<std::unique_ptr<testing::RawConnection>> reads, health;
  for (int i = 0; i < 2; ++i) {
    reads.push_back(std::make_unique<testing::RawConnection>(server_->port()));
    ASSERT_TRUE(reads.back()->Send(read));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // both reads are waiting
  for (int i = 0; i < 2; ++i) {
    health.push_back(std::make_unique<testing::RawConnection>(server_->port()));
    ASSERT_TRUE(health.back()->Send("GET /healthz HTTP/1.1\r\nHost: q\r\n\r\n"));
  }
  for (auto& h : health) {
    EXPECT_EQ(testing::StatusOf(h->ReadResponse(std::chrono::milliseconds(2000))), 200);
  }
  if (ScaleOut()) {
    // The two waiting reads fill the read pool; the metrics scrape runs on a
    // pool of its own and does not queue behind them.
    testing::RawConnection metrics(server_->port());
    ASSERT_TRUE(metrics.Send("GET /metrics HTTP/1.1\r\nHost: q\r\n\r\n"));
    EXPECT_EQ(testing::StatusOf(metrics.ReadResponse(std::chrono::milliseconds(2000))), 200);
  }
  EXPECT_EQ(reads[0]->ReadResponse(std::chrono::milliseconds(10)), "") << "the read did not wait";
  ASSERT_EQ(exec("ROLLBACK"), absl::OkStatus());
  for (auto& r : reads) {
    EXPECT_EQ(testing::StatusOf(r->ReadResponse(std::chrono::seconds(10))), 200);
  }
}

// GET / is the dashboard's page; the files it names are served with their
// types and cached for good; no key is needed for either.
TEST_F(ApiTest, TheDashboardIsServedFromTheBinary) {
  auto c = Client();
  auto page = c.Get("/");
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_EQ(page.header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page.header("Content-Security-Policy").find("default-src 'self'"), std::string::npos);
  EXPECT_EQ(page.header("Cache-Control"), "no-cache");
  EXPECT_NE(page.body.find("<title>Quotum dashboard</title>"), std::string::npos);
  EXPECT_EQ(page.body.find("http://"), std::string::npos) << "the page loads something remote";
  EXPECT_EQ(page.body.find("https://"), std::string::npos) << "the page loads something remote";
  int scripts = 0, styles = 0;
  for (size_t at = page.body.find("/assets/"); at != std::string::npos;
       at = page.body.find("/assets/", at + 1)) {
    const std::string path = page.body.substr(at, page.body.find('"', at) - at);
    auto a = c.Get(path);
    ASSERT_EQ(a.status, 200) << path;
    EXPECT_EQ(a.header("Cache-Control"), "public, max-age=31536000, immutable") << path;
    EXPECT_EQ(a.header("X-Content-Type-Options"), "nosniff") << path;
    EXPECT_EQ(std::to_string(a.body.size()), a.header("Content-Length")) << path;
    if (path.ends_with(".js")) {
      ++scripts;
      EXPECT_EQ(a.header("Content-Type"), "text/javascript; charset=utf-8");
    } else if (path.ends_with(".css")) {
      ++styles;
      EXPECT_EQ(a.header("Content-Type"), "text/css; charset=utf-8");
    }
  }
  EXPECT_EQ(scripts, 1);
  EXPECT_EQ(styles, 1);
  auto missing = c.Get("/assets/app-00000000.js");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.json().at("code"), "not_found");
  EXPECT_EQ(c.Get("/assets/x/y.js").status, 404);
  EXPECT_EQ(c.Get("/assets/..%2Findex.html").status, 404);
  auto post = c.Post("/", "{}");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.header("Allow"), "GET, HEAD");
}

// GET /openapi.yaml is docs/openapi.yaml byte for byte, public, as YAML.
TEST_F(ApiTest, TheOpenApiDescriptionIsServedFromTheBinary) {
  auto c = Client();
  auto r = c.Get("/openapi.yaml");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("Content-Type"), "application/yaml");
  EXPECT_EQ(r.header("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(r.header("Cache-Control"), "no-cache");
  std::stringstream file;
  file << std::ifstream(QUOTUM_OPENAPI_YAML, std::ios::binary).rdbuf();
  ASSERT_FALSE(file.str().empty()) << QUOTUM_OPENAPI_YAML;
  EXPECT_EQ(r.body, file.str()) << "the binary embeds a stale docs/openapi.yaml: rebuild";
}

TEST_F(ApiTest, SeedScenario) {
  auto c = Client();
  Tenant t = CreateTenant(c, "seed-pro", "pro", "2026-11-08T10:00:00Z");
  auto r = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 9800), Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("remaining"), 200);

  auto usage = c.Get("/api/v2/usage/current", Bearer(t.key)).json();
  EXPECT_EQ(usage.at("usage_percentage").as_double(), 98.0);
  EXPECT_EQ(usage.at("limit_messages"), 10000);
  EXPECT_EQ(usage.at("messages_sent"), 9800);

  r = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 500, true), Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("consumed"), 200);
  EXPECT_EQ(r.json().at("allowed"), true);

  r = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1), Bearer(t.key));
  ASSERT_EQ(r.status, 429) << r.body;
  auto j = r.json();
  EXPECT_EQ(j.at("success"), false);
  EXPECT_EQ(j.at("code"), "quota_exceeded");
  EXPECT_EQ(j.at("meter"), "messages_sent");
  const std::string period_end(usage.at("period_end").as_string());
  const int64_t end_unix = absl::ToUnixSeconds(*ParseRfc3339(period_end));
  EXPECT_EQ(r.header("X-RateLimit-Reset"), std::to_string(end_unix));
  EXPECT_EQ(r.header("X-RateLimit-Remaining"), "0");
  EXPECT_EQ(r.header("X-RateLimit-Limit"), "10000");
  EXPECT_EQ(r.header("Retry-After"), std::to_string(j.at("retryAfter").as_int64()));
  std::string error(j.at("error").as_string());
  EXPECT_NE(error.find("messages_sent"), std::string::npos) << error;
  EXPECT_NE(error.find("10000"), std::string::npos) << error;
  EXPECT_NE(error.find(period_end), std::string::npos) << error;

  r = c.Post("/api/v2/messages/received", R"({"channel":"telegram"})", Bearer(t.key));
  EXPECT_EQ(r.status, 200) << r.body;
  usage = c.Get("/api/v2/usage/current", Bearer(t.key)).json();
  EXPECT_EQ(usage.at("messages_received"), 1);
  EXPECT_EQ(usage.at("messages_sent"), 10000);
  EXPECT_EQ(usage.at("usage_percentage").as_double(), 100.0);
  EXPECT_EQ(usage.at("band"), "red");
  EXPECT_EQ(usage.at("period_start"), "2026-11-08T10:00:00Z");
}

TEST_F(ApiTest, UsageCurrentHasEveryFieldExactlyNamed) {
  auto c = Client();
  Tenant t = CreateTenant(c, "fields", "starter");
  auto u = c.Get("/api/v2/usage/current", Bearer(t.key)).json().as_object();
  for (const char* f :
       {"period", "period_start", "period_end", "messages_sent", "messages_received",
        "total_messages", "leads_detected", "api_calls", "limit_messages", "limit_groups",
        "limit_sessions", "groups_active", "sessions_active", "usage_percentage"}) {
    EXPECT_TRUE(u.contains(f)) << f;
  }
  EXPECT_EQ(u.at("limit_messages"), 1000);
  EXPECT_EQ(u.at("limit_sessions"), 1);
  EXPECT_EQ(u.at("limit_groups"), 5);
  auto meters = u.at("meters").as_object();
  EXPECT_EQ(meters.at("chatbot_sessions").at("limit"), 1000);
  EXPECT_EQ(meters.at("chatbot_sessions").at("band"), "green");
  EXPECT_TRUE(meters.contains("ai_tokens"));
}

TEST_F(ApiTest, ConcurrentClientsAdmitExactlyTheLimit) {
  Tenant t;
  {
    auto c = Client();
    t = CreateTenant(c, "race", "starter");  // messages_sent limit 1000
    SetKeyLimits(c, t, 1000000);             // the quota, not the general rule, is under test
  }
  std::atomic<int> ok{0}, limited{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 32; ++i) {
    threads.emplace_back([&] {
      HttpClient c(server_->port());
      for (int n = 0; n < 40; ++n) {
        auto r = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1), Bearer(t.key));
        if (r.status == 200)
          ok++;
        else if (r.status == 429)
          limited++;
        else
          other++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 1000);
  EXPECT_EQ(limited.load(), 32 * 40 - 1000);
  EXPECT_EQ(other.load(), 0);
  auto c = Client();
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 1000u);
}

TEST_F(ApiTest, IdempotentRetryCountsOnce) {
  auto c = Client();
  Tenant t = CreateTenant(c, "idem", "pro");
  auto h = Bearer(t.key);
  h["Idempotency-Key"] = "order-42";
  auto a = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 7), h);
  auto b = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 7), h);
  ASSERT_EQ(a.status, 200);
  ASSERT_EQ(b.status, 200);
  EXPECT_EQ(a.json().at("remaining"), b.json().at("remaining"));
  EXPECT_EQ(b.json().at("replayed"), true);
  EXPECT_EQ(b.header("Idempotent-Replayed"), "true");
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 7u);
  auto clash = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 8), h);
  EXPECT_EQ(clash.status, 422);
  EXPECT_EQ(clash.json().at("code"), "idempotency_key_reused");
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 7u);
}

TEST_F(ApiTest, TenantsAreIsolated) {
  auto c = Client();
  Tenant a = CreateTenant(c, "iso-a", "pro");
  Tenant b = CreateTenant(c, "iso-b", "pro");
  StartSession(c, a, "a-phone");
  auto sent = c.Post("/api/v2/messages/send",
                     R"({"session":"a-phone","to":"+15550001","text":"hi"})", Bearer(a.key));
  ASSERT_EQ(sent.status, 200) << sent.body;
  std::string id(sent.json().at("message_id").as_string());
  auto found = GetEventually(c, "/api/v2/messages/" + id, Bearer(a.key),
                             [](const testing::HttpResponse& r) { return r.status == 200; });
  EXPECT_EQ(found.status, 200);
  EXPECT_EQ(c.Get("/api/v2/messages/" + id, Bearer(b.key)).status, 404);
  EXPECT_EQ(UsageField(c, a, "messages_sent"), 1u);
  EXPECT_EQ(UsageField(c, b, "messages_sent"), 0u);
  auto u = c.Get("/api/v2/usage/current", Bearer(b.key)).json();
  EXPECT_EQ(u.at("tenant_id"), "iso-b");
  // A tenant key is not an admin key.
  auto r = c.Get("/admin/tenants/iso-a", Bearer(b.key));
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.json().at("code"), "forbidden");
}

TEST_F(ApiTest, BadInputGetsClearErrorsAndChangesNothing) {
  auto c = Client();
  Tenant t = CreateTenant(c, "bad", "pro");
  ASSERT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 3), Bearer(t.key)).status,
            200);
  struct Case {
    const char* body;
    int status;
    const char* code;
  };
  const Case cases[] = {
      {"{not json", 400, "invalid_json"},
      {"[1,2]", 400, "invalid_json"},
      {"", 400, "invalid_json"},
      {R"({"meter":"messages_sent","quantity":"5"})", 400, "invalid_field"},
      {R"({"meter":5,"quantity":1})", 400, "invalid_field"},
      {R"({"meter":"messages_sent","quantity":1,"partial":"yes"})", 400, "invalid_field"},
      {R"({"quantity":1})", 400, "missing_field"},
      {R"({"meter":"messages_sent","quantity":0})", 422, "invalid_quantity"},
      {R"({"meter":"messages_sent","quantity":-1})", 422, "invalid_quantity"},
      {R"({"meter":"messages_sent","quantity":1.5})", 422, "invalid_quantity"},
      {R"({"meter":"messages_sent","quantity":18446744073709551616})", 422, "invalid_quantity"},
      {R"({"meter":"ai_tokens","quantity":18446744073709551615})", 422, "quantity_overflow"},
      {R"({"meter":"warp_drive","quantity":1})", 422, "unknown_meter"},
      {R"({"meter":"messages_sent","quantity":1,"channel":"pigeon"})", 422, "unknown_channel"},
      {R"({"meter":"sessions_active","quantity":1})", 422, "gauge_meter"},
  };
  ASSERT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("ai_tokens", 1), Bearer(t.key)).status,
            200);
  for (const Case& k : cases) {
    auto r = c.Post("/api/v2/quota/consume", k.body, Bearer(t.key));
    EXPECT_EQ(r.status, k.status) << k.body << " -> " << r.body;
    auto j = r.json();
    ASSERT_TRUE(j.is_object()) << r.body;
    EXPECT_EQ(j.at("success"), false) << k.body;
    EXPECT_EQ(j.at("code"), k.code) << k.body;
    EXPECT_FALSE(j.at("error").as_string().empty());
  }
  // Authentication and routing.
  auto r = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.json().at("code"), "unauthorized");
  EXPECT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1),
                   Bearer("qk_00000000000000000000000000000000"))
                .status,
            401);
  EXPECT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1), Admin()).status, 401);
  r = c.Get("/api/v2/nowhere", Bearer(t.key));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.json().at("code"), "not_found");
  r = c.Send("DELETE", "/api/v2/quota/consume", "", Bearer(t.key));
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.header("Allow"), "POST");
  // Oversized body: 413 before anything is parsed.
  std::string big(2 << 20, ' ');
  r = c.Post("/api/v2/quota/consume", big, Bearer(t.key));
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.json().at("code"), "payload_too_large");
  // Query parameters.
  EXPECT_EQ(c.Get("/api/v2/usage/daily?days=0", Bearer(t.key)).status, 400);
  EXPECT_EQ(c.Get("/api/v2/usage/daily?days=367", Bearer(t.key)).status, 400);
  EXPECT_EQ(c.Get("/api/v2/usage/daily?days=abc", Bearer(t.key)).status, 400);
  EXPECT_EQ(c.Get("/api/v2/usage/history?months=25", Bearer(t.key)).status, 400);
  // Nothing above changed the counters.
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 3u);
  auto u = c.Get("/api/v2/usage/current", Bearer(t.key)).json();
  EXPECT_EQ(u.at("meters").at("ai_tokens").at("used"), 1);
}

TEST_F(ApiTest, AdminManagesTenantsAndKeys) {
  auto c = Client();
  Tenant t = CreateTenant(c, "admin-t", "business", "2026-01-31T00:00:00Z");
  auto dup = c.Post("/admin/tenants", R"({"id":"admin-t","plan":"pro"})", Admin());
  EXPECT_EQ(dup.status, 409);
  EXPECT_EQ(dup.json().at("code"), "tenant_exists");
  EXPECT_EQ(c.Post("/admin/tenants", R"({"id":"x","plan":"platinum"})", Admin()).status, 422);
  EXPECT_EQ(c.Post("/admin/tenants", R"({"id":"bad id!"})", Admin()).status, 400);
  EXPECT_EQ(c.Post("/admin/tenants", R"({"id":"y","subscription_start":"soon"})", Admin()).status,
            400);
  EXPECT_EQ(c.Get("/admin/tenants/nobody", Admin()).status, 404);
  EXPECT_EQ(c.Get("/admin/tenants").status, 401);
  EXPECT_EQ(c.Get("/admin/tenants", {{"X-API-Key", "wrong"}}).status, 401);

  auto got = c.Get("/admin/tenants/admin-t", Admin());
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.json().at("tenant").at("plan"), "business");
  EXPECT_EQ(got.json().at("tenant").at("subscription_start"), "2026-01-31T00:00:00Z");
  auto list = c.Get("/admin/tenants", Admin()).json().at("tenants").as_array();
  bool found = false;
  for (auto& x : list) found |= x.at("id") == "admin-t";
  EXPECT_TRUE(found);

  auto k2 = c.Post("/admin/tenants/admin-t/keys", "", Admin());
  ASSERT_EQ(k2.status, 201);
  std::string key2(k2.json().at("api_key").as_string());
  EXPECT_EQ(c.Get("/api/v2/usage/current", Bearer(key2)).status, 200);
  EXPECT_EQ(c.Send("DELETE", "/admin/api-keys/" + t.key_id, "", Admin()).status, 200);
  EXPECT_EQ(c.Get("/api/v2/usage/current", Bearer(t.key)).status, 401);
  EXPECT_EQ(c.Get("/api/v2/usage/current", Bearer(key2)).status, 200);
  EXPECT_EQ(c.Send("DELETE", "/admin/api-keys/key_nope", "", Admin()).status, 404);
}

TEST_F(ApiTest, EnterpriseIsUnlimitedUntilAnAdminSetsALimit) {
  auto c = Client();
  Tenant t = CreateTenant(c, "ent", "enterprise");
  auto r = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 250000), Bearer(t.key));
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(r.json().at("limit").is_null());
  EXPECT_TRUE(c.Get("/api/v2/usage/current", Bearer(t.key)).json().at("limit_messages").is_null());
  auto set = c.Send("PUT", "/admin/tenants/ent/limits", R"({"messages_sent":250005})", Admin());
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 5), Bearer(t.key)).status,
            200);
  EXPECT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1), Bearer(t.key)).status,
            429);
  EXPECT_EQ(
      c.Send("PUT", "/admin/tenants/ent/limits", R"({"messages_received":5})", Admin()).status,
      422);
  EXPECT_EQ(c.Send("PUT", "/admin/tenants/ent/limits", R"({"messages_sent":null})", Admin()).status,
            200);
  EXPECT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1), Bearer(t.key)).status,
            200);
}

TEST_F(ApiTest, CheckConsumesNothing) {
  auto c = Client();
  Tenant t = CreateTenant(c, "check", "starter");
  auto r = c.Post("/api/v2/quota/check", ConsumeBody("chatbot_sessions", 10), Bearer(t.key));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.json().at("consumed"), 0);
  EXPECT_EQ(r.json().at("remaining"), 1000);
  r = c.Post("/api/v2/quota/check", ConsumeBody("chatbot_sessions", 1001), Bearer(t.key));
  EXPECT_EQ(r.status, 429);
  auto u = c.Get("/api/v2/usage/current", Bearer(t.key)).json();
  EXPECT_EQ(u.at("meters").at("chatbot_sessions").at("used"), 0);
}

TEST_F(ApiTest, ChatbotTriggerIsAHardStop) {
  auto c = Client();
  Tenant t = CreateTenant(c, "bot", "starter");
  ASSERT_EQ(c.Send("PUT", "/admin/tenants/bot/limits", R"({"chatbot_sessions":2})", Admin()).status,
            200);
  EXPECT_EQ(c.Post("/api/v2/chatbot/trigger", "{}", Bearer(t.key)).status, 200);
  EXPECT_EQ(c.Post("/api/v2/chatbot/trigger", R"({"channel":"webchat"})", Bearer(t.key)).status,
            200);
  auto r = c.Post("/api/v2/chatbot/trigger", "{}", Bearer(t.key));
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.json().at("meter"), "chatbot_sessions");
}

TEST_F(ApiTest, EventBatchesDecideEachEvent) {
  auto c = Client();
  Tenant t = CreateTenant(c, "events", "starter");
  ASSERT_EQ(c.Send("PUT", "/admin/tenants/events/limits", R"({"ai_tokens":100})", Admin()).status,
            200);
  auto r = c.Post("/api/v2/events", R"({"events":[
      {"meter":"ai_tokens","quantity":60,"channel":"whatsapp"},
      {"meter":"ai_tokens","quantity":60},
      {"meter":"leads_detected","quantity":2,"idempotency_key":"lead-1"},
      {"meter":"leads_detected","quantity":2,"idempotency_key":"lead-1"}]})",
                  Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = r.json();
  auto res = j.at("results").as_array();
  ASSERT_EQ(res.size(), 4u);
  EXPECT_EQ(res[0].at("allowed"), true);
  EXPECT_EQ(res[1].at("allowed"), false);
  EXPECT_EQ(res[1].at("code"), "quota_exceeded");
  EXPECT_EQ(res[2].at("allowed"), true);
  EXPECT_EQ(res[3].at("allowed"), true);
  auto u = c.Get("/api/v2/usage/current", Bearer(t.key)).json();
  EXPECT_EQ(u.at("meters").at("ai_tokens").at("used"), 60);
  EXPECT_EQ(u.at("leads_detected"), 2);
  // Any bad event refuses the whole batch, lists every bad index, and changes nothing.
  r = c.Post("/api/v2/events", R"({"events":[
      {"meter":"leads_detected","quantity":1},
      {"meter":"leads_detected","quantity":"x"},
      {"meter":"no_such_meter","quantity":1},
      {"meter":"leads_detected","quantity":1,"timestamp":"2020-01-01T00:00:00Z"},
      {"meter":"leads_detected","quantity":1,"channel":""}]})",
             Bearer(t.key));
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(r.json().at("code"), "invalid_events");
  auto errors = r.json().at("errors").as_array();
  ASSERT_EQ(errors.size(), 4u) << r.body;
  EXPECT_EQ(errors[0].at("index"), 1);
  EXPECT_EQ(errors[1].at("index"), 2);
  EXPECT_EQ(errors[1].at("code"), "unknown_meter");
  EXPECT_EQ(errors[2].at("index"), 3);
  EXPECT_EQ(errors[2].at("code"), "timestamp_out_of_period");
  EXPECT_EQ(errors[3].at("index"), 4);
  EXPECT_EQ(errors[3].at("code"), "unknown_channel");
  EXPECT_EQ(UsageField(c, t, "leads_detected"), 2u);
  // A meter the server counts itself cannot be reported, in a batch or alone.
  r = c.Post(
      "/api/v2/events",
      R"({"events":[{"meter":"leads_detected","quantity":1},{"meter":"api_calls","quantity":5}]})",
      Bearer(t.key));
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(r.json().at("code"), "meter_not_reportable");
  EXPECT_EQ(r.json().at("errors").as_array()[0].at("index"), 1);
  EXPECT_EQ(UsageField(c, t, "leads_detected"), 2u);
}

TEST_F(ApiTest, ServerCountedMetersAreNotReportableAndCountersNeverWrap) {
  auto c = Client();
  Tenant t = CreateTenant(c, "wrap", "pro");
  auto r = c.Post("/api/v2/quota/consume",
                  R"({"meter":"api_calls","quantity":18446744073709551610})", Bearer(t.key));
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(r.json().at("code"), "meter_not_reportable");
  EXPECT_EQ(c.Post("/api/v2/quota/check", ConsumeBody("api_calls", 1), Bearer(t.key)).status, 403);
  // A counter stops at the largest value the stores hold, with a clear refusal.
  r = c.Post("/api/v2/quota/consume",
             R"({"meter":"leads_detected","quantity":18446744073709551610})", Bearer(t.key));
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(r.json().at("code"), "quantity_overflow");
  r = c.Post("/api/v2/quota/consume", R"({"meter":"leads_detected","quantity":9007199254740990})",
             Bearer(t.key));
  EXPECT_EQ(r.status, 200) << r.body;
  r = c.Post("/api/v2/quota/consume", R"({"meter":"leads_detected","quantity":2})", Bearer(t.key));
  EXPECT_EQ(r.status, 422) << r.body;
  r = c.Post("/api/v2/quota/consume", R"({"meter":"leads_detected","quantity":1})", Bearer(t.key));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(UsageField(c, t, "leads_detected"), 9007199254740991u);
  const uint64_t calls = UsageField(c, t, "api_calls");
  EXPECT_GE(calls, 3u);
  EXPECT_LT(calls, 100u);
}

TEST_F(ApiTest, LooseInputIsRefused) {
  auto c = Client();
  Tenant t = CreateTenant(c, "loose", "pro");
  auto r = c.Post("/api/v2/quota/consume", R"({"meter":"messages_sent","quantity":1,"channel":""})",
                  Bearer(t.key));
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(c.Get("/api/v2/usage/channels?meter=sessions_active", Bearer(t.key)).status, 422);
  EXPECT_EQ(c.Get("/api/v2/usage/channels?meter=messages_sent", Bearer(t.key)).status, 200);
  r = c.Post("/admin/tenants",
             R"({"id":"future","plan":"pro","subscription_start":"2999-01-01T00:00:00Z"})",
             Admin());
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(c.Get("/admin/tenants/future", Admin()).status, 404);
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 0u);
}

TEST_F(ApiTest, DailyAndHistoryReads) {
  auto c = Client();
  Tenant t = CreateTenant(c, "reads", "pro");
  ASSERT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 11), Bearer(t.key)).status,
            200);
  auto d = GetEventually(c, "/api/v2/usage/daily?days=3", Bearer(t.key),
                         [](const testing::HttpResponse& r) {
                           return r.json().is_array() && !r.json().as_array().empty() &&
                                  r.json().as_array()[0].at("messages_sent") == 11;
                         });
  ASSERT_EQ(d.status, 200);
  auto rows = d.json().as_array();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].at("messages_sent"), 11);
  EXPECT_GT(std::string(rows[0].at("date").as_string()),
            std::string(rows[1].at("date").as_string()));
  EXPECT_EQ(rows[1].at("messages_sent"), 0);
  for (const char* f :
       {"date", "messages_sent", "messages_received", "leads_detected", "api_calls"})
    EXPECT_TRUE(rows[2].as_object().contains(f)) << f;
  auto h = c.Get("/api/v2/usage/history?months=12", Bearer(t.key));
  ASSERT_EQ(h.status, 200);
  auto periods = h.json().at("periods").as_array();
  ASSERT_GE(periods.size(), 1u);
  EXPECT_EQ(periods[0].at("status"), "current");
  EXPECT_EQ(periods[0].at("messages_sent"), 11);
}

}  // namespace
}  // namespace quotum::itest
