// Part 2 over HTTP: rate-limit headers on every route, the exact 429 body,
// custom key limits, sessions as leases, per-session sends, warm-up, shadow.
#include <fstream>
#include <regex>
#include <sstream>

#include "harness.h"

namespace quotum::itest {
namespace {

using testing::HttpClient;

constexpr char kExtraPlans[] = R"(
[plans.warm]
rate_limit_profile = "premium"
warmup = [2, 3]

[plans.shadowy]
rate_limit_profile = "premium"
shadow = ["messages_sent"]
[plans.shadowy.limits]
messages_sent = 1
)";

class RulesHttpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(testing::MakeTempDir("quotum-rules-http-"));
    std::ifstream in(QUOTUM_EXAMPLE_CONFIG);
    std::stringstream text;
    text << in.rdbuf() << kExtraPlans;
    std::ofstream(*dir_ + "/quotum.toml") << text.str();
    testing::ServerProcess::Options o;
    o.binary = BinaryPath();
    o.config = *dir_ + "/quotum.toml";
    o.data_dir = *dir_ + "/data";
    o.admin_key = kAdminKey;
    o.extra_args = BackendArgs();
    server_ = new testing::ServerProcess(o);
    ASSERT_TRUE(server_->Start()) << server_->error();
  }
  static void TearDownTestSuite() {
    EXPECT_EQ(server_->Stop(), 0);
    delete server_;
    delete dir_;
  }
  // Every test here fills per-minute windows and counts what is left.
  void SetUp() override { StayInsideOneMinute(); }
  HttpClient Client() { return HttpClient(server_->port()); }

  static std::string* dir_;
  static testing::ServerProcess* server_;
};
std::string* RulesHttpTest::dir_ = nullptr;
testing::ServerProcess* RulesHttpTest::server_ = nullptr;

void ExpectRateHeaders(const testing::HttpResponse& r, const std::string& what) {
  EXPECT_FALSE(r.header("X-RateLimit-Limit").empty()) << what;
  EXPECT_FALSE(r.header("X-RateLimit-Remaining").empty()) << what;
  EXPECT_FALSE(r.header("X-RateLimit-Reset").empty()) << what;
  EXPECT_NE(r.header("RateLimit-Policy").find("\"general\";q=100;w=60"), std::string::npos)
      << what << ": " << r.header("RateLimit-Policy");
  EXPECT_NE(r.header("RateLimit").find("\"general\";r="), std::string::npos) << what;
}

TEST_F(RulesHttpTest, HeadersOnEveryTenantRoute) {
  auto c = Client();
  Tenant t = CreateTenant(c, "headers", "pro");  // standard profile: general 100/min
  auto h = Bearer(t.key);
  StartSession(c, t, "h1");
  struct Case {
    const char* method;
    const char* path;
    const char* body;
    bool quota;
  };
  const Case cases[] = {
      {"GET", "/api/v2/usage/current", "", false},
      {"GET", "/api/v2/usage/daily?days=2", "", false},
      {"GET", "/api/v2/usage/history", "", false},
      {"GET", "/api/v2/usage/channels", "", false},
      {"GET", "/api/v2/plans", "", false},
      {"GET", "/api/v2/events", "", false},
      {"GET", "/api/v2/sessions", "", false},
      {"GET", "/api/v2/sessions/h1", "", false},
      {"GET", "/api/v2/groups", "", false},
      {"POST", "/api/v2/quota/check", R"({"meter":"messages_sent"})", true},
      {"POST", "/api/v2/quota/consume", R"({"meter":"messages_sent"})", true},
      {"POST", "/api/v2/events", R"({"events":[{"meter":"leads_detected"}]})", false},
      {"POST", "/api/v2/messages/send", R"({"session":"h1","to":"+1555"})", true},
      {"POST", "/api/v2/messages/received", "{}", false},
      {"POST", "/api/v2/chatbot/trigger", "{}", true},
      {"POST", "/api/v2/sessions", R"({"id":"h2"})", false},
      {"PATCH", "/api/v2/sessions/h2", R"({"status":"scan_qr"})", false},
      {"GET", "/api/v2/sessions/h2/qr", "", false},
      {"POST", "/api/v2/sessions/h1/heartbeat", "", false},
      {"POST", "/api/v2/groups", R"({"id":"g1","name":"Leads"})", false},
      {"DELETE", "/api/v2/groups/g1", "", false},
      {"PUT", "/api/v2/subscribers/count", R"({"count":12})", false},
      {"DELETE", "/api/v2/sessions/h2", "", false},
  };
  for (const Case& k : cases) {
    const std::string what = std::string(k.method) + " " + k.path;
    auto r = c.Send(k.method, k.path, k.body, h);
    EXPECT_LT(r.status, 300) << what << " -> " << r.body;
    ExpectRateHeaders(r, what);
    if (k.quota) {
      EXPECT_NE(r.header("RateLimit-Policy").find("\"quota\";q="), std::string::npos)
          << what << ": " << r.header("RateLimit-Policy");
    }
  }
  // The message rule of the session shows up on sends through it.
  auto send = c.Post("/api/v2/messages/send", R"({"session":"h1","to":"+1555"})", h);
  EXPECT_NE(send.header("RateLimit-Policy").find("\"messages\";q=30;w=60"), std::string::npos)
      << send.header("RateLimit-Policy");
}

