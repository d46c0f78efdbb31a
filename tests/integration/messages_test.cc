// Scheduled and held sends over HTTP against the real binary, on the
// embedded backend and (scale-out/MessagesHttpTest) on Redis + PostgreSQL:
// a scheduled send goes at its time, a send past a limit whose on_limit is
// "queue" is held (202) and goes after an upgrade, a queued message can be
// cancelled until it goes, and bad input is refused with nothing queued.
#include <boost/json.hpp>
#include <mutex>
#include <set>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "harness.h"
#include "support/http_receiver.h"
#include "upstream_suite.h"

namespace quotum::itest {
namespace {

using testing::HttpResponse;

class MessagesHttpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(testing::MakeTempDir("quotum-messages-"));
    server_ = StartServerWithToml(*dir_, R"(
[plans.queued]
display_name = "Queued"
price_cents = 100
rate_limit_profile = "standard"
[plans.queued.limits]
messages_sent = 3
sessions_active = 5
[plans.queued.on_limit]
messages_sent = "queue"

[plans.tiered]
display_name = "Tiered"
price_cents = 100
rate_limit_profile = "standard"
[plans.tiered.limits]
messages_sent = 1000
sessions_active = 5
[plans.tiered.messaging_tiers]
steps = [3, 10]
step_up_delay_seconds = 3600
)")
                  .release();
  }
  static void TearDownTestSuite() {
    EXPECT_EQ(server_->Stop(), 0);
    delete server_;
    delete dir_;
  }
  testing::HttpClient Client() { return testing::HttpClient(server_->port()); }

  static std::string Schedule(absl::Time at, const std::string& to = "+15550100") {
    return absl::StrCat(R"({"session":"s1","to":")", to, R"(","text":"hi","send_at":")",
                        FormatRfc3339(at), R"("})");
  }
  /// The message's status, polled until it is `want` or 15 s have passed.
  static std::string AwaitStatus(testing::HttpClient& c, const Tenant& t, const std::string& id,
                                 const std::string& want) {
    std::string status;
    for (int i = 0; i < 150; ++i) {
      auto r = c.Get("/api/v2/messages/" + id, Bearer(t.key));
      if (r.status == 200) status = std::string(r.json().at("status").as_string());
      if (status == want) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return status;
  }

  inline static std::string* dir_ = nullptr;
  inline static testing::ServerProcess* server_ = nullptr;
};

TEST_F(MessagesHttpTest, AScheduledSendGoesAtItsTime) {
  auto c = Client();
  Tenant t = CreateTenant(c, "msg-sched", "pro");
  StartSession(c, t, "s1");
  auto r =
      c.Post("/api/v2/messages/schedule", Schedule(absl::Now() + absl::Seconds(2)), Bearer(t.key));
  ASSERT_EQ(r.status, 202) << r.body;
  const std::string id(r.json().at("id").as_string());
  EXPECT_EQ(r.json().at("status"), "queued") << r.body;
  EXPECT_EQ(r.json().at("reason"), "scheduled") << r.body;
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 0u);
  EXPECT_EQ(AwaitStatus(c, t, id, "sent"), "sent");
  r = c.Get("/api/v2/messages/" + id, Bearer(t.key));
  EXPECT_TRUE(r.json().at("sent_at").is_string()) << r.body;
  EXPECT_EQ(r.json().at("session"), "s1") << r.body;
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 1u);
}

TEST_F(MessagesHttpTest, AQueuedMessageCanBeCancelledAndListedUntilItGoes) {
  auto c = Client();
  Tenant t = CreateTenant(c, "msg-cancel", "pro");
  Tenant other = CreateTenant(c, "msg-other", "pro");
  StartSession(c, t, "s1");
  std::vector<std::string> ids;
  for (const char* to : {"+1", "+2", "+3"}) {
    auto r = c.Post("/api/v2/messages/schedule", Schedule(absl::Now() + absl::Hours(1), to),
                    Bearer(t.key));
    ASSERT_EQ(r.status, 202) << r.body;
    ids.emplace_back(r.json().at("id").as_string());
  }
  auto r = c.Get("/api/v2/messages?status=queued&limit=2", Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("messages").as_array().size(), 2u) << r.body;
  const std::string cursor(r.json().at("next_cursor").as_string());
  r = c.Get("/api/v2/messages?status=queued&limit=2&cursor=" + cursor, Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("messages").as_array().size(), 1u) << r.body;
  EXPECT_TRUE(r.json().at("next_cursor").is_null()) << r.body;

  EXPECT_EQ(c.Send("DELETE", "/api/v2/messages/" + ids[0], "", Bearer(other.key)).status, 404);
  r = c.Send("DELETE", "/api/v2/messages/" + ids[0], "", Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("status"), "cancelled") << r.body;
  r = c.Send("DELETE", "/api/v2/messages/" + ids[0], "", Bearer(t.key));
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(r.json().at("code"), "message_not_queued") << r.body;
  EXPECT_EQ(c.Send("DELETE", "/api/v2/messages/msg_nope", "", Bearer(t.key)).status, 404);
  r = c.Get("/api/v2/messages?status=cancelled", Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("messages").as_array().size(), 1u) << r.body;
  EXPECT_EQ(c.Get("/api/v2/messages", Bearer(other.key)).json().at("messages").as_array().size(),
            0u);
}

