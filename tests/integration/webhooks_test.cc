// Webhooks over HTTP against the real binary and a real receiver on loopback,
// on the embedded backend and (scale-out/WebhooksHttpTest) on Redis +
// PostgreSQL: signed deliveries of the events a decision made, a retry after
// a refused attempt, dead letters an admin sends again, a restart that
// neither loses nor repeats an event, and every refusal.
#include <openssl/hmac.h>

#include <boost/json.hpp>
#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "harness.h"
#include "support/http_receiver.h"
#include "support/smtp_sink.h"

namespace quotum::itest {
namespace {

using testing::HttpResponse;
using testing::Receiver;
namespace http = boost::beast::http;

// The example config with fast retries: 2 attempts, 50 ms apart at most;
// and `extra` appended.
std::string FastRetryConfig(const std::string& dir, const std::string& extra = "") {
  std::ifstream in(QUOTUM_EXAMPLE_CONFIG);
  std::stringstream text;
  text << in.rdbuf();
  std::string config = absl::StrReplaceAll(
      text.str(), {{"max_attempts = 8", "max_attempts = 2"},
                   {"retry_base_ms = 1000", "retry_base_ms = 50"},
                   {"forecast_check_seconds = 600", "forecast_check_seconds = 1"}});
  EXPECT_NE(config, text.str()) << "the example's [webhooks] section changed";
  const std::string path = dir + "/quotum.toml";
  std::ofstream(path) << config << "\n" << extra;
  return path;
}

std::unique_ptr<testing::ServerProcess> StartFastRetryServer(const std::string& dir,
                                                             const std::string& extra = "") {
  testing::ServerProcess::Options o;
  o.binary = BinaryPath();
  o.config = FastRetryConfig(dir, extra);
  o.data_dir = dir + "/data";
  o.admin_key = kAdminKey;
  o.extra_args = BackendArgs();
  auto s = std::make_unique<testing::ServerProcess>(o);
  EXPECT_TRUE(s->Start()) << s->error();
  return s;
}

// Answers `statuses` in turn, then 200 to everything.
Receiver::Answer Statuses(std::vector<http::status> statuses) {
  auto next = std::make_shared<std::atomic<size_t>>(0);
  return [statuses, next](const Receiver::Request& r) {
    const size_t i = (*next)++;
    Receiver::Response response(i < statuses.size() ? statuses[i] : http::status::ok, r.version());
    return response;
  };
}

// Waits until `receiver` holds at least `n` requests (15 s at most: in
// scale-out, a relay killed with -9 holds its lease for 5 s).
std::vector<Receiver::Request> AwaitRequests(const Receiver& receiver, size_t n) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (receiver.requests().size() < n && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return receiver.requests();
}

// Verifies X-Quotum-Signature: t=<secs>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>.
bool SignatureVerifies(const Receiver::Request& r, const std::string& secret) {
  const std::string header(r["X-Quotum-Signature"]);
  std::vector<std::string> parts = absl::StrSplit(header, ',');
  if (parts.size() != 2 || !parts[0].starts_with("t=") || !parts[1].starts_with("v1="))
    return false;
  const std::string signed_text = parts[0].substr(2) + "." + r.body();
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(signed_text.data()), signed_text.size(), mac, &len);
  const std::string expected =
      absl::BytesToHexString(std::string(reinterpret_cast<char*>(mac), len));
  int64_t t = 0;
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  return parts[1].substr(3) == expected && absl::SimpleAtoi(parts[0].substr(2), &t) && t <= now &&
         t > now - 60;
}

struct Hook {
  std::string id, secret;
};

Hook CreateHook(testing::HttpClient& c, const Tenant& t, const std::string& url,
                const std::string& events = R"(["usage.threshold_reached"])") {
  auto r = c.Post("/api/v2/webhooks", R"({"url":")" + url + R"(","events":)" + events + "}",
                  Bearer(t.key));
  EXPECT_EQ(r.status, 201) << r.body;
  if (r.status != 201) return {};
  return {std::string(r.json().at("id").as_string()),
          std::string(r.json().at("secret").as_string())};
}

boost::json::array Deliveries(testing::HttpClient& c, const Tenant& t, const Hook& h) {
  auto r = c.Get("/api/v2/webhooks/" + h.id + "/deliveries", Bearer(t.key));
  EXPECT_EQ(r.status, 200) << r.body;
  return r.json().at("deliveries").as_array();
}

class WebhooksHttpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(testing::MakeTempDir("quotum-webhooks-"));
    server_ = StartFastRetryServer(*dir_).release();
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

TEST_F(WebhooksHttpTest, AThresholdEventArrivesSignedOnceAfterARefusedFirstAttempt) {
  Receiver receiver(Statuses({http::status::internal_server_error}));
  auto c = Client();
  Tenant t = CreateTenant(c, "hook-signed", "starter");
  Hook h = CreateHook(c, t, receiver.Url());
  ASSERT_TRUE(h.secret.starts_with("whsec_")) << h.secret;
  ASSERT_EQ(
      c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 850), Bearer(t.key)).status,
      200);
  std::vector<Receiver::Request> got = AwaitRequests(receiver, 2);
  ASSERT_EQ(got.size(), 2u);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(receiver.requests().size(), 2u) << "delivered again after a 200";
  for (const auto& r : got) {
    EXPECT_TRUE(SignatureVerifies(r, h.secret)) << r["X-Quotum-Signature"] << " " << r.body();
    EXPECT_EQ(r[http::field::content_type], "application/json");
  }
  EXPECT_EQ(got[0]["X-Quotum-Event-Id"], got[1]["X-Quotum-Event-Id"]);
  const boost::json::value event = boost::json::parse(got[1].body());
  EXPECT_EQ(event.at("id"), std::string(got[1]["X-Quotum-Event-Id"]).c_str());
  EXPECT_EQ(event.at("type"), "usage.threshold_reached");
  EXPECT_EQ(event.at("tenant"), "hook-signed");
  EXPECT_EQ(event.at("meter"), "messages_sent");
  EXPECT_EQ(event.at("threshold"), 80);
  EXPECT_EQ(event.at("value"), 850);
  EXPECT_EQ(event.at("limit"), 1000);
  EXPECT_TRUE(event.at("period").is_string());
  EXPECT_TRUE(event.at("period_end").is_string());
  EXPECT_TRUE(event.at("at").is_string());

  boost::json::array d = Deliveries(c, t, h);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].at("state"), "delivered");
  EXPECT_EQ(d[0].at("attempts"), 2);
  const auto& log = d[0].at("attempt_log").as_array();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].at("status"), 500);
  EXPECT_EQ(log[1].at("status"), 200);
  const std::string metrics = c.Get("/metrics").body;
  EXPECT_NE(metrics.find("quotum_webhook_attempts_total{outcome=\"delivered\"}"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("quotum_webhook_attempts_total{outcome=\"retry\"}"), std::string::npos);
  EXPECT_NE(metrics.find("\nquotum_outbox_backlog "), std::string::npos);
}

