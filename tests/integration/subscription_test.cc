// Plan changes over HTTP against the real binary, on the embedded backend and
// (scale-out/SubscriptionHttpTest) on Redis + PostgreSQL: preview, upgrade,
// downgrade, cancel, the ledger, an admin's move, and every refusal.
#include <boost/json.hpp>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "harness.h"
#include "quotum/core/billing_period.h"
#include "quotum/core/plan_change.h"

namespace quotum::itest {
namespace {

using testing::HttpResponse;

class SubscriptionHttpTest : public OneServerSuite<SubscriptionHttpTest> {};

std::string PlanBody(const std::string& plan) { return R"({"plan":")" + plan + R"("})"; }

absl::Time TimeOf(const boost::json::value& v) { return *ParseRfc3339(std::string(v.as_string())); }

TEST_F(SubscriptionHttpTest, EveryPlanListsItsCreditsAndAiTokens) {
  auto c = Client();
  Tenant t = CreateTenant(c, "plans", "starter");
  auto r = c.Get("/api/v2/plans", Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  const boost::json::value plans = r.json();
  for (const auto& p : plans.at("plans").as_array()) {
    if (p.at("price_cents").as_int64() < 0) continue;  // enterprise: set by contract
    EXPECT_TRUE(p.at("limits").as_object().contains("credits")) << p;
    EXPECT_TRUE(p.at("limits").as_object().contains("ai_tokens")) << p;
  }
  boost::json::value business;
  for (const auto& p : plans.at("plans").as_array()) {
    if (p.at("name") == "business") business = p;
  }
  ASSERT_TRUE(business.is_object()) << r.body;
  EXPECT_EQ(business.at("interval"), "month");
  EXPECT_EQ(business.at("anchor"), "subscription");
  EXPECT_EQ(business.at("alert_thresholds"), (boost::json::array{80, 90, 100}));
  EXPECT_EQ(business.at("bands").at("yellow"), 50.0);
  EXPECT_EQ(business.at("bands").at("red"), 80.0);
  const boost::json::array& packs = business.at("addon_packs").as_array();
  ASSERT_FALSE(packs.empty());
  EXPECT_EQ(packs[0].at("meter"), "chatbot_sessions");
}

// Half a month in (the subscription started 15 days ago), Pro -> Business
// costs about half of the 70.00 difference, and the counters carry over.
TEST_F(SubscriptionHttpTest, AnUpgradeIsPreviewedAppliedAtOnceAndLedgered) {
  auto c = Client();
  const absl::Time start =
      absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now())) - absl::Hours(24 * 15);
  Tenant t = CreateTenant(c, "upgrader", "pro", FormatRfc3339(start));
  ASSERT_EQ(
      c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 9000), Bearer(t.key)).status,
      200);
  const absl::Time before = absl::Now();
  auto preview = c.Post("/api/v2/subscription/preview", PlanBody("business"), Bearer(t.key));
  ASSERT_EQ(preview.status, 200) << preview.body;
  auto p = preview.json();
  EXPECT_EQ(p.at("kind"), "upgrade");
  EXPECT_EQ(p.at("new_limits").at("messages_sent"), 50000);
  auto usage = c.Get("/api/v2/usage/current", Bearer(t.key)).json();
  const BillingPeriod period{TimeOf(usage.at("period_start")), TimeOf(usage.at("period_end")), 0};
  // The server's instant lies between ours before and after the call.
  const int64_t most = ProrationCents(2900, 9900, period, before);
  const int64_t least = ProrationCents(2900, 9900, period, absl::Now() + absl::Seconds(1));
  EXPECT_LE(p.at("proration_cents").as_int64(), most);
  EXPECT_GE(p.at("proration_cents").as_int64(), least);
  EXPECT_EQ(usage.at("plan"), "pro");  // the preview changed nothing

  auto change = c.Post("/api/v2/subscription/change", PlanBody("business"), Bearer(t.key));
  ASSERT_EQ(change.status, 200) << change.body;
  EXPECT_EQ(change.json().at("state"), "applied");
  EXPECT_GE(change.json().at("proration_cents").as_int64(), least);
  usage = c.Get("/api/v2/usage/current", Bearer(t.key)).json();
  EXPECT_EQ(usage.at("plan"), "business");
  EXPECT_EQ(usage.at("messages_sent"), 9000);  // not reset
  EXPECT_EQ(usage.at("limit_messages"), 50000);
  ASSERT_EQ(
      c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 2000), Bearer(t.key)).status,
      200);
  auto sub = c.Get("/api/v2/subscription", Bearer(t.key));
  ASSERT_EQ(sub.status, 200) << sub.body;
  auto changes = sub.json().at("changes").as_array();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].at("from"), "pro");
  EXPECT_EQ(changes[0].at("to"), "business");
  EXPECT_EQ(changes[0].at("actor"), "tenant");
  EXPECT_EQ(sub.json().at("plan"), "business");
  auto events = c.Get("/api/v2/events", Bearer(t.key));
  EXPECT_NE(events.body.find("subscription.changed"), std::string::npos) << events.body;
}

