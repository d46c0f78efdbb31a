// Usage alerts over HTTP against the real binary, on the embedded backend and
// (scale-out/AlertsHttpTest) on Redis + PostgreSQL: each threshold fires once
// from the decision that crosses it, under concurrency and in one jump, and a
// grown limit resolves it once.
#include <atomic>
#include <boost/json.hpp>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "harness.h"

namespace quotum::itest {
namespace {

using testing::HttpResponse;

class AlertsHttpTest : public OneServerSuite<AlertsHttpTest> {};

// The tenant's alerts once at least `n` are listed (scale-out: PostgreSQL
// trails the decisions by a drain round).
boost::json::array AlertsOnce(testing::HttpClient& c, const Tenant& t, size_t n) {
  HttpResponse r = GetEventually(c, "/api/v2/alerts", Bearer(t.key), [&](const HttpResponse& r) {
    return r.status == 200 && r.json().at("alerts").as_array().size() >= n;
  });
  EXPECT_EQ(r.status, 200) << r.body;
  return r.json().at("alerts").as_array();
}

// The tenant's events of `type`, newest first.
std::vector<boost::json::object> EventsOf(testing::HttpClient& c, const Tenant& t,
                                          const std::string& type) {
  HttpResponse r = c.Get("/api/v2/events", Bearer(t.key));
  EXPECT_EQ(r.status, 200) << r.body;
  std::vector<boost::json::object> out;
  const boost::json::value body = r.json();
  for (const auto& e : body.at("events").as_array()) {
    if (e.at("type") == type.c_str()) out.push_back(e.as_object());
  }
  return out;
}

std::multiset<int64_t> Thresholds(const boost::json::array& alerts) {
  std::multiset<int64_t> out;
  for (const auto& a : alerts) out.insert(a.at("threshold").as_int64());
  return out;
}

/// The alerts of `meter` only.
boost::json::array OfMeter(const boost::json::array& alerts, const std::string& meter) {
  boost::json::array out;
  for (const auto& a : alerts) {
    if (a.at("meter").as_string() == meter) out.push_back(a);
  }
  return out;
}

TEST_F(AlertsHttpTest, ConcurrentClientsCrossingEachThresholdFireItOnce) {
  auto setup = Client();
  Tenant t = CreateTenant(setup, "alerts-race", "starter");  // messages_sent 1,000
  SetKeyLimits(setup, t, 100000);
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 32; ++i) {
    clients.emplace_back([&] {
      auto c = Client();
      for (int k = 0; k < 5; ++k) {  // 32 x 5 x 7 = 1,120 asked: every threshold is crossed
        HttpResponse r =
            c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 7, true), Bearer(t.key));
        if (r.status != 200 && r.status != 429) failures++;
      }
    });
  }
  for (auto& th : clients) th.join();
  ASSERT_EQ(failures.load(), 0);
  EXPECT_EQ(UsageField(setup, t, "messages_sent"), 1000u);
  boost::json::array alerts = AlertsOnce(setup, t, 3);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // nothing more arrives
  alerts = AlertsOnce(setup, t, 3);
  EXPECT_EQ(Thresholds(alerts), (std::multiset<int64_t>{80, 90, 100}));
  for (const auto& a : alerts) {
    // The decision that crossed t% charged at most 7 units.
    const int64_t at = a.at("threshold").as_int64() * 10, value = a.at("value").as_int64();
    EXPECT_GE(value, at) << a;
    EXPECT_LT(value - 7, at) << a;
    EXPECT_EQ(a.at("limit"), 1000) << a;
    EXPECT_EQ(a.at("meter"), "messages_sent");
    EXPECT_TRUE(a.at("resolved_at").is_null());
  }
  EXPECT_EQ(EventsOf(setup, t, "usage.threshold_reached").size(), 3u);
}

TEST_F(AlertsHttpTest, OneChargeOverSeveralThresholdsFiresEach) {
  auto c = Client();
  Tenant t = CreateTenant(c, "alerts-jump", "starter");
  ASSERT_EQ(
      c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 500), Bearer(t.key)).status,
      200);
  ASSERT_EQ(
      c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 500), Bearer(t.key)).status,
      200);
  boost::json::array alerts = AlertsOnce(c, t, 3);
  EXPECT_EQ(Thresholds(alerts), (std::multiset<int64_t>{80, 90, 100}));
  for (const auto& a : alerts) EXPECT_EQ(a.at("value"), 1000) << a;
  auto events = EventsOf(c, t, "usage.threshold_reached");
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].at("subject"), "messages_sent");
}