TEST_F(WebhooksHttpTest, ADeadDeliveryWaitsForAnAdminAndOnlyWantedEventsGo) {
  Receiver receiver(Statuses({http::status::service_unavailable, http::status::bad_gateway}));
  auto c = Client();
  Tenant t = CreateTenant(c, "hook-dead", "starter");
  Hook h = CreateHook(c, t, receiver.Url(), R"(["usage.threshold_resolved"])");
  // 80 % is reached (not wanted), then an upgrade resolves it (wanted).
  ASSERT_EQ(
      c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 850), Bearer(t.key)).status,
      200);
  // Scale-out: the alert reaches PostgreSQL one drain round after the decision,
  // and an upgrade resolves the alerts stored there.
  GetEventually(c, "/api/v2/alerts", Bearer(t.key), [](const HttpResponse& r) {
    return r.status == 200 && !r.json().at("alerts").as_array().empty();
  });
  ASSERT_EQ(c.Post("/api/v2/subscription/change", R"({"plan":"pro"})", Bearer(t.key)).status, 200);
  ASSERT_EQ(AwaitRequests(receiver, 2).size(), 2u);  // both attempts refused: dead
  boost::json::array d;
  for (int i = 0; i < 100; ++i) {
    d = Deliveries(c, t, h);
    if (d.size() == 1 && d[0].at("state") == "dead") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].at("state"), "dead");
  EXPECT_EQ(d[0].at("last_status"), 502);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(receiver.requests().size(), 2u);  // nothing more on its own
  const std::string id(d[0].at("id").as_string());
  auto retry = c.Post("/admin/outbox/" + id + "/retry", "", Admin());
  ASSERT_EQ(retry.status, 200) << retry.body;
  std::vector<Receiver::Request> got = AwaitRequests(receiver, 3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(boost::json::parse(got[2].body()).at("type"), "usage.threshold_resolved");
  EXPECT_EQ(c.Post("/admin/outbox/dlv_nope/retry", "", Admin()).status, 404);
  EXPECT_EQ(c.Post("/admin/outbox/" + id + "/retry", "", Bearer(t.key)).status, 403);
}

