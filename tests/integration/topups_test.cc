// Top-ups over HTTP against the real binary, on the embedded backend and
// (scale-out/TopupsHttpTest) on Redis + PostgreSQL: a pack raises the limit
// at once, its units are used after the plan's (by consumes and by the
// credits of sends), balances show what is left, and bad input changes
// nothing.
#include <boost/json.hpp>

#include "gtest/gtest.h"
#include "harness.h"

namespace quotum::itest {
namespace {

using testing::HttpResponse;

class TopupsHttpTest : public OneServerSuite<TopupsHttpTest> {
 protected:
  static std::string Pack(const std::string& meter, uint64_t q, const std::string& extra = "") {
    return R"({"meter":")" + meter + R"(","quantity":)" + std::to_string(q) + extra + "}";
  }
  /// The balances GET /api/v2/topups lists, in drawing order.
  static std::vector<uint64_t> Balances(testing::HttpClient& c, const Tenant& t) {
    auto r = c.Get("/api/v2/topups", Bearer(t.key));
    EXPECT_EQ(r.status, 200) << r.body;
    std::vector<uint64_t> out;
    const boost::json::value j = r.json();
    for (const auto& e : j.at("topups").as_array()) {
      out.push_back(e.at("balance").to_number<uint64_t>());
    }
    return out;
  }
  static boost::json::value Credits(testing::HttpClient& c, const Tenant& t) {
    auto r = c.Get("/api/v2/usage/current", Bearer(t.key));
    EXPECT_EQ(r.status, 200) << r.body;
    return r.json().at("meters").at("credits");
  }
};

TEST_F(TopupsHttpTest, ATopUpIsUsedAfterThePlanByConsumesAndSends) {
  auto c = Client();
  Tenant t = CreateTenant(c, "top-use", "starter");  // 5,000 credits
  ASSERT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("credits", 5000), Bearer(t.key)).status,
            200);
  EXPECT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("credits", 1), Bearer(t.key)).status, 429);
  auto r =
      c.Post("/api/v2/topups", Pack("credits", 5000, R"(,"expires_in_days":30)"), Bearer(t.key));
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(std::string(r.json().at("id").as_string()).rfind("top_", 0), 0u) << r.body;
  EXPECT_EQ(r.json().at("balance"), 5000) << r.body;
  EXPECT_EQ(r.json().at("price_cents"), 1000) << r.body;
  const absl::Time expires = *ParseRfc3339(std::string(r.json().at("expires_at").as_string()));
  EXPECT_GT(expires, absl::Now() + absl::Hours(24 * 30) - absl::Minutes(1));
  EXPECT_LT(expires, absl::Now() + absl::Hours(24 * 30) + absl::Minutes(1));

  r = c.Post("/api/v2/quota/consume", ConsumeBody("credits", 2000), Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("limit"), 10000) << r.body;
  EXPECT_EQ(r.json().at("remaining"), 3000) << r.body;
  EXPECT_EQ(Balances(c, t), std::vector<uint64_t>{3000});
  // A text costs 1 credit: ten sends take ten more units of the top-up.
  r = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 10), Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("credits").at("remaining"), 2990) << r.body;
  EXPECT_EQ(Balances(c, t), std::vector<uint64_t>{2990});
  const boost::json::value credits = Credits(c, t);
  EXPECT_EQ(credits.at("used"), 7010) << credits;
  EXPECT_EQ(credits.at("limit"), 10000) << credits;
  EXPECT_EQ(credits.at("remaining"), 2990) << credits;
  EXPECT_EQ(credits.at("limit_parts").at("topups"), 5000) << credits;
  EXPECT_EQ(credits.at("limit_parts").at("plan"), 5000) << credits;
  // More than the balance is refused whole.
  EXPECT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("credits", 2991), Bearer(t.key)).status,
            429);
  EXPECT_EQ(Balances(c, t), std::vector<uint64_t>{2990});
}

TEST_F(TopupsHttpTest, BadTopUpsAreRefusedAndChangeNothing) {
  auto c = Client();
  Tenant t = CreateTenant(c, "top-bad", "starter");
  struct Case {
    std::string body;
    int status;
    std::string error;
  } cases[] = {
      {Pack("credits", 1234), 422, "invalid_pack_size"},
      {Pack("groups_active", 1), 422, "no_topup_packs"},
      {Pack("warp", 1), 422, "unknown_meter"},
      {Pack("credits", 5000, R"(,"expires_in_days":0)"), 422, "invalid_expiry"},
      {Pack("credits", 5000, R"(,"expires_in_days":"soon")"), 422, "invalid_expiry"},
      {Pack("credits", 0), 422, "invalid_quantity"},
      {R"({"quantity":5000})", 400, "missing_field"},
      {"[]", 400, "invalid_json"},
  };
  for (const Case& k : cases) {
    auto r = c.Post("/api/v2/topups", k.body, Bearer(t.key));
    EXPECT_EQ(r.status, k.status) << k.body << " -> " << r.body;
    EXPECT_EQ(r.json().at("code"), k.error.c_str()) << k.body << " -> " << r.body;
  }
  EXPECT_TRUE(Balances(c, t).empty());
  EXPECT_EQ(Credits(c, t).at("limit"), 5000);
  auto r = c.Get("/api/v2/plans", Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("topup_packs"), std::string::npos) << r.body;
}

}  // namespace
}  // namespace quotum::itest