TEST_F(MessagesHttpTest, ASendPastALimitThatQueuesIsHeldAndGoesAfterAnUpgrade) {
  auto c = Client();
  Tenant t = CreateTenant(c, "msg-held", "queued");
  StartSession(c, t, "s1");
  const std::string send = R"({"session":"s1","to":"+15550100","text":"hi"})";
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(c.Post("/api/v2/messages/send", send, Bearer(t.key)).status, 200);
  }
  auto headers = Bearer(t.key);
  headers["Idempotency-Key"] = "held-1";
  auto r = c.Post("/api/v2/messages/send", send, headers);
  ASSERT_EQ(r.status, 202) << r.body;
  const std::string id(r.json().at("message_id").as_string());
  EXPECT_EQ(r.json().at("status"), "queued") << r.body;
  EXPECT_EQ(r.json().at("reason"), "quota_exceeded") << r.body;
  r = c.Post("/api/v2/messages/send", send, headers);  // a retry names the same message
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.json().at("message_id"), id.c_str()) << r.body;
  EXPECT_EQ(c.Get("/api/v2/messages?status=queued", Bearer(t.key))
                .json()
                .at("messages")
                .as_array()
                .size(),
            1u);
  r = c.Post("/api/v2/subscription/change", R"({"plan":"pro"})", Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(AwaitStatus(c, t, id, "sent"), "sent");
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 4u);
}

TEST_F(MessagesHttpTest, BadScheduledSendsAreRefusedAndQueueNothing) {
  auto c = Client();
  Tenant t = CreateTenant(c, "msg-bad", "pro");
  StartSession(c, t, "s1");
  const std::string later = FormatRfc3339(absl::Now() + absl::Hours(1));
  struct Case {
    std::string body;
    int status;
    std::string code;
  } cases[] = {
      {R"({"session":"s1","to":"+1","text":"hi"})", 400, "missing_field"},
      {R"({"session":"s1","to":"+1","send_at":"tomorrow"})", 400, "invalid_send_at"},
      {R"({"session":"s1","to":"+1","send_at":")" + FormatRfc3339(absl::Now() - absl::Hours(1)) +
           R"("})",
       422, "invalid_send_at"},
      {R"({"session":"s1","to":"+1","send_at":")" +
           FormatRfc3339(absl::Now() + absl::Hours(24 * 400)) + R"("})",
       422, "invalid_send_at"},
      {R"({"session":"nope","to":"+1","send_at":")" + later + R"("})", 404, "session_not_found"},
      {R"({"session":"s1","send_at":")" + later + R"("})", 400, "missing_field"},
      {R"({"to":"+1","send_at":")" + later + R"("})", 400, "missing_field"},
      {R"({"session":"s1","to":"+1","channel":"fax","send_at":")" + later + R"("})", 422,
       "unknown_channel"},
      {R"({"session":"s1","to":"+1","type":"poster","send_at":")" + later + R"("})", 422,
       "unknown_message_type"},
      {R"({"session":"s1","to":"+1","text":")" + std::string(65537, 'x') + R"(","send_at":")" +
           later + R"("})",
       422, "invalid_field"},
      {"[1,2]", 400, "invalid_json"},
      {R"({"session":"s1","to":"+1","text":"a\u0000b","send_at":")" + later + R"("})", 422,
       "invalid_field"},
  };
  for (const Case& k : cases) {
    auto r = c.Post("/api/v2/messages/schedule", k.body, Bearer(t.key));
    EXPECT_EQ(r.status, k.status) << k.body.substr(0, 120) << " -> " << r.body;
    EXPECT_EQ(r.json().at("code"), k.code.c_str()) << k.body.substr(0, 120) << " -> " << r.body;
  }
  auto r = c.Get("/api/v2/messages", Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("messages").as_array().size(), 0u) << r.body;
  for (const char* q : {"?status=lost", "?limit=0", "?limit=501", "?limit=x", "?cursor=zzz"}) {
    r = c.Get(std::string("/api/v2/messages") + q, Bearer(t.key));
    EXPECT_TRUE(r.status == 400 || r.status == 422) << q << " -> " << r.body;
  }
}