TEST_F(WebhooksHttpTest, AForecastOverTheLimitIsAnnouncedOncePerPeriod) {
  Receiver receiver(Statuses({}));
  auto c = Client();
  Tenant t = CreateTenant(c, "hook-forecast", "starter");
  Tenant calm = CreateTenant(c, "hook-calm", "starter");
  Hook h = CreateHook(c, t, receiver.Url(), R"(["usage.forecast_exceeds_limit"])");
  CreateHook(c, calm, receiver.Url(), R"(["usage.forecast_exceeds_limit"])");
  // Minutes into its period, 300 of 1,000 projects far past the limit, and
  // the 300 credits they cost past 5,000; the calm tenant used nothing.
  ASSERT_EQ(
      c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 300), Bearer(t.key)).status,
      200);
  ASSERT_EQ(AwaitRequests(receiver, 2).size(), 2u);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // two more checks
  const auto got = receiver.requests();
  ASSERT_EQ(got.size(), 2u) << "announced more than once";
  std::map<std::string, boost::json::value> by_meter;
  for (const auto& r : got) {
    boost::json::value v = boost::json::parse(r.body());
    by_meter[std::string(v.at("meter").as_string())] = v;
  }
  ASSERT_EQ(by_meter.size(), 2u);
  EXPECT_EQ(by_meter.at("credits").at("limit"), 5000);
  const boost::json::value e = by_meter.at("messages_sent");
  EXPECT_EQ(e.at("type"), "usage.forecast_exceeds_limit");
  EXPECT_EQ(e.at("tenant"), "hook-forecast");
  EXPECT_EQ(e.at("meter"), "messages_sent");
  EXPECT_EQ(e.at("limit"), 1000);
  EXPECT_GT(e.at("projected_period_end").to_number<int64_t>(), 1000);
  EXPECT_TRUE(e.at("limit_reached_at").is_string());
  EXPECT_EQ(e.at("method"), "today_pace");
  EXPECT_EQ(Deliveries(c, t, h).size(), 2u);
}

