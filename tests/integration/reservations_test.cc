// Reserve -> commit/release over HTTP against the real binary, on the
// embedded backend and (scale-out/ReservationsHttpTest) on Redis + PostgreSQL:
// held units count against the limit, commits charge the real amount, holds
// expire on time, keys replay, and bad input changes nothing.
#include <boost/json.hpp>
#include <thread>

#include "gtest/gtest.h"
#include "harness.h"

namespace quotum::itest {
namespace {

using testing::HttpResponse;

class ReservationsHttpTest : public OneServerSuite<ReservationsHttpTest> {
 protected:
  /// A starter tenant whose ai_tokens limit is `limit`.
  Tenant TenantWithTokens(testing::HttpClient& c, const std::string& id, uint64_t limit) {
    Tenant t = CreateTenant(c, id, "starter");
    auto r = c.Send("PUT", "/admin/tenants/" + id + "/limits",
                    R"({"ai_tokens":)" + std::to_string(limit) + "}", Admin());
    EXPECT_EQ(r.status, 200) << r.body;
    return t;
  }
  static std::string Reserve(uint64_t q, int ttl_s = 300) {
    return R"({"meter":"ai_tokens","quantity":)" + std::to_string(q) + R"(,"ttl_s":)" +
           std::to_string(ttl_s) + "}";
  }
  static std::string Commit(const std::string& id, uint64_t q) {
    return R"({"reservation_id":")" + id + R"(","quantity":)" + std::to_string(q) + "}";
  }
  static std::string Release(const std::string& id) {
    return R"({"reservation_id":")" + id + R"("})";
  }
  /// The tenant's ai_tokens this period, as usage/current shows them.
  static uint64_t TokensUsed(testing::HttpClient& c, const Tenant& t) {
    auto r = c.Get("/api/v2/usage/current", Bearer(t.key));
    EXPECT_EQ(r.status, 200) << r.body;
    return r.json().at("meters").at("ai_tokens").at("used").to_number<uint64_t>();
  }
  static std::string IdOf(const HttpResponse& r) {
    return std::string(r.json().at("reservation_id").as_string());
  }
};

TEST_F(ReservationsHttpTest, HeldUnitsCountUntilCommittedAndTheRealAmountIsCharged) {
  auto c = Client();
  Tenant t = TenantWithTokens(c, "rsv-commit", 1000);
  auto r = c.Post("/api/v2/quota/reserve", Reserve(600), Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string id = IdOf(r);
  EXPECT_EQ(id.rfind("rsv_", 0), 0u) << id;
  EXPECT_EQ(r.json().at("remaining"), 400) << r.body;
  EXPECT_EQ(r.json().at("consumed"), 0) << r.body;
  EXPECT_EQ(r.json().at("reservation").at("state"), "held") << r.body;
  EXPECT_EQ(r.json().at("reservation").at("units"), 600) << r.body;
  const absl::Time expires = *ParseRfc3339(std::string(r.json().at("expires_at").as_string()));
  EXPECT_GT(expires, absl::Now() + absl::Seconds(290));
  EXPECT_LT(expires, absl::Now() + absl::Seconds(310));
  EXPECT_EQ(TokensUsed(c, t), 0u);

  EXPECT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("ai_tokens", 401), Bearer(t.key)).status,
            429);
  ASSERT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("ai_tokens", 400), Bearer(t.key)).status,
            200);
  // More than held that does not fit: 429, and the reservation stands.
  r = c.Post("/api/v2/quota/commit", Commit(id, 700), Bearer(t.key));
  ASSERT_EQ(r.status, 429) << r.body;
  EXPECT_EQ(r.json().at("reservation_id").as_string(), id) << r.body;
  EXPECT_EQ(TokensUsed(c, t), 400u);
  r = c.Post("/api/v2/quota/commit", Commit(id, 250), Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("committed"), 250) << r.body;
  EXPECT_EQ(r.json().at("released"), 350) << r.body;
  EXPECT_EQ(r.json().at("remaining"), 350) << r.body;
  EXPECT_EQ(r.json().at("reservation").at("state"), "committed") << r.body;
  EXPECT_EQ(TokensUsed(c, t), 650u);
  r = c.Post("/api/v2/quota/commit", Commit(id, 1), Bearer(t.key));
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(r.json().at("code"), "reservation_not_found") << r.body;
  EXPECT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("ai_tokens", 350), Bearer(t.key)).status,
            200);
}

TEST_F(ReservationsHttpTest, AReleaseOrAnExpiryGivesTheUnitsBack) {
  auto c = Client();
  Tenant t = TenantWithTokens(c, "rsv-release", 100);
  auto r = c.Post("/api/v2/quota/reserve", Reserve(100), Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(c.Post("/api/v2/quota/reserve", Reserve(1), Bearer(t.key)).status, 429);
  r = c.Post("/api/v2/quota/release", Release(IdOf(r)), Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("released"), 100) << r.body;
  EXPECT_EQ(r.json().at("committed"), 0) << r.body;
  EXPECT_EQ(r.json().at("reservation").at("state"), "released") << r.body;

  r = c.Post("/api/v2/quota/reserve", Reserve(100, 1), Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string id = IdOf(r);
  auto one = c.Post("/api/v2/quota/consume", ConsumeBody("ai_tokens", 1), Bearer(t.key));
  EXPECT_EQ(one.status, 429) << one.body;
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("ai_tokens", 100), Bearer(t.key)).status,
            200);
  r = c.Post("/api/v2/quota/commit", Commit(id, 1), Bearer(t.key));
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(TokensUsed(c, t), 100u);
}