/// A bulk body of `n` valid numbers (+1555000xxxx) plus `extra` raw entries.
std::string BulkBody(size_t n, const std::string& mode, const std::string& extra = "") {
  std::string list;
  for (size_t i = 0; i < n; ++i) {
    absl::StrAppend(&list, i ? "," : "", "\"+1555", 1000000 + i, "\"");
  }
  if (!extra.empty()) absl::StrAppend(&list, n ? "," : "", extra);
  return absl::StrCat(R"({"session":"s1","text":"sale","mode":")", mode, R"(","recipients":[)",
                      list, "]}");
}

size_t CountWithStatus(testing::HttpClient& c, const Tenant& t, const std::string& status) {
  size_t n = 0;
  std::string cursor;
  for (;;) {
    auto r = c.Get("/api/v2/messages?limit=500&status=" + status + cursor, Bearer(t.key));
    EXPECT_EQ(r.status, 200) << r.body;
    n += r.json().at("messages").as_array().size();
    if (r.json().at("next_cursor").is_null()) return n;
    cursor = "&cursor=" + std::string(r.json().at("next_cursor").as_string());
  }
}

/// CountWithStatus once it is `want`, or after 10 s (scale-out: a decision's
/// messages reach PostgreSQL with the facts drain, moments after the reply).
size_t AwaitCount(testing::HttpClient& c, const Tenant& t, const std::string& status, size_t want) {
  size_t n = CountWithStatus(c, t, status);
  for (int i = 0; i < 100 && n != want; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    n = CountWithStatus(c, t, status);
  }
  return n;
}

// The seed's case: 500 recipients with 200 messages left in the period.
TEST_F(MessagesHttpTest, ABulkPastTheLimitSendsWhatFitsAndRefusesOrQueuesTheRest) {
  auto c = Client();
  for (const std::string mode : {"immediate", "queue"}) {
    Tenant t = CreateTenant(c, "bulk-" + mode, "pro");  // 10,000 messages
    StartSession(c, t, "s1");
    ASSERT_EQ(
        c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 9800), Bearer(t.key)).status,
        200);
    auto r =
        c.Post("/api/v2/messages/bulk", BulkBody(500, mode, R"("12","+1 555")"), Bearer(t.key));
    ASSERT_EQ(r.status, 202) << r.body.substr(0, 300);
    const boost::json::value j = r.json();
    EXPECT_EQ(j.at("accepted"), 200) << mode;
    EXPECT_EQ(j.at("queued"), mode == "queue" ? 300 : 0) << mode;
    EXPECT_EQ(j.at("rejected"), mode == "queue" ? 2 : 302) << mode;
    EXPECT_EQ(j.at("messages").as_array().size(), mode == "queue" ? 500u : 200u) << mode;
    EXPECT_EQ(j.at("rejections").as_array()[0].at("index"), 500) << mode;
    EXPECT_EQ(j.at("rejections").as_array()[0].at("code"), "invalid_recipient") << mode;
    if (mode == "immediate") {
      EXPECT_EQ(j.at("rejections").as_array()[2].at("index"), 200);
      EXPECT_EQ(j.at("rejections").as_array()[2].at("code"), "limit_reached");
    }
    EXPECT_EQ(UsageField(c, t, "messages_sent"), 10000u) << mode;
    EXPECT_EQ(AwaitCount(c, t, "queued", mode == "queue" ? 300 : 0), mode == "queue" ? 300u : 0u)
        << mode;
    if (mode == "queue") {
      // An upgrade lets the rest go: all 300 are admitted (and charged).
      r = c.Post("/api/v2/subscription/change", R"({"plan":"business"})", Bearer(t.key));
      ASSERT_EQ(r.status, 200) << r.body;
      EXPECT_EQ(AwaitCount(c, t, "queued", 0), 0u);
      EXPECT_EQ(UsageField(c, t, "messages_sent"), 10300u);
    }
  }
}

