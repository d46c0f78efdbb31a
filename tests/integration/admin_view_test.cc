// The admin's view of tenants against the real binary, on either backend:
// GET /admin/risk ranks tenants by how close they are to their limits, and
// X-Quotum-Tenant lets the admin key read any tenant's routes, read only.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "harness.h"
#include "quotum/testing/raw_connection.h"

namespace quotum::itest {
namespace {

using std::chrono::milliseconds;
using testing::HttpClient;

std::map<std::string, std::string> AdminAs(const std::string& tenant) {
  return {{"X-API-Key", kAdminKey}, {"X-Quotum-Tenant", tenant}};
}

class AdminViewHttpTest : public OneServerSuite<AdminViewHttpTest> {
 protected:
  /// A starter tenant (1,000 messages a period) that sent `sent`.
  static Tenant Using(HttpClient& c, const std::string& id, uint64_t sent) {
    Tenant t = CreateTenant(c, id, "starter");
    auto r = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", sent), Bearer(t.key));
    EXPECT_EQ(r.status, 200) << r.body;
    return t;
  }
};

TEST_F(AdminViewHttpTest, RiskRanksTenantsByHowCloseTheyAreToTheirLimits) {
  auto c = Client();
  Using(c, "rank-low", 100);
  Using(c, "rank-high", 900);
  Using(c, "rank-mid", 500);
  // Scale-out: the alerts reach the cold store with a facts-drain round.
  auto r = GetEventually(c, "/admin/risk?limit=100", Admin(), [](const testing::HttpResponse& r) {
    if (r.status != 200) return false;
    const boost::json::value body = r.json();
    for (const auto& e : body.at("tenants").as_array()) {
      if (e.at("id") == "rank-high") return e.at("alerts").to_number<int64_t>() >= 1;
    }
    return false;
  });
  ASSERT_EQ(r.status, 200) << r.body;
  const boost::json::value body = r.json();
  const auto& o = body.as_object();
  EXPECT_GE(o.at("considered").to_number<int64_t>(), 3);
  std::vector<std::string> order;
  for (const auto& e : o.at("tenants").as_array()) {
    const auto& t = e.as_object();
    const std::string id(t.at("id").as_string());
    if (id.rfind("rank-", 0) != 0) continue;
    order.push_back(id);
    EXPECT_EQ(t.at("meter"), "messages_sent") << e;
    EXPECT_EQ(t.at("limit"), 1000) << e;
    // The risk is at least what is used now; a forecast can only raise it.
    EXPECT_GE(t.at("risk_percent").to_number<double>(), t.at("percentage").to_number<double>());
    if (id == "rank-high") {
      EXPECT_EQ(t.at("used"), 900) << e;
      EXPECT_EQ(t.at("percentage").to_number<double>(), 90.0) << e;
      EXPECT_EQ(t.at("band"), "red") << e;
      EXPECT_GE(t.at("alerts").to_number<int64_t>(), 1) << e;  // 80 % was crossed
    }
  }
  EXPECT_EQ(order, (std::vector<std::string>{"rank-high", "rank-mid", "rank-low"})) << r.body;
  auto one = c.Get("/admin/risk?limit=1", Admin());
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(one.json().at("tenants").as_array().size(), 1u);
}

TEST_F(AdminViewHttpTest, RiskIsForTheAdminAndValidatesItsLimit) {
  auto c = Client();
  Tenant t = CreateTenant(c, "risk-keys", "starter");
  EXPECT_EQ(c.Get("/admin/risk").status, 401);
  EXPECT_EQ(c.Get("/admin/risk", Bearer(t.key)).status, 403);
  for (const char* bad : {"0", "101", "x", "-1"}) {
    auto r = c.Get(absl::StrCat("/admin/risk?limit=", bad), Admin());
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(r.json().at("code"), "invalid_query") << r.body;
  }
}

TEST_F(AdminViewHttpTest, TheAdminReadsAsATenantWithoutChargingIt) {
  auto c = Client();
  Tenant t = Using(c, "as-tenant", 42);
  auto r = c.Get("/api/v2/usage/current", AdminAs(t.id));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("tenant_id").as_string(), t.id);
  EXPECT_EQ(r.json().at("messages_sent"), 42);
  const auto calls = r.json().at("api_calls");
  // The admin's reads are not the tenant's API calls, nor held to its rate rule.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(c.Get("/api/v2/usage/daily?days=2", AdminAs(t.id)).status, 200);
  }
  EXPECT_EQ(c.Get("/api/v2/usage/current", AdminAs(t.id)).json().at("api_calls"), calls);
}

TEST_F(AdminViewHttpTest, AsATenantTheAdminChangesNothing) {
  auto c = Client();
  Tenant t = Using(c, "as-tenant-ro", 5);
  auto post = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 1), AdminAs(t.id));
  EXPECT_EQ(post.status, 403) << post.body;
  EXPECT_EQ(post.json().at("code"), "read_only");
  auto del = c.Send("DELETE", "/api/v2/sessions/s1", "", AdminAs(t.id));
  EXPECT_EQ(del.status, 403) << del.body;
  EXPECT_EQ(UsageField(c, t, "messages_sent"), 5u);
  auto missing = c.Get("/api/v2/usage/current", AdminAs("no-such-tenant"));
  EXPECT_EQ(missing.status, 404) << missing.body;
  EXPECT_EQ(missing.json().at("code"), "tenant_not_found");
  auto tenant_key = c.Get("/api/v2/usage/current",
                          {{"Authorization", "Bearer " + t.key}, {"X-Quotum-Tenant", t.id}});
  EXPECT_EQ(tenant_key.status, 403) << tenant_key.body;
  auto no_key = c.Get("/api/v2/usage/current", {{"X-Quotum-Tenant", t.id}});
  EXPECT_EQ(no_key.status, 401) << no_key.body;
}

TEST_F(AdminViewHttpTest, TheAdminCanWatchATenantsStream) {
  auto c = Client();
  Tenant t = Using(c, "as-tenant-live", 3);
  testing::RawConnection conn(server_->port());
  ASSERT_TRUE(conn.Send(absl::StrCat("GET /api/v2/usage/stream HTTP/1.1\r\nHost: x\r\nX-API-Key: ",
                                     kAdminKey, "\r\nX-Quotum-Tenant: ", t.id, "\r\n\r\n")));
  std::string got;
  ASSERT_TRUE(conn.ReadUntil(got, "event: usage", 0, milliseconds(5000))) << got;
  EXPECT_NE(got.find(absl::StrCat("\"tenant_id\":\"", t.id, "\"")), std::string::npos) << got;
}

}  // namespace
}  // namespace quotum::itest