TEST_F(SubscriptionHttpTest, ADowngradeWaitsForThePeriodsEndUntilCancelled) {
  auto c = Client();
  Tenant t = CreateTenant(c, "downgrader", "business");
  auto change = c.Post("/api/v2/subscription/change", PlanBody("pro"), Bearer(t.key));
  ASSERT_EQ(change.status, 200) << change.body;
  EXPECT_EQ(change.json().at("state"), "pending");
  EXPECT_EQ(change.json().at("proration_cents"), 0);
  auto usage = c.Get("/api/v2/usage/current", Bearer(t.key)).json();
  EXPECT_EQ(usage.at("plan"), "business");
  ASSERT_TRUE(usage.at("pending_plan").is_object()) << usage;
  EXPECT_EQ(usage.at("pending_plan").at("plan"), "pro");
  EXPECT_EQ(usage.at("pending_plan").at("effective_at"), usage.at("period_end"));
  auto cancel = c.Send("DELETE", "/api/v2/subscription/pending", "", Bearer(t.key));
  ASSERT_EQ(cancel.status, 200) << cancel.body;
  EXPECT_EQ(cancel.json().at("state"), "cancelled");
  EXPECT_TRUE(c.Get("/api/v2/usage/current", Bearer(t.key)).json().at("pending_plan").is_null());
  auto again = c.Send("DELETE", "/api/v2/subscription/pending", "", Bearer(t.key));
  EXPECT_EQ(again.status, 404) << again.body;
  EXPECT_EQ(again.json().at("code"), "no_pending_change");
  auto sub = c.Get("/api/v2/subscription", Bearer(t.key)).json();
  ASSERT_EQ(sub.at("changes").as_array().size(), 1u);
  EXPECT_EQ(sub.at("changes").as_array()[0].at("state"), "cancelled");
}

TEST_F(SubscriptionHttpTest, BadChangesAreRefusedClearlyAndChangeNothing) {
  auto c = Client();
  Tenant t = CreateTenant(c, "picky", "pro");
  struct Case {
    const char* path;
    std::string body;
    int status;
    const char* code;
  };
  const Case cases[] = {
      {"/api/v2/subscription/change", PlanBody("warp"), 422, "unknown_plan"},
      {"/api/v2/subscription/preview", PlanBody("warp"), 422, "unknown_plan"},
      {"/api/v2/subscription/change", PlanBody("enterprise"), 403, "plan_not_selectable"},
      {"/api/v2/subscription/preview", PlanBody("enterprise"), 403, "plan_not_selectable"},
      {"/api/v2/subscription/change", PlanBody("pro"), 422, "same_plan"},
      {"/api/v2/subscription/change", "{}", 400, "missing_field"},
      {"/api/v2/subscription/change", R"({"plan":7})", 400, "invalid_field"},
      {"/api/v2/subscription/change", "not json", 400, "invalid_json"},
  };
  for (const Case& k : cases) {
    HttpResponse r = c.Post(k.path, k.body, Bearer(t.key));
    EXPECT_EQ(r.status, k.status) << k.body << " " << r.body;
    EXPECT_EQ(r.json().at("code"), k.code) << r.body;
  }
  auto same = c.Post("/api/v2/subscription/preview", PlanBody("pro"), Bearer(t.key));
  ASSERT_EQ(same.status, 200) << same.body;
  EXPECT_EQ(same.json().at("kind"), "same");
  EXPECT_EQ(same.json().at("proration_cents"), 0);
  EXPECT_EQ(c.Get("/api/v2/usage/current", Bearer(t.key)).json().at("plan"), "pro");
  EXPECT_TRUE(c.Get("/api/v2/subscription", Bearer(t.key)).json().at("changes").as_array().empty());
}