TEST_F(AlertsHttpTest, AGrownLimitResolvesFiredThresholdsOnceAndTheyDoNotFireAgain) {
  auto c = Client();
  Tenant t = CreateTenant(c, "alerts-grow", "starter");
  ASSERT_EQ(
      c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 950), Bearer(t.key)).status,
      200);
  ASSERT_EQ(AlertsOnce(c, t, 2).size(), 2u);  // 80 and 90
  auto change = c.Post("/api/v2/subscription/change", R"({"plan":"pro"})", Bearer(t.key));
  ASSERT_EQ(change.status, 200) << change.body;  // messages_sent 10,000 now
  boost::json::array alerts = AlertsOnce(c, t, 2);
  ASSERT_EQ(alerts.size(), 2u);
  for (const auto& a : alerts) EXPECT_TRUE(a.at("resolved_at").is_string()) << a;
  EXPECT_EQ(EventsOf(c, t, "usage.threshold_resolved").size(), 2u);
  // A second raise resolves nothing more.
  auto limits =
      c.Send("PUT", "/admin/tenants/" + t.id + "/limits", R"({"messages_sent":20000})", Admin());
  ASSERT_EQ(limits.status, 200) << limits.body;
  EXPECT_EQ(EventsOf(c, t, "usage.threshold_resolved").size(), 2u);
  // At most once per period: crossing 80 % of the new limit does not fire it again.
  ASSERT_EQ(
      c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 16000), Bearer(t.key)).status,
      200);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // (The 16,950 credits those messages cost, of Pro's 20,000, crossed 80 % of credits.)
  const boost::json::array alerts_now = AlertsOnce(c, t, 3);
  EXPECT_EQ(Thresholds(OfMeter(alerts_now, "messages_sent")), (std::multiset<int64_t>{80, 90}));
  EXPECT_EQ(Thresholds(OfMeter(alerts_now, "credits")), (std::multiset<int64_t>{80}));
}

// The demo catalog's business plan colours usage as XpressBot does: yellow
// from 50 %, red from 80 % (the other plans: 70 and 90).
TEST_F(AlertsHttpTest, BandsFollowThePlanFiftyAndEightyOnBusiness) {
  auto c = Client();
  Tenant t = CreateTenant(c, "bands-xb", "business");  // messages_sent limit 50,000
  auto band_after = [&](uint64_t q) {
    EXPECT_EQ(
        c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", q), Bearer(t.key)).status,
        200);
    HttpResponse r = c.Get("/api/v2/usage/current", Bearer(t.key));
    EXPECT_EQ(r.status, 200) << r.body;
    return std::string(r.json().at("meters").at("messages_sent").at("band").as_string());
  };
  EXPECT_EQ(band_after(20000), "green");   // 40 %
  EXPECT_EQ(band_after(10000), "yellow");  // 60 %: green on a 70 / 90 plan
  EXPECT_EQ(band_after(12000), "red");     // 84 %
}

TEST_F(AlertsHttpTest, AnUnlimitedOrUntouchedMeterHasNoAlertsAndBadRangesAreRefused) {
  auto c = Client();
  Tenant t = CreateTenant(c, "alerts-none", "starter");
  ASSERT_EQ(
      c.Post("/api/v2/quota/consume", ConsumeBody("messages_received", 5000), Bearer(t.key)).status,
      200);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(AlertsOnce(c, t, 0).empty());
  auto bad = c.Get("/api/v2/alerts?from=2026-13-01", Bearer(t.key));
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(bad.json().at("code"), "invalid_query");
  auto reversed = c.Get("/api/v2/alerts?from=2026-05-02&to=2026-05-01", Bearer(t.key));
  EXPECT_EQ(reversed.status, 400) << reversed.body;
}

TEST_F(AlertsHttpTest, UsageCurrentCarriesAForecastPerCounter) {
  auto c = Client();
  Tenant t = CreateTenant(c, "forecast-new", "starter");  // its period starts now
  ASSERT_EQ(
      c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 900), Bearer(t.key)).status,
      200);
  auto r = c.Get("/api/v2/usage/current", Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  const boost::json::value u = r.json();
  const boost::json::value& f = u.at("forecast");
  ASSERT_TRUE(f.is_object()) << r.body;
  // Minutes of data: today's pace (at least an hour counted) over a month.
  EXPECT_EQ(f.at("method"), "today_pace");
  EXPECT_GT(f.at("projected_period_end").to_number<uint64_t>(), 900u * 24);
  EXPECT_GT(f.at("projected_percentage").to_number<double>(), 100.0);
  EXPECT_TRUE(f.at("limit_reached_at").is_string()) << f;
  EXPECT_EQ(f.at("headroom_percent"), 20);
  EXPECT_TRUE(f.at("recommended_plan").is_null() || f.at("recommended_plan").is_string());
  const boost::json::object& meters = u.at("meters").as_object();
  EXPECT_TRUE(meters.at("messages_received").at("forecast").is_object());
  EXPECT_TRUE(meters.at("messages_received").at("forecast").at("projected_percentage").is_null());
  EXPECT_FALSE(meters.at("sessions_active").as_object().contains("forecast"));

  Tenant idle = CreateTenant(c, "forecast-idle", "starter");
  const boost::json::value quiet = c.Get("/api/v2/usage/current", Bearer(idle.key)).json();
  EXPECT_EQ(quiet.at("forecast").at("method"), "no_data");
  EXPECT_EQ(quiet.at("forecast").at("projected_period_end"), 0);
  EXPECT_TRUE(quiet.at("forecast").at("limit_reached_at").is_null());
  EXPECT_EQ(quiet.at("forecast").at("recommended_plan"), "starter");  // it fits: stay
}

}  // namespace
}  // namespace quotum::itest