TEST_F(RulesHttpTest, Exact429BodyAndRetryAfter) {
  auto c = Client();
  Tenant t = CreateTenant(c, "trial-429", "starter");  // trial: general 50/min
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(c.Get("/api/v2/usage/current", Bearer(t.key)).status, 200) << i;
  }
  auto r = c.Get("/api/v2/usage/current", Bearer(t.key));
  ASSERT_EQ(r.status, 429);
  std::smatch m;
  const std::regex exact(
      R"(\{"success":false,"error":"Rate limit exceeded\. Please wait (\d+) seconds before trying again\.","retryAfter":(\d+),"code":"rate_limited"\})");
  ASSERT_TRUE(std::regex_match(r.body, m, exact)) << r.body;
  EXPECT_EQ(m[1].str(), m[2].str());
  EXPECT_EQ(r.header("Retry-After"), m[2].str());
  EXPECT_GE(std::stoi(m[2].str()), 1);
  EXPECT_LE(std::stoi(m[2].str()), 120);
  EXPECT_EQ(r.header("X-Quotum-Rule"), "general");
  EXPECT_EQ(r.header("X-RateLimit-Remaining"), "0");
  EXPECT_EQ(r.header("X-RateLimit-Limit"), "50");
  // A refused consume charges no quota.
  auto consume = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 5), Bearer(t.key));
  EXPECT_EQ(consume.status, 429);
  EXPECT_EQ(consume.json().at("code"), "rate_limited");
  SetKeyLimits(c, t, 1000);
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 0u);
}

TEST_F(RulesHttpTest, CustomKeyLimitsApplyAtOnce) {
  auto c = Client();
  Tenant t = CreateTenant(c, "custom", "starter");
  const std::string path = "/admin/api-keys/" + t.key_id + "/rate-limits";
  auto r = c.Send("PUT", path, R"({"general":5,"messages":100,"sessions":50})", Admin());
  ASSERT_EQ(r.status, 200) << r.body;
  auto limits = c.Get(path, Admin()).json().at("rateLimits");
  EXPECT_EQ(limits.at("general"), 5);
  EXPECT_EQ(limits.at("messages"), 100);
  EXPECT_EQ(limits.at("sessions"), 50);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(c.Get("/api/v2/plans", Bearer(t.key)).status, 200) << i;
  EXPECT_EQ(c.Get("/api/v2/plans", Bearer(t.key)).status, 429);
  // A partial body changes only what it names; the refused request did not count.
  ASSERT_EQ(c.Send("PUT", path, R"({"general":8})", Admin()).status, 200);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.Get("/api/v2/plans", Bearer(t.key)).status, 200) << i;
  EXPECT_EQ(c.Get("/api/v2/plans", Bearer(t.key)).status, 429);
  limits = c.Get(path, Admin()).json().at("rateLimits");
  EXPECT_EQ(limits.at("general"), 8);
  EXPECT_EQ(limits.at("messages"), 100);
  // Bad bodies change nothing.
  EXPECT_EQ(c.Send("PUT", path, R"({"general":0})", Admin()).status, 422);
  EXPECT_EQ(c.Send("PUT", path, R"({"burst":5})", Admin()).status, 422);
  EXPECT_EQ(c.Send("PUT", path, R"({"general":"lots"})", Admin()).status, 400);
  EXPECT_EQ(c.Send("PUT", path, "{}", Admin()).status, 400);
  EXPECT_EQ(
      c.Send("PUT", "/admin/api-keys/key_missing/rate-limits", R"({"general":5})", Admin()).status,
      404);
  EXPECT_EQ(c.Send("PUT", path, R"({"general":5})", Bearer(t.key)).status, 403);
  EXPECT_EQ(c.Get(path, Admin()).json().at("rateLimits").at("general"), 8);
}