TEST_F(SubscriptionHttpTest, AddonsRaiseTheLimitAreListedAndEndWithThePeriod) {
  auto c = Client();
  Tenant t = CreateTenant(c, "packer", "pro");  // chatbot_sessions 2000
  auto r =
      c.Post("/api/v2/addons", R"({"meter":"chatbot_sessions","quantity":1500})", Bearer(t.key));
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(r.json().at("code"), "invalid_pack_size");
  EXPECT_NE(r.body.find("1000, 2000"), std::string::npos) << r.body;
  EXPECT_EQ(c.Post("/api/v2/addons", R"({"meter":"chatbot_sessions"})", Bearer(t.key)).status, 400);
  r = c.Post("/api/v2/addons", R"({"meter":"chatbot_sessions","quantity":1000})", Bearer(t.key));
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string id(r.json().at("id").as_string());
  EXPECT_TRUE(r.json().at("ends_at").is_null());
  EXPECT_GE(r.json().at("proration_cents").as_int64(), 0);
  EXPECT_LE(r.json().at("proration_cents").as_int64(), 3000);
  auto usage = c.Get("/api/v2/usage/current", Bearer(t.key)).json();
  EXPECT_EQ(usage.at("meters").at("chatbot_sessions").at("limit"), 3000);
  const boost::json::value parts = usage.at("meters").at("chatbot_sessions").at("limit_parts");
  EXPECT_EQ(parts.at("plan"), 2000);
  EXPECT_TRUE(parts.at("override").is_null());
  EXPECT_EQ(parts.at("addons"), 1000);
  ASSERT_EQ(usage.at("addons").as_array().size(), 1u);
  EXPECT_EQ(usage.at("addons").as_array()[0].at("units"), 1000);
  EXPECT_EQ(c.Get("/api/v2/addons", Bearer(t.key)).json().at("addons").as_array().size(), 1u);
  auto cancelled = c.Send("DELETE", "/api/v2/addons/" + id, "", Bearer(t.key));
  ASSERT_EQ(cancelled.status, 200) << cancelled.body;
  EXPECT_EQ(cancelled.json().at("ends_at"), usage.at("period_end"));
  EXPECT_EQ(c.Send("DELETE", "/api/v2/addons/" + id, "", Bearer(t.key)).status, 409);
  EXPECT_EQ(c.Send("DELETE", "/api/v2/addons/addon_nope", "", Bearer(t.key)).status, 404);
  // It counts until the period's end.
  usage = c.Get("/api/v2/usage/current", Bearer(t.key)).json();
  EXPECT_EQ(usage.at("meters").at("chatbot_sessions").at("limit"), 3000);
}

/// POST /api/v2/events with one event of 5 messages_sent at `at`.
std::string LateBody(absl::Time at, const std::string& key = "") {
  boost::json::object e{
      {"meter", "messages_sent"}, {"quantity", 5}, {"timestamp", FormatRfc3339(at)}};
  if (!key.empty()) e["idempotency_key"] = key;
  return boost::json::serialize(boost::json::object{{"events", boost::json::array{e}}});
}

/// The code of the first invalid event of a refused batch.
std::string FirstEventCode(const HttpResponse& r) {
  auto j = r.json();
  if (!j.is_object() || !j.as_object().contains("errors")) return "";
  return std::string(j.at("errors").at(0).at("code").as_string());
}