TEST_F(ReservationsHttpTest, IdempotencyKeysWorkOnAllThree) {
  auto c = Client();
  Tenant t = TenantWithTokens(c, "rsv-keys", 100);
  auto h = Bearer(t.key);
  h["Idempotency-Key"] = "reserve-1";
  auto first = c.Post("/api/v2/quota/reserve", Reserve(60), h);
  ASSERT_EQ(first.status, 200) << first.body;
  auto again = c.Post("/api/v2/quota/reserve", Reserve(60), h);
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.headers["idempotent-replayed"], "true");
  EXPECT_EQ(IdOf(again), IdOf(first));
  EXPECT_EQ(again.json().at("expires_at"), first.json().at("expires_at"));
  // Held once: 40 are left.
  EXPECT_EQ(c.Post("/api/v2/quota/reserve", Reserve(41), Bearer(t.key)).status, 429);
  EXPECT_EQ(c.Post("/api/v2/quota/reserve", Reserve(61), h).status, 422);  // the key, reused

  h["Idempotency-Key"] = "commit-1";
  auto commit = c.Post("/api/v2/quota/commit", Commit(IdOf(first), 30), h);
  ASSERT_EQ(commit.status, 200) << commit.body;
  commit = c.Post("/api/v2/quota/commit", Commit(IdOf(first), 30), h);
  ASSERT_EQ(commit.status, 200) << commit.body;  // replayed, not 404
  EXPECT_EQ(commit.headers["idempotent-replayed"], "true");
  EXPECT_EQ(commit.json().at("committed"), 30) << commit.body;
  EXPECT_EQ(TokensUsed(c, t), 30u);

  auto held = c.Post("/api/v2/quota/reserve", Reserve(10), Bearer(t.key));
  ASSERT_EQ(held.status, 200) << held.body;
  h["Idempotency-Key"] = "release-1";
  ASSERT_EQ(c.Post("/api/v2/quota/release", Release(IdOf(held)), h).status, 200);
  auto replay = c.Post("/api/v2/quota/release", Release(IdOf(held)), h);
  ASSERT_EQ(replay.status, 200) << replay.body;
  EXPECT_EQ(replay.json().at("released"), 10) << replay.body;
  EXPECT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("ai_tokens", 70), Bearer(t.key)).status,
            200);
}

TEST_F(ReservationsHttpTest, BadInputIsRefusedAndChangesNothing) {
  auto c = Client();
  Tenant t = TenantWithTokens(c, "rsv-bad", 100);
  struct Case {
    const char* path;
    std::string body;
    int status;
    const char* code;
  };
  const Case cases[] = {
      {"/api/v2/quota/reserve", R"({"meter":"nope","quantity":1})", 422, "unknown_meter"},
      {"/api/v2/quota/reserve", R"({"meter":"groups_active","quantity":1})", 422, "gauge_meter"},
      {"/api/v2/quota/reserve", R"({"meter":"messages_sent","quantity":1})", 422, "not_reservable"},
      {"/api/v2/quota/reserve", R"({"meter":"ai_tokens","quantity":0})", 422, "invalid_quantity"},
      {"/api/v2/quota/reserve", R"({"meter":"ai_tokens"})", 400, "missing_field"},
      {"/api/v2/quota/reserve", Reserve(1, 0), 422, "invalid_ttl"},
      {"/api/v2/quota/reserve", Reserve(1, 86401), 422, "invalid_ttl"},
      {"/api/v2/quota/reserve", R"({"meter":"ai_tokens","quantity":1,"ttl_s":"5"})", 400,
       "invalid_field"},
      {"/api/v2/quota/reserve", R"({"meter":"ai_tokens","quantity":1,"ttl_s":-5})", 422,
       "invalid_ttl"},
      {"/api/v2/quota/commit", R"({"reservation_id":"rsv_0","quantity":1,"channel":""})", 422,
       "unknown_channel"},
      {"/api/v2/quota/commit", Commit("rsv_000000000000000000000000_api_calls", 1), 404,
       "reservation_not_found"},
      {"/api/v2/quota/release", Release("rsv_000000000000000000000000_messages_sent"), 404,
       "reservation_not_found"},
      {"/api/v2/quota/commit", R"({"quantity":1})", 400, "missing_field"},
      {"/api/v2/quota/commit", R"({"reservation_id":"rsv_0"})", 400, "missing_field"},
      {"/api/v2/quota/commit", Commit("not-a-reservation", 1), 404, "reservation_not_found"},
      {"/api/v2/quota/commit", Commit("rsv_000000000000000000000000_ai_tokens", 1), 404,
       "reservation_not_found"},
      {"/api/v2/quota/commit", Commit("rsv_000000000000000000000000_nope", 1), 404,
       "reservation_not_found"},
      {"/api/v2/quota/commit", R"({"reservation_id":"rsv_0","quantity":-1})", 422,
       "invalid_quantity"},
      {"/api/v2/quota/release", R"({})", 400, "missing_field"},
      {"/api/v2/quota/release", Release("rsv_000000000000000000000000_ai_tokens"), 404,
       "reservation_not_found"},
  };
  for (const Case& k : cases) {
    auto r = c.Post(k.path, k.body, Bearer(t.key));
    EXPECT_EQ(r.status, k.status) << k.path << " " << k.body << ": " << r.body;
    EXPECT_EQ(r.json().at("code"), k.code) << k.path << " " << k.body << ": " << r.body;
  }
  EXPECT_EQ(TokensUsed(c, t), 0u);
  EXPECT_EQ(c.Post("/api/v2/quota/reserve", Reserve(100), Bearer(t.key)).status, 200);
}

}  // namespace
}  // namespace quotum::itest