TEST_F(RulesHttpTest, FourthWorkingSessionOnAThreeSessionPlanIsRefused) {
  auto c = Client();
  Tenant t = CreateTenant(c, "three", "pro");
  for (const char* id : {"a", "b", "c"}) StartSession(c, t, id);
  ASSERT_EQ(c.Post("/api/v2/sessions", R"({"id":"d","phone":"+15550004"})", Bearer(t.key)).status,
            201);
  auto r = c.Send("PATCH", "/api/v2/sessions/d", R"({"status":"working"})", Bearer(t.key));
  ASSERT_EQ(r.status, 429) << r.body;
  EXPECT_EQ(r.json().at("code"), "quota_exceeded");
  EXPECT_EQ(r.json().at("meter"), "sessions_active");
  EXPECT_EQ(r.json().at("limit"), 3);
  EXPECT_FALSE(r.header("Retry-After").empty());
  EXPECT_EQ(c.Get("/api/v2/sessions/d", Bearer(t.key)).json().at("status"), "starting");
  EXPECT_EQ(UsageField(c, t, "sessions_active"), 3u);
  EXPECT_EQ(c.Send("PATCH", "/api/v2/sessions/d", R"({"status":"sleeping"})", Bearer(t.key)).status,
            422);
  EXPECT_EQ(c.Send("PATCH", "/api/v2/sessions/zz", R"({"status":"working"})", Bearer(t.key)).status,
            404);
  EXPECT_EQ(c.Post("/api/v2/sessions", R"({"id":"a"})", Bearer(t.key)).status, 409);
}

TEST_F(RulesHttpTest, ThirtyFirstSendOnOneSessionIsRefusedWhileAnotherSends) {
  auto c = Client();
  Tenant t = CreateTenant(c, "sender", "pro");  // standard: messages 30/min per session
  StartSession(c, t, "s1");
  StartSession(c, t, "s2");
  const std::string on_s1 = R"({"session":"s1","to":"+15550001","text":"hi"})";
  for (int i = 0; i < 30; ++i) {
    ASSERT_EQ(c.Post("/api/v2/messages/send", on_s1, Bearer(t.key)).status, 200) << i;
  }
  auto r = c.Post("/api/v2/messages/send", on_s1, Bearer(t.key));
  ASSERT_EQ(r.status, 429);
  EXPECT_EQ(r.json().at("code"), "rate_limited");
  EXPECT_EQ(r.header("X-Quotum-Rule"), "messages");
  auto other =
      c.Post("/api/v2/messages/send", R"({"session":"s2","to":"+15550002"})", Bearer(t.key));
  EXPECT_EQ(other.status, 200) << other.body;
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 31u);
  // Sending needs a working session of this tenant.
  EXPECT_EQ(c.Post("/api/v2/messages/send", R"({"to":"+1"})", Bearer(t.key)).status, 400);
  EXPECT_EQ(c.Post("/api/v2/messages/send", R"({"session":"zz","to":"+1"})", Bearer(t.key)).status,
            404);
  ASSERT_EQ(c.Send("PATCH", "/api/v2/sessions/s2", R"({"status":"stopped"})", Bearer(t.key)).status,
            200);
  auto stopped = c.Post("/api/v2/messages/send", R"({"session":"s2","to":"+1"})", Bearer(t.key));
  EXPECT_EQ(stopped.status, 409);
  EXPECT_EQ(stopped.json().at("code"), "session_not_working");
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 31u);
}