// The period began 20 minutes ago: an event of 25 minutes ago is late,
// counted in the closed period (even past its limit), and within the hour's
// grace; the live counter is left alone.
TEST_F(SubscriptionHttpTest, ALateEventCountsInTheClosedPeriodWithinTheGrace) {
  auto c = Client();
  const absl::Time anchor = AnchorOfAPeriodBegun(absl::Minutes(20));
  Tenant t = CreateTenant(c, "latecomer", "starter", FormatRfc3339(anchor));
  const absl::Time begun = PeriodAt(anchor, BillingInterval{}, absl::Now()).start;
  auto r = c.Post("/api/v2/events", LateBody(begun - absl::Minutes(5), "late-1"), Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  auto d = r.json().at("results").at(0);
  EXPECT_EQ(d.at("late"), true);
  EXPECT_EQ(d.at("consumed"), 5);
  EXPECT_TRUE(d.at("limit").is_null());
  EXPECT_EQ(TimeOf(d.at("reset_at")), begun);
  const absl::Time closed_start = TimeOf(d.at("period_start"));
  EXPECT_LT(closed_start, begun - absl::Hours(24 * 27));
  r = c.Post("/api/v2/events", LateBody(begun - absl::Minutes(5), "late-1"), Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("results").at(0).at("replayed"), true) << r.body;

  auto usage = c.Get("/api/v2/usage/current", Bearer(t.key)).json();
  EXPECT_EQ(usage.at("meters").at("messages_sent").at("used"), 0);
  auto h = GetEventually(c, "/api/v2/usage/history?months=2", Bearer(t.key), [](auto& r) {
    auto j = r.json();
    return j.at("periods").as_array().size() == 2 && j.at("periods").at(1).at("messages_sent") == 5;
  });
  ASSERT_EQ(h.status, 200) << h.body;
  auto closed = h.json().at("periods").at(1);
  EXPECT_EQ(closed.at("messages_sent"), 5) << h.body;  // counted once

  auto bad = c.Post("/api/v2/events", LateBody(closed_start - absl::Seconds(1)), Bearer(t.key));
  EXPECT_EQ(bad.status, 422) << bad.body;
  EXPECT_EQ(FirstEventCode(bad), "timestamp_out_of_period");

  // Two hours after the boundary the grace of one hour is over.
  const absl::Time old_anchor = AnchorOfAPeriodBegun(absl::Hours(2));
  Tenant late = CreateTenant(c, "toolate", "starter", FormatRfc3339(old_anchor));
  const absl::Time old_begun = PeriodAt(old_anchor, BillingInterval{}, absl::Now()).start;
  bad = c.Post("/api/v2/events", LateBody(old_begun - absl::Minutes(1)), Bearer(late.key));
  EXPECT_EQ(bad.status, 422) << bad.body;
  EXPECT_EQ(FirstEventCode(bad), "late_event_too_late");
  EXPECT_NE(bad.body.find(FormatRfc3339(old_begun + absl::Hours(1))), std::string::npos)
      << bad.body;
  auto none = c.Get("/api/v2/usage/history?months=2", Bearer(late.key)).json();
  for (const auto& p : none.at("periods").as_array()) EXPECT_EQ(p.at("messages_sent"), 0) << p;
}

std::string SendBody(uint64_t q, const std::string& channel, const std::string& type) {
  return boost::json::serialize(boost::json::object{
      {"meter", "messages_sent"}, {"quantity", q}, {"channel", channel}, {"type", type}});
}

// Pro: 20,000 credits; a whatsapp template costs 3 and a telegram text 1
// (the demo's costs): each send takes its credits in the same decision.
TEST_F(SubscriptionHttpTest, SendsCostCreditsByChannelAndTypeAllOrNothing) {
  auto c = Client();
  Tenant t = CreateTenant(c, "creditor", "pro");
  auto r = c.Post("/api/v2/quota/consume", SendBody(4000, "whatsapp", "template"), Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  auto credits = r.json().at("credits");
  EXPECT_EQ(credits.at("per_message"), 3);
  EXPECT_EQ(credits.at("charged"), 12000);
  EXPECT_EQ(credits.at("remaining"), 8000);
  r = c.Post("/api/v2/quota/consume", SendBody(3000, "whatsapp", "template"), Bearer(t.key));
  ASSERT_EQ(r.status, 429) << r.body;
  EXPECT_EQ(r.json().at("meter"), "credits");
  EXPECT_EQ(r.json().at("remaining"), 8000);
  EXPECT_EQ(r.header("x-quotum-rule"), "credits");
  r = c.Post("/api/v2/quota/consume", SendBody(7, "telegram", "text"), Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("credits").at("charged"), 7);
  r = c.Post("/api/v2/quota/consume", SendBody(1, "telegram", "video"), Bearer(t.key));
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(r.json().at("code"), "unknown_message_type");

  auto usage = c.Get("/api/v2/usage/current", Bearer(t.key)).json();
  EXPECT_EQ(usage.at("meters").at("messages_sent").at("used"), 4007);
  EXPECT_EQ(usage.at("meters").at("credits").at("used"), 12007);
  auto ch = GetEventually(c, "/api/v2/usage/channels?range=today", Bearer(t.key), [](auto& r) {
    auto j = r.json();
    return j.is_object() && j.at("meters").at("credits").at("channels").at("whatsapp") == 12000 &&
           j.at("meters").at("credits").at("channels").at("telegram") == 7;
  });
  ASSERT_EQ(ch.status, 200);
  EXPECT_EQ(ch.json().at("meters").at("credits").at("channels").at("whatsapp"), 12000) << ch.body;
  EXPECT_EQ(ch.json().at("meters").at("credits").at("channels").at("telegram"), 7) << ch.body;
}

TEST_F(SubscriptionHttpTest, AnAdminMovesAnyTenantAtOnce) {
  auto c = Client();
  Tenant t = CreateTenant(c, "moved", "pro");
  auto r = c.Post("/admin/tenants/moved/plan", PlanBody("enterprise"), Admin());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("actor"), "admin");
  EXPECT_EQ(r.json().at("state"), "applied");
  EXPECT_EQ(c.Get("/api/v2/usage/current", Bearer(t.key)).json().at("plan"), "enterprise");
  // A tenant on a contract plan cannot leave it by itself.
  r = c.Post("/api/v2/subscription/change", PlanBody("starter"), Bearer(t.key));
  EXPECT_EQ(r.status, 403) << r.body;
  r = c.Post("/admin/tenants/moved/plan", PlanBody("starter"), Admin());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("kind"), "downgrade");
  EXPECT_EQ(r.json().at("state"), "applied");
  EXPECT_EQ(c.Post("/admin/tenants/nobody/plan", PlanBody("pro"), Admin()).status, 404);
  EXPECT_EQ(c.Post("/admin/tenants/moved/plan", PlanBody("warp"), Admin()).status, 422);
  EXPECT_EQ(c.Get("/api/v2/subscription", Bearer(t.key)).json().at("changes").as_array().size(),
            2u);
}

}  // namespace
}  // namespace quotum::itest
