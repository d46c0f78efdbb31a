// A failed message's charge given back ([delivery] give_back = "refused"),
// over HTTP against the real binary and a real upstream on loopback, on the
// embedded backend and (scale-out/GiveBackHttpTest) on Redis + PostgreSQL:
// a message the upstream refuses gives its messages_sent unit and its
// credits back, in the counters and in the reports, once; one that ran out
// of attempts (the upstream may have sent it) keeps its charge.
#include <boost/json.hpp>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "harness.h"
#include "upstream_suite.h"

namespace quotum::itest {
namespace {

using testing::HttpResponse;

class GiveBackHttpTest : public UpstreamSuite<class GiveBackHttp> {
 protected:
  // The upstream: refuses +15550400 (a 400), fails +15550503 every time (a
  // 503), accepts anything else.
  static void SetUpTestSuite() {
    StartWithUpstream(
        [](const Receiver::Request& r) {
          auto status = boost::beast::http::status::ok;
          if (r.body().find("+15550400") != std::string::npos) {
            status = boost::beast::http::status::bad_request;
          } else if (r.body().find("+15550503") != std::string::npos) {
            status = boost::beast::http::status::service_unavailable;
          }
          Receiver::Response response(status, r.version());
          response.body() = status == boost::beast::http::status::ok ? "{}" : "{\"error\":\"no\"}";
          return response;
        },
        "retry_base_ms = 50\nmax_attempts = 2\ngive_back = \"refused\"\n");
  }

  /// Sends a whatsapp text to `to` through session s1; its message id.
  static std::string Send(testing::HttpClient& c, const Tenant& t, const std::string& to) {
    auto r =
        c.Post("/api/v2/messages/send",
               absl::StrCat(R"({"session":"s1","to":")", to, R"(","text":"hi"})"), Bearer(t.key));
    EXPECT_EQ(r.status, 200) << r.body;
    return std::string(r.json().at("message_id").as_string());
  }
  /// The message once it has left `released` (15 s at most; scale-out: a
  /// 404 until the facts drain has written it).
  static boost::json::value Settled(testing::HttpClient& c, const Tenant& t,
                                    const std::string& id) {
    auto r = GetEventually(
        c, "/api/v2/messages/" + id, Bearer(t.key),
        [](const HttpResponse& r) {
          return r.status == 200 && r.json().at("status") != "released";
        },
        std::chrono::seconds(15));
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? r.json() : boost::json::value();
  }
  /// `meter`'s used units in usage/current.
  static uint64_t Used(testing::HttpClient& c, const Tenant& t, const std::string& meter) {
    auto r = c.Get("/api/v2/usage/current", Bearer(t.key));
    EXPECT_EQ(r.status, 200) << r.body;
    return r.json().at("meters").at(meter).at("used").to_number<uint64_t>();
  }
  /// Today's row of usage/daily once its messages_sent is `want` (scale-out:
  /// the reports trail the counters by a facts-drain round).
  static boost::json::value TodayOnce(testing::HttpClient& c, const Tenant& t, int64_t want) {
    auto r = GetEventually(c, "/api/v2/usage/daily?range=today", Bearer(t.key),
                           [&](const HttpResponse& r) {
                             return r.status == 200 && r.json().at(0).at("messages_sent") == want;
                           });
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? r.json().at(0) : boost::json::value();
  }
};

// Pro sells messages by credits (a whatsapp text costs 1): the refused
// message gives back its unit and its credit; the accepted one keeps both.
TEST_F(GiveBackHttpTest, ARefusedMessageGivesItsChargeBackInCountersAndReports) {
  auto c = Client();
  Tenant t = CreateTenant(c, "gb-refused", "pro");
  StartSession(c, t, "s1");
  const std::string sent = Send(c, t, "+15550100");
  EXPECT_EQ(Settled(c, t, sent).at("status"), "sent");
  EXPECT_EQ(TodayOnce(c, t, 1).at("messages_sent"), 1);  // the rows exist before the refusal
  const uint64_t credits_of_one = Used(c, t, "credits");
  ASSERT_GT(credits_of_one, 0u);

  const std::string refused = Send(c, t, "+15550400");
  const boost::json::value m = Settled(c, t, refused);
  ASSERT_TRUE(m.is_object());
  EXPECT_EQ(m.at("status"), "failed") << m;
  EXPECT_NE(std::string(m.at("reason").as_string()).find("400"), std::string::npos) << m;
  EXPECT_EQ(Used(c, t, "messages_sent"), 1u);
  EXPECT_EQ(Used(c, t, "credits"), credits_of_one);
  const boost::json::value today = TodayOnce(c, t, 1);
  ASSERT_TRUE(today.is_object());
  EXPECT_EQ(today.at("messages_sent"), 1) << today;
  EXPECT_EQ(today.at("credits").to_number<uint64_t>(), credits_of_one) << today;
  auto channels = GetEventually(c, "/api/v2/usage/channels?range=today", Bearer(t.key),
                                [](const HttpResponse& r) { return r.status == 200; });
  EXPECT_EQ(channels.json().at("channels").at("whatsapp"), 1) << channels.body;
  EXPECT_NE(c.Get("/metrics").body.find("quotum_messages_given_back_total 1"), std::string::npos);
}

// A message that failed every attempt may still have been sent by the
// upstream: under "refused" it keeps its charge.
TEST_F(GiveBackHttpTest, AMessageOutOfAttemptsKeepsItsCharge) {
  auto c = Client();
  Tenant t = CreateTenant(c, "gb-exhausted", "pro");
  StartSession(c, t, "s1");
  const std::string id = Send(c, t, "+15550503");
  const boost::json::value m = Settled(c, t, id);
  ASSERT_TRUE(m.is_object());
  EXPECT_EQ(m.at("status"), "failed") << m;
  EXPECT_EQ(Used(c, t, "messages_sent"), 1u);
  EXPECT_GT(Used(c, t, "credits"), 0u);
  EXPECT_EQ(TodayOnce(c, t, 1).at("messages_sent"), 1);
}

}  // namespace
}  // namespace quotum::itest