TEST_F(MessagesHttpTest, ABulksHandOffIsPacedByTheSessionsMessagesRule) {
  StayInsideOneMinute(std::chrono::seconds(15));
  auto c = Client();
  Tenant t = CreateTenant(c, "bulk-paced", "pro");  // standard: 30 messages a minute
  StartSession(c, t, "s1");
  auto r = c.Post("/api/v2/messages/bulk", BulkBody(40, "immediate"), Bearer(t.key));
  ASSERT_EQ(r.status, 202) << r.body.substr(0, 300);
  EXPECT_EQ(r.json().at("accepted"), 40);
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 40u);  // charged at once
  for (int i = 0; i < 50 && CountWithStatus(c, t, "sent") < 30; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(CountWithStatus(c, t, "sent"), 30u);
  EXPECT_EQ(CountWithStatus(c, t, "released"), 10u);
  // A live send through the session is refused by the same rule meanwhile.
  r = c.Post("/api/v2/messages/send", R"({"session":"s1","to":"+15550100","text":"hi"})",
             Bearer(t.key));
  EXPECT_EQ(r.status, 429) << r.body;
}

TEST_F(MessagesHttpTest, AMessagingTierCapsUniqueRecipientsAndShowsOnTheSession) {
  auto c = Client();
  Tenant t = CreateTenant(c, "msg-tier", "tiered");
  StartSession(c, t, "s1");
  auto send = [&](const std::string& to) {
    return c.Post("/api/v2/messages/send",
                  absl::StrCat(R"({"session":"s1","to":")", to, R"(","text":"hi"})"),
                  Bearer(t.key));
  };
  ASSERT_EQ(send("+15550301").status, 200);
  ASSERT_EQ(send("+15550302").status, 200);
  ASSERT_EQ(send("+15550301").status, 200) << "a recipient of the last 24 h is free";
  // A bulk to one known and two new recipients: the cap of 3 admits the
  // first new one and refuses the other.
  auto r = c.Post("/api/v2/messages/bulk",
                  R"({"session":"s1","recipients":["+15550302","+15550303","+15550304"],)"
                  R"("text":"hi","mode":"immediate"})",
                  Bearer(t.key));
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.json().at("accepted"), 2) << r.body;
  EXPECT_EQ(r.json().at("rejected"), 1) << r.body;
  r = send("+15550305");
  ASSERT_EQ(r.status, 429) << r.body;
  EXPECT_EQ(r.json().at("code"), "tier_limit") << r.body;
  EXPECT_EQ(r.json().at("limit"), 3) << r.body;
  EXPECT_EQ(r.json().at("used_24h"), 3) << r.body;
  EXPECT_GT(r.json().at("retryAfter").as_int64(), 86000) << r.body;
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 5u);
  r = c.Get("/api/v2/sessions/s1", Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  const boost::json::value tier = r.json().at("messaging_tier");
  EXPECT_EQ(tier.at("level"), 0) << r.body;
  EXPECT_EQ(tier.at("limit"), 3) << r.body;
  EXPECT_EQ(tier.at("used_24h"), 3) << r.body;
  EXPECT_EQ(tier.at("unique_7d"), 3) << r.body;
  EXPECT_EQ(tier.at("next").at("limit"), 10) << r.body;
  EXPECT_EQ(tier.at("next").at("needed"), 0) << r.body;
  EXPECT_TRUE(tier.at("next").at("at").is_string()) << r.body;
  // A plan without tiers shows none.
  Tenant plain = CreateTenant(c, "msg-no-tier", "pro");
  StartSession(c, plain, "s1");
  r = c.Get("/api/v2/sessions/s1", Bearer(plain.key));
  EXPECT_TRUE(r.json().at("messaging_tier").is_null()) << r.body;
}

TEST_F(MessagesHttpTest, BadBulksAreRefusedAndChargeNothing) {
  auto c = Client();
  Tenant t = CreateTenant(c, "bulk-bad", "pro");
  StartSession(c, t, "s1");
  struct Case {
    std::string body;
    int status;
    std::string code;
  } cases[] = {
      {BulkBody(0, "queue"), 422, "no_recipients"},
      {BulkBody(10001, "queue"), 413, "too_many_recipients"},
      {BulkBody(0, "queue", R"("abc",7)"), 422, "invalid_recipients"},
      {BulkBody(3, "later"), 422, "invalid_mode"},
      {R"({"session":"s1","text":"x"})", 400, "missing_field"},
      {R"({"session":"s1","recipients":"+15550001"})", 400, "invalid_field"},
      {R"({"text":"x","recipients":["+15550001"]})", 400, "missing_field"},
      {R"({"session":"nope","text":"x","recipients":["+15550001"]})", 404, "session_not_found"},
      {absl::StrCat(R"({"session":"s1","text":")", std::string(65536, 'x'), R"(","recipients":[)",
                    BulkBody(300, "queue").substr(BulkBody(300, "queue").find('[') + 1)),
       413, "bulk_too_large"},
  };
  for (const Case& k : cases) {
    auto r = c.Post("/api/v2/messages/bulk", k.body, Bearer(t.key));
    EXPECT_EQ(r.status, k.status) << k.body.substr(0, 120) << " -> " << r.body.substr(0, 200);
    EXPECT_EQ(r.json().at("code"), k.code.c_str()) << k.body.substr(0, 120);
  }
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 0u);
  EXPECT_EQ(CountWithStatus(c, t, ""), 0u);
}