TEST_F(WebhooksHttpTest, BadWebhooksAreRefusedAndNothingIsStored) {
  auto c = Client();
  Tenant t = CreateTenant(c, "hook-bad", "starter");
  struct Case {
    std::string body;
    int status;
    std::string code;
  } cases[] = {
      {R"({"url":"ftp://127.0.0.1/x","events":["*"]})", 422, "invalid_webhook_url"},
      {R"({"url":"http://10.0.0.7/x","events":["*"]})", 422, "invalid_webhook_url"},
      {R"({"url":"http://169.254.169.254/latest","events":["*"]})", 422, "invalid_webhook_url"},
      {R"({"url":"http://127.0.0.1:9/x","events":["usage.nope"]})", 422, "unknown_event_type"},
      {R"({"url":"http://127.0.0.1:9/x","events":[]})", 400, "invalid_events"},
      {R"({"url":"http://127.0.0.1:9/x"})", 400, "invalid_events"},
      {R"({"events":["*"]})", 400, "missing_field"},
      {R"({"url":7,"events":["*"]})", 400, "invalid_field"},
      {R"({"url":"mailto:ops@example.com","events":["*"]})", 422, "email_not_configured"},
  };
  for (const Case& k : cases) {
    auto r = c.Post("/api/v2/webhooks", k.body, Bearer(t.key));
    EXPECT_EQ(r.status, k.status) << k.body << " -> " << r.body;
    if (r.status >= 400) {
      EXPECT_EQ(r.json().at("code"), k.code.c_str()) << r.body;
    }
  }
  auto list = c.Get("/api/v2/webhooks", Bearer(t.key));
  ASSERT_EQ(list.status, 200);
  EXPECT_TRUE(list.json().at("webhooks").as_array().empty()) << list.body;
  for (int i = 0; i < 10; ++i)
    CreateHook(c, t, "http://127.0.0.1:9/h" + std::to_string(i), R"(["*"])");
  auto eleventh =
      c.Post("/api/v2/webhooks", R"({"url":"http://127.0.0.1:9/x","events":["*"]})", Bearer(t.key));
  EXPECT_EQ(eleventh.status, 409) << eleventh.body;
  EXPECT_EQ(eleventh.json().at("code"), "too_many_webhooks");
  const boost::json::value hooks = c.Get("/api/v2/webhooks", Bearer(t.key)).json();
  ASSERT_EQ(hooks.at("webhooks").as_array().size(), 10u);
  EXPECT_FALSE(hooks.at("webhooks").as_array()[0].as_object().contains("secret"));
  const std::string first(hooks.at("webhooks").as_array()[0].at("id").as_string());
  EXPECT_EQ(c.Send("DELETE", "/api/v2/webhooks/" + first, "", Bearer(t.key)).status, 200);
  EXPECT_EQ(c.Send("DELETE", "/api/v2/webhooks/" + first, "", Bearer(t.key)).status, 404);
  EXPECT_EQ(c.Get("/api/v2/webhooks", Bearer(t.key)).json().at("webhooks").as_array().size(), 9u);
}

// A delivery in flight when the server is killed (-9) is neither lost nor
// repeated once acknowledged: the receiver holds the first attempt until the
// server is gone, and after the restart every event arrives exactly once.
TEST(WebhooksRestartTest, ADeliveryInFlightAtKillNineIsSentAgainAndEveryEventOnce) {
  const std::string dir = testing::MakeTempDir("quotum-webhooks-restart-");
  auto answering = std::make_shared<std::atomic<bool>>(false);
  Receiver receiver([answering](const Receiver::Request& r) {
    for (int i = 0; i < 1000 && !*answering; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return Receiver::Response(http::status::ok, r.version());
  });
  {
    auto server = StartFastRetryServer(dir);
    testing::HttpClient c(server->port());
    Tenant t = CreateTenant(c, "hook-restart", "starter");
    CreateHook(c, t, receiver.Url());
    ASSERT_EQ(
        c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1000), Bearer(t.key)).status,
        200);                                          // 80, 90 and 100 %: three events
    ASSERT_EQ(AwaitRequests(receiver, 1).size(), 1u);  // the first, held
    ASSERT_TRUE(server->Kill9());
  }
  *answering = true;
  auto server = StartFastRetryServer(dir);
  const std::vector<Receiver::Request> got = AwaitRequests(receiver, 4);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(receiver.requests().size(), 4u) << "an acknowledged event was sent again";
  std::set<std::string> after_restart;
  for (size_t i = 1; i < got.size(); ++i) {
    EXPECT_TRUE(after_restart.insert(std::string(got[i]["X-Quotum-Event-Id"])).second)
        << "delivered twice after the restart";
  }
  EXPECT_EQ(after_restart.size(), 3u) << "an event was lost";
  EXPECT_TRUE(after_restart.contains(std::string(got[0]["X-Quotum-Event-Id"])))
      << "the event in flight at the kill was not sent again";
  EXPECT_EQ(server->Stop(), 0);
}

// E-mail: a mailto: webhook gets the alert through the operator's SMTP server.
TEST(EmailAlertsTest, AThresholdAlertIsMailedThroughTheConfiguredSmtpServer) {
  testing::SmtpSink sink;
  const std::string dir = testing::MakeTempDir("quotum-email-");
  auto server = StartFastRetryServer(
      dir, "[email]\nsmtp_url = \"smtp://127.0.0.1:" + std::to_string(sink.port()) +
               "\"\nfrom = \"alerts@quotum.test\"\n");
  testing::HttpClient c(server->port());
  Tenant t = CreateTenant(c, "mail-me", "starter");
  for (const char* bad : {"mailto:", "mailto:a@b@c", "mailto:ops@example.com,x@y.z",
                          "mailto:ops@example.com\r\nBcc: x@y.z"}) {
    auto r = c.Post("/api/v2/webhooks",
                    boost::json::serialize(boost::json::object{{"url", bad}, {"events", {"*"}}}),
                    Bearer(t.key));
    EXPECT_EQ(r.status, 422) << bad << " -> " << r.body;
  }
  CreateHook(c, t, "mailto:ops@example.com");
  ASSERT_EQ(
      c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 900), Bearer(t.key)).status,
      200);  // 80 and 90 %
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (sink.messages().size() < 2 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const auto mail = sink.messages();
  ASSERT_EQ(mail.size(), 2u);
  EXPECT_EQ(mail[0].from, "<alerts@quotum.test>");
  EXPECT_EQ(mail[0].to, std::vector<std::string>{"<ops@example.com>"});
  std::set<std::string> subjects;
  for (const auto& m : mail) {
    const size_t at = m.data.find("\r\nSubject: ");
    ASSERT_NE(at, std::string::npos) << m.data;
    subjects.insert(m.data.substr(at + 11, m.data.find("\r\n", at + 2) - at - 11));
    EXPECT_NE(m.data.find("Message-ID: <evt_"), std::string::npos) << m.data;
    EXPECT_NE(m.data.find("\r\nmeter: messages_sent\r\n"), std::string::npos) << m.data;
  }
  EXPECT_EQ(subjects,
            (std::set<std::string>{"[Quotum] mail-me: messages_sent reached 80% of its limit",
                                   "[Quotum] mail-me: messages_sent reached 90% of its limit"}));
  // Counted as e-mails as well as attempts (the count follows the SMTP reply).
  auto metrics = GetEventually(c, "/metrics", {}, [](const testing::HttpResponse& r) {
    return r.body.find("quotum_emails_total{outcome=\"sent\"} 2\n") != std::string::npos;
  });
  EXPECT_NE(metrics.body.find("quotum_emails_total{outcome=\"sent\"} 2\n"), std::string::npos)
      << metrics.body;
  EXPECT_EQ(server->Stop(), 0);
}

}  // namespace
}  // namespace quotum::itest
