// The live usage streams' hub (http/usage_streams.h) with a usage source the
// test changes: first events, coalesced changes, resuming from an event id,
// heartbeats, the caps, and the end of every stream on a drain.
#include "quotum/http/usage_streams.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "example_config.h"
#include "quotum/engine/tenant_state.h"

namespace quotum::http {
namespace {

using std::chrono::milliseconds;

bool Has(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

class UsageStreamsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg_ = ::quotum::testing::LoadExampleWith("");
    ASSERT_TRUE(cfg_);
    sent_ = *catalog().FindMeter(meters::kMessagesSent);
    usage_.tenant.id = "t1";
    usage_.tenant.plan = "pro";
    usage_.tenant.period = {absl::FromUnixSeconds(1'790'000'000),
                            absl::FromUnixSeconds(1'792'592'000), 0};
    usage_.plan = catalog().FindPlan("pro");
    usage_.used.assign(catalog().meter_count(), 0);
    usage_.limits.assign(catalog().meter_count(), std::nullopt);
    usage_.limits[sent_] = 100;
  }
  const Catalog& catalog() const { return cfg_->catalog; }

  UsageStreams::ReadUsage Reader() {
    return [this](const engine::Principal&) -> absl::StatusOr<engine::UsageView> {
      MutexLock lock(&mu_);
      ++reads_;
      if (!readable_) return absl::UnavailableError("away");
      return usage_;
    };
  }
  void Send(uint64_t n) {
    MutexLock lock(&mu_);
    usage_.used[sent_] += n;
  }
  static StreamLimits Fast() {
    StreamLimits l;
    l.tick = absl::Milliseconds(20);
    l.heartbeat = absl::Milliseconds(300);
    l.per_tenant = 2;
    l.total = 3;
    return l;
  }
  /// Takes what `body` holds, waiting up to 2 s for `needle` to appear.
  static std::string TakeUntil(PushedBody& body, std::string& seen, std::string_view needle) {
    for (int i = 0; i < 200; ++i) {
      bool ended = false;
      seen += body.Take(ended);
      if (Has(seen, needle) || ended) break;
      std::this_thread::sleep_for(milliseconds(10));
    }
    return seen;
  }

  std::shared_ptr<const config::Config> cfg_;
  MeterId sent_ = 0;
  engine::TenantState tenant_{"t1"};
  engine::Principal who_{&tenant_, "key-1", {}};
  Mutex mu_;
  engine::UsageView usage_ ABSL_GUARDED_BY(mu_);
  bool readable_ ABSL_GUARDED_BY(mu_) = true;
  int reads_ ABSL_GUARDED_BY(mu_) = 0;
};

TEST_F(UsageStreamsTest, FirstTheWholeStateThenOnlyWhatChanged) {
  UsageStreams streams(&catalog(), Reader(), Fast());
  auto body = streams.Open(who_, "");
  ASSERT_TRUE(body.ok()) << body.status();
  std::string seen;
  TakeUntil(**body, seen, "\"full\":true");
  EXPECT_TRUE(seen.rfind("retry: 2000\n\n", 0) == 0) << seen;
  EXPECT_TRUE(Has(seen, "\"api_calls\":")) << seen;
  EXPECT_TRUE(Has(seen, "\"messages_sent\":{\"kind\":\"counter\",\"used\":0"));
  seen.clear();
  // Changes while the source cannot be read (many ticks) reach the client
  // as one event with the latest state.
  {
    MutexLock lock(&mu_);
    readable_ = false;
  }
  Send(3);
  std::this_thread::sleep_for(milliseconds(60));
  Send(4);
  std::this_thread::sleep_for(milliseconds(60));
  {
    MutexLock lock(&mu_);
    readable_ = true;
  }
  TakeUntil(**body, seen, "\"used\":7");
  EXPECT_TRUE(Has(seen, "\"full\":false,\"meters\":{\"messages_sent\":{")) << seen;
  EXPECT_FALSE(Has(seen, "api_calls")) << seen;  // unchanged meters are left out
  EXPECT_FALSE(Has(seen, "\"used\":3")) << seen;
}

TEST_F(UsageStreamsTest, AClientResumingFromAKnownIdGetsOnlyWhatChangedSince) {
  StreamLimits l = Fast();
  l.heartbeat = absl::Seconds(30);  // only events in this test
  UsageStreams streams(&catalog(), Reader(), l);
  auto first = streams.Open(who_, "");
  ASSERT_TRUE(first.ok());
  std::string seen;
  TakeUntil(**first, seen, "\"full\":true");
  const size_t at = seen.find("id: ") + 4;
  const std::string id = seen.substr(at, 16);
  // Unchanged since that id: nothing but the preamble.
  auto same = streams.Open(who_, id);
  ASSERT_TRUE(same.ok());
  std::this_thread::sleep_for(milliseconds(150));
  bool ended = false;
  EXPECT_EQ((*same)->Take(ended), "retry: 2000\n\n");
  (*same)->Detach();
  Send(5);
  std::string after;
  TakeUntil(**first, after, "\"used\":5");
  auto resumed = streams.Open(who_, id);
  ASSERT_TRUE(resumed.ok());
  std::string got;
  TakeUntil(**resumed, got, "event: usage");
  EXPECT_TRUE(Has(got, "\"full\":false,\"meters\":{\"messages_sent\"")) << got;
  // An unknown id gets the whole state.
  (*resumed)->Detach();
  auto unknown = streams.Open(who_, "0123456789abcdef");
  ASSERT_TRUE(unknown.ok());
  std::string whole;
  TakeUntil(**unknown, whole, "event: usage");
  EXPECT_TRUE(Has(whole, "\"full\":true")) << whole;
}

TEST_F(UsageStreamsTest, AQuietStreamGetsHeartbeatsAndAFailedReadSendsNothingElse) {
  UsageStreams streams(&catalog(), Reader(), Fast());
  auto body = streams.Open(who_, "");
  ASSERT_TRUE(body.ok());
  std::string seen;
  TakeUntil(**body, seen, "\"full\":true");
  {
    MutexLock lock(&mu_);
    readable_ = false;
  }
  seen.clear();
  TakeUntil(**body, seen, ": heartbeat\n\n");
  EXPECT_EQ(seen, ": heartbeat\n\n");
}

TEST_F(UsageStreamsTest, CapsPerTenantAndInAllAndALeftClientFreesItsPlace) {
  UsageStreams streams(&catalog(), Reader(), Fast());
  auto a = streams.Open(who_, "");
  auto b = streams.Open(who_, "");
  ASSERT_TRUE(a.ok() && b.ok());
  auto c = streams.Open(who_, "");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Has(c.status().ToString(), "2 usage streams")) << c.status();
  engine::TenantState other("t2");
  engine::Principal who2{&other, "key-2", {}};
  auto third = streams.Open(who2, "");
  ASSERT_TRUE(third.ok());
  auto over = streams.Open(who2, "");  // 3 open in all
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
  (*a)->Detach();  // its client left
  auto again = streams.Open(who_, "");
  EXPECT_TRUE(again.ok());
  EXPECT_EQ(streams.open(), 3);
}

TEST_F(UsageStreamsTest, TheAdminsStreamsOfATenantAreCappedApartFromItsOwn) {
  StreamLimits l = Fast();
  l.total = 10;
  UsageStreams streams(&catalog(), Reader(), l);
  engine::Principal admin{&tenant_, "", {}};  // no key: the admin reading as the tenant
  auto a = streams.Open(who_, "");
  auto b = streams.Open(who_, "");
  ASSERT_TRUE(a.ok() && b.ok());
  auto c = streams.Open(admin, "");
  auto d = streams.Open(admin, "");
  EXPECT_TRUE(c.ok() && d.ok()) << "the tenant's streams held the admin out";
  EXPECT_EQ(streams.Open(admin, "").status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(streams.Open(who_, "").status().code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(UsageStreamsTest, AStreamWhoseReplyWasNeverWrittenFreesItsPlace) {
  UsageStreams streams(&catalog(), Reader(), Fast());
  ASSERT_TRUE(streams.Open(who_, "").ok());  // the reply is dropped at once
  ASSERT_TRUE(streams.Open(who_, "").ok());
  auto kept = streams.Open(who_, "");
  EXPECT_TRUE(kept.ok()) << kept.status();
}

TEST_F(UsageStreamsTest, EndAllEndsEveryStreamAndRefusesNewOnes) {
  UsageStreams streams(&catalog(), Reader(), Fast());
  auto body = streams.Open(who_, "");
  ASSERT_TRUE(body.ok());
  streams.EndAll();
  bool ended = false;
  (*body)->Take(ended);
  EXPECT_TRUE(ended);
  EXPECT_EQ(streams.Open(who_, "").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(streams.open(), 0);
}

TEST_F(UsageStreamsTest, ATenantIsReadOncePerTickHoweverManyStreamsItHas) {
  StreamLimits l = Fast();
  l.tick = absl::Milliseconds(100);
  UsageStreams streams(&catalog(), Reader(), l);
  auto a = streams.Open(who_, "");
  auto b = streams.Open(who_, "");
  ASSERT_TRUE(a.ok() && b.ok());
  const auto started = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(milliseconds(1050));
  const auto ticks = (std::chrono::steady_clock::now() - started) / milliseconds(100);
  MutexLock lock(&mu_);
  // One read per tick (ticks never come early), plus one for each opening;
  // two streams would double it. A loaded machine can only tick less.
  EXPECT_GE(reads_, 3);
  EXPECT_LE(reads_, ticks + 3);
}

}  // namespace
}  // namespace quotum::http