TEST_F(RulesHttpTest, AQuotaRefusalChargesNoRateRule) {
  auto c = Client();
  Tenant t = CreateTenant(c, "aon", "starter");
  SetKeyLimits(c, t, 3);
  ASSERT_EQ(
      c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1000), Bearer(t.key)).status,
      200);
  ASSERT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1), Bearer(t.key)).status,
            429);
  // Two requests were made, one was charged: this one leaves 1 of 3.
  auto r = c.Get("/api/v2/plans", Bearer(t.key));
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.header("RateLimit").find("\"general\";r=1;"), std::string::npos)
      << r.header("RateLimit");
}

TEST_F(RulesHttpTest, WarmupCapsANewNumber) {
  auto c = Client();
  Tenant t = CreateTenant(c, "warm", "warm");  // warmup = [2, 3]
  StartSession(c, t, "new");
  auto s = c.Get("/api/v2/sessions/new", Bearer(t.key)).json();
  EXPECT_EQ(s.at("warmup").at("cap_today"), 2);
  EXPECT_EQ(s.at("warmup").at("sent_today"), 0);
  const std::string body = R"({"session":"new","to":"+15550009"})";
  ASSERT_EQ(c.Post("/api/v2/messages/send", body, Bearer(t.key)).status, 200);
  ASSERT_EQ(c.Post("/api/v2/messages/send", body, Bearer(t.key)).status, 200);
  auto r = c.Post("/api/v2/messages/send", body, Bearer(t.key));
  ASSERT_EQ(r.status, 429);
  auto j = r.json();
  EXPECT_EQ(j.at("code"), "warmup_limit");
  EXPECT_EQ(j.at("cap"), 2);
  EXPECT_GE(j.at("retryAfter").as_int64(), 86300);
  EXPECT_LE(j.at("retryAfter").as_int64(), 86400);
  EXPECT_EQ(r.header("Retry-After"), std::to_string(j.at("retryAfter").as_int64()));
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 2u);
  // The session says what it sent today (scale-out: as Redis counts it), alone and listed.
  s = c.Get("/api/v2/sessions/new", Bearer(t.key)).json();
  EXPECT_EQ(s.at("warmup").at("sent_today"), 2) << s;
  auto listed = c.Get("/api/v2/sessions", Bearer(t.key)).json();
  ASSERT_TRUE(listed.is_object()) << listed;
  EXPECT_EQ(listed.at("sessions").as_array()[0].at("warmup").at("sent_today"), 2) << listed;
}

TEST_F(RulesHttpTest, ShadowModeAdmitsAndSaysSo) {
  auto c = Client();
  Tenant t = CreateTenant(c, "shadow", "shadowy");  // messages_sent 1, shadowed
  for (int i = 0; i < 3; ++i) {
    auto r = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1), Bearer(t.key));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("X-Quotum-Shadow"), i == 0 ? "" : "messages_sent") << i;
  }
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 3u);
  auto metrics = c.Get("/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("quotum_decisions_total{meter=\"messages_sent\",outcome=\"shadow_"
                              "denied\",rule=\"messages_sent\"} 2"),
            std::string::npos)
      << metrics.body;
}

TEST_F(RulesHttpTest, SessionsAndGroupsSurviveARestart) {
  auto c0 = Client();
  Tenant t = CreateTenant(c0, "restart", "pro");
  StartSession(c0, t, "keep");
  ASSERT_EQ(c0.Post("/api/v2/groups", R"({"id":"g","name":"Leads"})", Bearer(t.key)).status, 201);
  const std::string path = "/admin/api-keys/" + t.key_id + "/rate-limits";
  ASSERT_EQ(c0.Send("PUT", path, R"({"general":77})", Admin()).status, 200);
  ASSERT_EQ(server_->Stop(), 0);
  ASSERT_TRUE(server_->Start()) << server_->error();
  auto c = Client();
  EXPECT_EQ(c.Get("/api/v2/sessions/keep", Bearer(t.key)).json().at("status"), "working");
  auto u = c.Get("/api/v2/usage/current", Bearer(t.key)).json();
  EXPECT_EQ(u.at("sessions_active"), 1);
  EXPECT_EQ(u.at("groups_active"), 1);
  EXPECT_EQ(c.Get(path, Admin()).json().at("rateLimits").at("general"), 77);
}

}  // namespace
}  // namespace quotum::itest