// The http provider against a real upstream on loopback: it answers 503
// with Retry-After to each message's first hand-off, 400 to one recipient,
// and 200 otherwise.
class DeliveryHttpTest : public UpstreamSuite<class DeliveryHttp> {
 protected:
  // The upstream: refuses +15550400 (a 400); answers any other message's
  // first attempt with a 503 and Retry-After, and its retry with a 200.
  static void SetUpTestSuite() {
    StartWithUpstream(
        [](const Receiver::Request& r) {
          static std::mutex mu;
          static std::set<std::string> seen;
          std::lock_guard<std::mutex> lock(mu);
          const std::string key(r["Idempotency-Key"]);
          boost::beast::http::status status = boost::beast::http::status::ok;
          if (r.body().find("+15550400") != std::string::npos) {
            status = boost::beast::http::status::bad_request;
          } else if (seen.insert(key).second) {
            status = boost::beast::http::status::service_unavailable;
          }
          Receiver::Response response(status, r.version());
          if (status == boost::beast::http::status::service_unavailable) {
            response.set("Retry-After", "1");
          }
          response.body() = status == boost::beast::http::status::ok ? "{}" : "{\"error\":\"no\"}";
          return response;
        },
        "token = \"upstream-secret\"\nretry_base_ms = 100\nmax_attempts = 3\n");
  }
};

TEST_F(DeliveryHttpTest, AFailedHandOffIsRetriedAndTheMessageSentOnce) {
  auto c = Client();
  Tenant t = CreateTenant(c, "dlv-retry", "pro");
  StartSession(c, t, "s1");
  auto r = c.Post("/api/v2/messages/send", R"({"session":"s1","to":"+15550100","text":"hi"})",
                  Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("status"), "released") << r.body;
  EXPECT_EQ(r.json().at("provider"), "http") << r.body;
  const std::string id(r.json().at("message_id").as_string());
  std::string status;
  for (int i = 0; i < 100 && status != "sent"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    // Scale-out: the message reaches PostgreSQL with the facts drain (a 404 until then).
    auto m = c.Get("/api/v2/messages/" + id, Bearer(t.key));
    if (m.status == 200) status = std::string(m.json().at("status").as_string());
  }
  EXPECT_EQ(status, "sent");
  const auto tries = RequestsFor(id);
  ASSERT_EQ(tries.size(), 2u);  // the 503, then the 200: one message, one key
  const boost::json::value body = boost::json::parse(tries[1].body());
  EXPECT_EQ(body.at("id"), id.c_str());
  EXPECT_EQ(body.at("tenant"), "dlv-retry");
  EXPECT_EQ(body.at("session"), "s1");
  EXPECT_EQ(body.at("to"), "+15550100");
  EXPECT_EQ(body.at("text"), "hi");
  EXPECT_EQ(std::string(tries[1]["Authorization"]), "Bearer upstream-secret");
  EXPECT_EQ(std::string(tries[1]["Content-Type"]), "application/json");
  const std::string metrics = c.Get("/metrics").body;
  EXPECT_NE(metrics.find(R"(quotum_message_deliveries_total{provider="http",outcome="retry"})"),
            std::string::npos);
  EXPECT_NE(metrics.find(R"(quotum_message_deliveries_total{provider="http",outcome="sent"})"),
            std::string::npos);
}

TEST_F(DeliveryHttpTest, AnUpstreamRefusalFailsTheMessageWithItsReason) {
  auto c = Client();
  Tenant t = CreateTenant(c, "dlv-refused", "pro");
  StartSession(c, t, "s1");
  auto r = c.Post("/api/v2/messages/send", R"({"session":"s1","to":"+15550400","text":"hi"})",
                  Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string id(r.json().at("message_id").as_string());
  boost::json::value m;
  for (int i = 0; i < 100; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto got = c.Get("/api/v2/messages/" + id, Bearer(t.key));  // a 404 until drained
    m = got.json();
    if (got.status == 200 && m.at("status") != "released") break;
  }
  EXPECT_EQ(m.at("status"), "failed") << m;
  EXPECT_NE(std::string(m.at("reason").as_string()).find("400"), std::string::npos) << m;
  EXPECT_EQ(RequestsFor(id).size(), 1u);             // a 4xx is not retried
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 1u);  // and its quota is not given back
}

}  // namespace
}  // namespace quotum::itest
