// The engine::Store port's contract (src/quotum/engine/store.h), checked on
// every store: SQLite and PostgreSQL must behave the same.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "quotum/core/billing_period.h"
#include "store_backend.h"
#include "store_records.h"
#include "support/time_literal.h"

namespace quotum::contract {
namespace {

using engine::ApiKeyRecord;
using engine::CommitBatch;
using engine::CounterRow;
using engine::Decision;
using engine::DenyReason;
using engine::EventRecord;
using engine::GaugeRecord;
using engine::GroupRecord;
using engine::IdempotencyRecord;
using engine::KeyRateLimitsRecord;
using engine::LimitOverride;
using engine::MessageRecord;
using engine::ReservationRecord;
using engine::SessionRecord;
using engine::TenantRecord;
using engine::UsageDelta;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

Decision SomeDecision() {
  Decision d;
  d.allowed = true;
  d.requested = 5;
  d.consumed = 5;
  d.remaining = std::numeric_limits<uint64_t>::max();  // unlimited
  d.overage = 0;
  d.period_start = T("2026-11-08T10:00:00Z");
  d.reset_at = T("2026-12-08T10:00:00Z");
  d.meter = "messages_sent";
  return d;
}

// One record of every kind; tenants created out of id order.
CommitBatch FullBatch() {
  CommitBatch b;
  b.tenants = {{"t-b", kOddText, "pro", T("2026-11-08T10:00:00Z"), T("2026-11-08T10:00:01Z")},
               {"t-a", "A", "starter", T("2026-11-01T00:00:00Z"), T("2026-11-08T10:00:02Z")}};
  b.keys = {{"k-b", "t-b", KeyHash('b'), T("2026-11-08T10:00:01Z")},
            {"k-a", "t-a", KeyHash('a'), T("2026-11-08T10:00:02Z")}};
  b.overrides = {{"t-b", "messages_sent", 12345}};
  b.usage = {{"t-b", "messages_sent", "whatsapp", T("2026-11-08T10:00:00Z"),
              T("2026-11-23T12:10:00Z"), 5}};
  Decision denied = SomeDecision();
  denied.allowed = false;
  denied.consumed = 0;
  denied.remaining = 0;
  denied.limit = 1000;
  denied.overage = 3;
  // What an idempotent replay after a restart must answer with as well.
  denied.credits = engine::CreditsUse{2, 0, std::nullopt, 0};
  denied.reservation = engine::ReservationUse{engine::ReservationUse::State::kHeld,
                                              "rsv_00112233445566778899aabb_ai:tokens", 7,
                                              T("2026-11-23T12:00:00.250Z")};
  denied.reason = DenyReason::kQuotaExceeded;
  b.idempotency = {
      {"t-b", kOddText, 0xF000000000000001ULL, SomeDecision(), T("2026-11-23T12:00:00Z")},
      {"t-a", "k2", 7, denied, T("2026-11-23T12:00:01Z")}};
  b.messages = {
      {"m-1", "t-b", "whatsapp", "+15550001", kOddText, "queued", T("2026-11-23T12:00:00Z")}};
  b.sessions = {{"t-b", "s-1", "+1555", "starting", T("2026-11-23T12:00:00Z"),
                 T("2026-11-23T12:00:00Z"), std::nullopt, T("2026-11-23T12:00:00Z"), -1, 0},
                {"t-b", "s-2", "", "working", T("2026-11-20T12:00:00Z"), T("2026-11-23T12:00:00Z"),
                 T("2026-11-21T00:00:00Z"), T("2026-11-23T11:59:00Z"), 3, (uint64_t{1} << 53) - 1}};
  b.groups = {{"t-a", "g-1", kOddText, T("2026-11-23T12:00:00Z")}};
  b.key_rate_limits = {{"k-a", {100, std::nullopt, std::numeric_limits<uint32_t>::max()}}};
  b.gauges = {{"t-a", "subscribers", 77}};
  b.events = {{"t-b",
               "lease_expired",
               "s-1",
               kOddText,
               T("2026-11-23T12:00:00Z"),
               "evt_full_1",
               {{"meter", kOddText, false}, {"limit", "18446744073709551615", true}}}};
  return b;
}

class StoreContractTest : public StoreBackendTest {
 protected:
  void SetUp() override {
    StoreBackendTest::SetUp();
    if (HasFatalFailure()) return;
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    StoreBackendTest::TearDown();
  }
  void Reopen() {
    store_.reset();
    auto store = OpenStore();
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  void Commit(const CommitBatch& b) { ASSERT_EQ(store_->Commit(b), absl::OkStatus()); }
  RecordingSink Load(absl::Time idempotency_since = absl::InfinitePast()) {
    RecordingSink sink;
    EXPECT_EQ(store_->Load(idempotency_since, sink), absl::OkStatus());
    return sink;
  }
  // A tenant (and nothing else) for the tests that need one.
  void AddTenants(std::initializer_list<const char*> ids) {
    CommitBatch b;
    for (const char* id : ids) b.tenants.push_back({id, id, "pro", T("2026-11-08T10:00:00Z"), {}});
    Commit(b);
  }

  std::unique_ptr<engine::Store> store_;
};

TEST_P(StoreContractTest, AnEmptyStoreLoadsNothing) {
  RecordingSink s = Load();
  EXPECT_THAT(s.order, ElementsAre("sizes", "tenants_loaded"));
  EXPECT_THAT(s.usage_order, IsEmpty());
  EXPECT_THAT(s.keys_order, IsEmpty());
  EXPECT_EQ(s.sizes, std::make_pair(size_t{0}, size_t{0}));
  EXPECT_EQ(store_->CheckWritable(), absl::OkStatus());
}

TEST_P(StoreContractTest, CommitThenLoadRoundTripsEveryRecordKindInTheDocumentedOrder) {
  const CommitBatch b = FullBatch();
  Commit(b);
  RecordingSink s = Load();
  EXPECT_THAT(s.order, ElementsAre("sizes", "tenants", "tenants_loaded"));
  EXPECT_THAT(s.usage_order,
              ElementsAre("overrides", "counters", "idempotency", "groups", "gauges"));
  EXPECT_THAT(s.keys_order, ElementsAre("keys", "sessions", "key_rate_limits"));
  EXPECT_EQ(s.sizes, std::make_pair(size_t{2}, size_t{2}));
  EXPECT_EQ(AllFields(s.tenants), AllFields(b.tenants)) << "tenants come in creation order";
  EXPECT_EQ(AllFields(s.keys), AllFields(b.keys)) << "keys come in creation order";
  EXPECT_EQ(AllFields(s.overrides), AllFields(b.overrides));
  EXPECT_EQ(
      AllFields(s.counters),
      AllFields(std::vector<CounterRow>{{"t-b", "messages_sent", T("2026-11-08T10:00:00Z"), 5}}));
  EXPECT_EQ(SortedFields(s.idempotency), SortedFields(b.idempotency));
  EXPECT_EQ(SortedFields(s.sessions), SortedFields(b.sessions));
  EXPECT_EQ(AllFields(s.groups), AllFields(b.groups));
  EXPECT_EQ(AllFields(s.key_rate_limits), AllFields(b.key_rate_limits));
  EXPECT_EQ(AllFields(s.gauges), AllFields(b.gauges));
  auto message = store_->FindMessage("t-b", "m-1");
  ASSERT_TRUE(message.ok()) << message.status();
  ASSERT_TRUE(message->has_value());
  EXPECT_EQ(Fields(**message), Fields(b.messages[0]));
  auto events = store_->Events("t-b", 10);
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ(AllFields(*events), AllFields(b.events));
}

std::vector<std::string> IdsOf(const std::vector<engine::DeliveryRecord>& ds) {
  std::vector<std::string> out;
  for (const auto& d : ds) out.push_back(d.id);
  return out;
}

engine::DeliveryRecord PendingDelivery(const std::string& id, const std::string& event,
                                       absl::Time next_at) {
  engine::DeliveryRecord d;
  d.id = id;
  d.webhook_id = "wh-1";
  d.tenant_id = "t-b";
  d.event_id = event;
  d.state = "pending";
  d.next_at = next_at;
  d.created_at = T("2026-11-23T12:00:00Z");
  return d;
}

TEST_P(StoreContractTest, TheOutboxKeepsOneDeliveryPerWebhookAndEventAndHandsOutEachHeadInTurn) {
  Commit(FullBatch());  // its event evt_full_1 waits to be fanned out
  auto unrelayed = store_->UnrelayedEvents(10);
  ASSERT_TRUE(unrelayed.ok()) << unrelayed.status();
  ASSERT_EQ(unrelayed->size(), 1u);
  EXPECT_EQ(Fields(unrelayed->front()), Fields(FullBatch().events[0]));

  CommitBatch hooks;
  hooks.webhooks = {{"wh-1",
                     "t-b",
                     "http://127.0.0.1:9/x",
                     {"usage.threshold_reached", "*"},
                     "whsec_1",
                     T("2026-11-23T11:00:00Z"),
                     std::nullopt}};
  hooks.events = {
      {"t-b", "usage.threshold_reached", "m", "d", T("2026-11-23T12:00:01Z"), "evt_2", {}}};
  Commit(hooks);
  ASSERT_EQ(store_->Webhooks("t-b")->size(), 1u);
  EXPECT_EQ(store_->Webhooks("t-b")->front().events, hooks.webhooks[0].events);
  EXPECT_EQ(store_->Webhooks("")->size(), 1u);
  EXPECT_TRUE(store_->Webhooks("t-a")->empty());

  const absl::Time t0 = absl::FromUnixMillis(1795000000123);  // milliseconds are kept
  CommitBatch fan;
  fan.deliveries = {PendingDelivery("d-1", "evt_full_1", t0),
                    PendingDelivery("d-2", "evt_2", t0 - absl::Seconds(5))};
  fan.relayed_events = {"evt_full_1", "evt_2"};
  Commit(fan);
  EXPECT_TRUE(store_->UnrelayedEvents(10)->empty());
  CommitBatch again;  // a second relay fanning evt_full_1 out to wh-1 again
  again.deliveries = {PendingDelivery("d-3", "evt_full_1", t0)};
  Commit(again);
  EXPECT_EQ(IdsOf(*store_->Deliveries("wh-1", 10)), (std::vector<std::string>{"d-2", "d-1"}));
  EXPECT_EQ(*store_->OutboxBacklog(), 2u);

  // Only the oldest pending delivery of a webhook, and only once its turn has come.
  EXPECT_TRUE(store_->NextDeliveries(t0 - absl::Milliseconds(1), 10)->empty());
  EXPECT_EQ(IdsOf(*store_->NextDeliveries(t0, 10)), std::vector<std::string>{"d-1"});
  engine::DeliveryRecord done = PendingDelivery("d-1", "evt_full_1", t0);
  done.state = "delivered";
  done.attempts = 2;
  done.last_status = 200;
  done.finished_at = T("2026-11-23T12:00:09Z");
  CommitBatch attempt;
  attempt.deliveries = {done};
  attempt.attempts = {{"d-1", 1, T("2026-11-23T12:00:02Z"), 500, "HTTP 500", 12},
                      {"d-1", 2, T("2026-11-23T12:00:09Z"), 200, "", 3}};
  Commit(attempt);
  EXPECT_EQ(IdsOf(*store_->NextDeliveries(t0, 10)), std::vector<std::string>{"d-2"});
  auto found = store_->FindDelivery("d-1");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->state, "delivered");
  EXPECT_EQ((*found)->attempts, 2);
  EXPECT_EQ((*found)->next_at, t0);
  EXPECT_EQ((*found)->finished_at, done.finished_at);
  auto attempts = store_->Attempts("d-1");
  ASSERT_TRUE(attempts.ok() && attempts->size() == 2u);
  EXPECT_EQ((*attempts)[0].status, 500);
  EXPECT_EQ((*attempts)[1].took_ms, 3);
  EXPECT_EQ(*store_->OutboxBacklog(), 1u);
  EXPECT_EQ((*store_->FindEvent("evt_2"))->type, "usage.threshold_reached");
  EXPECT_FALSE(store_->FindEvent("evt_nope")->has_value());
  EXPECT_FALSE(store_->FindDelivery("d-nope")->has_value());

  hooks.webhooks[0].deleted_at = T("2026-11-24T00:00:00Z");
  hooks.events.clear();
  Commit(hooks);
  EXPECT_TRUE(store_->Webhooks("t-b")->empty());
}

TEST_P(StoreContractTest, AnAlertAndAnEventAreKeptOnceAndAnAlertIsResolvedOnce) {
  Commit(FullBatch());
  const engine::AlertRecord a{"t-b",
                              "messages_sent",
                              T("2026-11-08T10:00:00Z"),
                              T("2026-12-08T10:00:00Z"),
                              80,
                              800,
                              1000,
                              T("2026-11-23T12:00:00Z"),
                              std::nullopt};
  EventRecord e{"t-b", "usage.threshold_reached", "messages_sent", "d", a.at, "evt_alert_80", {}};
  CommitBatch first;
  first.alerts = {a};
  first.events = {e};
  Commit(first);
  CommitBatch again = first;  // a retry, or another instance: the same key and id
  again.alerts[0].value = 999;
  again.events[0].detail = "other";
  Commit(again);
  auto alerts = store_->Alerts("t-b", T("2026-11-01T00:00:00Z"), T("2026-12-01T00:00:00Z"));
  ASSERT_TRUE(alerts.ok()) << alerts.status();
  EXPECT_EQ(AllFields(*alerts), AllFields(std::vector<engine::AlertRecord>{a}));
  auto events = store_->Events("t-b", 10);
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 2u);  // FullBatch's and this one
  EXPECT_EQ(Fields(events->front()), Fields(e));
  // Resolved once: a second resolution keeps the first instant.
  CommitBatch resolve;
  resolve.resolved_alerts = {a};
  resolve.resolved_alerts[0].resolved_at = T("2026-11-24T00:00:00Z");
  Commit(resolve);
  resolve.resolved_alerts[0].resolved_at = T("2026-11-25T00:00:00Z");
  Commit(resolve);
  alerts = store_->Alerts("t-b", T("2026-11-23T12:00:00Z"), T("2026-11-23T12:00:01Z"));
  ASSERT_TRUE(alerts.ok() && alerts->size() == 1u);
  EXPECT_EQ(alerts->front().resolved_at, T("2026-11-24T00:00:00Z"));
  // The range is half-open on `at`, and tenants do not see each other's.
  EXPECT_TRUE(store_->Alerts("t-b", T("2026-11-23T12:00:01Z"), absl::InfiniteFuture())->empty());
  EXPECT_TRUE(store_->Alerts("t-a", absl::InfinitePast(), absl::InfiniteFuture())->empty());
}

TEST_P(StoreContractTest, ABatchWithAnInvalidRowChangesNothing) {
  Commit(FullBatch());
  const RecordingSink before = Load();
  CommitBatch bad;
  bad.tenants = {{"t-new", "N", "pro", T("2026-11-08T10:00:00Z"), {}}};
  bad.usage = {{"t-b", "messages_sent", "whatsapp", T("2026-11-08T10:00:00Z"),
                T("2026-11-23T12:10:00Z"), 1000}};
  bad.overrides = {{"t-b", "messages_sent", std::nullopt}};
  bad.sessions = {{"t-b", "s-9", "", "starting", {}, {}, std::nullopt, {}, -1, 0}};
  bad.deleted_groups = {{"t-a", "g-1"}};
  bad.gauges = {{"t-a", "subscribers", 1}};
  bad.events = {{"t-b", "x", "y", "z", T("2026-11-23T13:00:00Z")}};
  bad.keys = {{"k-ghost", "no-such-tenant", KeyHash('g'), {}}};  // violates the foreign key
  EXPECT_FALSE(store_->Commit(bad).ok());
  CommitBatch duplicate;
  duplicate.usage = bad.usage;
  duplicate.tenants = {{"t-a", "again", "pro", {}, {}}};  // an existing id
  EXPECT_FALSE(store_->Commit(duplicate).ok());

  const RecordingSink after = Load();
  EXPECT_EQ(AllFields(after.tenants), AllFields(before.tenants));
  EXPECT_EQ(AllFields(after.keys), AllFields(before.keys));
  EXPECT_EQ(AllFields(after.overrides), AllFields(before.overrides));
  EXPECT_EQ(AllFields(after.counters), AllFields(before.counters));
  EXPECT_EQ(SortedFields(after.sessions), SortedFields(before.sessions));
  EXPECT_EQ(AllFields(after.groups), AllFields(before.groups));
  EXPECT_EQ(AllFields(after.gauges), AllFields(before.gauges));
  EXPECT_EQ(store_->Events("t-b", 10)->size(), 1u);
  EXPECT_THAT(*store_->Channels("t-b", "messages_sent", T("2026-11-23T00:00:00Z"),
                                T("2026-11-24T00:00:00Z")),
              ElementsAre(Pair("whatsapp", 5u)));
  // The store is still usable: the same batch without the bad key commits.
  bad.keys.clear();
  EXPECT_EQ(store_->Commit(bad), absl::OkStatus());
  EXPECT_EQ(Load().tenants.size(), 3u);
}

TEST_P(StoreContractTest, UsageAccumulatesIntoCountersDailyAndHourlyRows) {
  AddTenants({"u", "other"});
  const absl::Time p1 = T("2026-11-08T10:00:00Z"), p0 = T("2026-10-08T10:00:00Z");
  CommitBatch first;
  first.usage = {{"u", "sent", "whatsapp", p1, T("2026-11-23T12:10:00Z"), 3},
                 {"u", "sent", "sms", p1, T("2026-11-23T12:50:00Z"), 4},
                 {"u", "sent", "whatsapp", p1, T("2026-11-23T13:05:00Z"), 5},
                 {"u", "received", "", p1, T("2026-11-24T00:30:00Z"), 7},
                 {"u", "sent", "whatsapp", p0, T("2026-10-20T08:00:00Z"), 100},
                 {"other", "sent", "whatsapp", p1, T("2026-11-23T12:10:00Z"), 1000}};
  Commit(first);
  CommitBatch second;
  second.usage = {{"u", "sent", "whatsapp", p1, T("2026-11-23T12:20:00Z"), 10},
                  {"u", "sent", "sms", p1, T("2026-11-23T23:59:59Z"), 1},
                  {"u", "sent", "sms", p1, T("2026-11-23T23:00:00Z"), 2}};
  Commit(second);

  EXPECT_EQ(SortedFields(*store_->Periods("u", p1)),
            SortedFields(std::vector<CounterRow>{{"u", "received", p1, 7}, {"u", "sent", p1, 25}}));
  EXPECT_EQ(store_->Periods("u", p0)->size(), 3u);
  EXPECT_THAT(*store_->Periods("u", p1 + absl::Seconds(1)), IsEmpty());

  const absl::CivilDay nov23(2026, 11, 23), nov24(2026, 11, 24), oct20(2026, 10, 20);
  auto daily = store_->Daily("u", nov23, nov24);
  ASSERT_TRUE(daily.ok()) << daily.status();
  std::vector<std::tuple<absl::CivilDay, std::string, uint64_t>> days;
  for (const auto& d : *daily) days.emplace_back(d.day, d.meter, d.value);
  EXPECT_THAT(days, UnorderedElementsAre(std::make_tuple(nov23, "sent", 25u),
                                         std::make_tuple(nov24, "received", 7u)));
  EXPECT_EQ(store_->Daily("u", oct20, oct20)->size(), 1u);
  EXPECT_EQ(store_->Daily("u", oct20, oct20)->front().value, 100u);
  EXPECT_THAT(*store_->Daily("u", nov23 + 2, nov23 + 9), IsEmpty());

  // Hourly rows: the bucket holding `from` counts whole; `to` is exclusive.
  EXPECT_THAT(*store_->Channels("u", "sent", T("2026-11-23T12:00:00Z"), T("2026-11-23T13:00:00Z")),
              ElementsAre(Pair("sms", 4u), Pair("whatsapp", 13u)));
  EXPECT_THAT(*store_->Channels("u", "sent", T("2026-11-23T12:30:00Z"), T("2026-11-23T13:00:00Z")),
              ElementsAre(Pair("sms", 4u), Pair("whatsapp", 13u)));
  EXPECT_THAT(*store_->Channels("u", "sent", T("2026-11-23T00:00:00Z"), T("2026-11-24T00:00:00Z")),
              ElementsAre(Pair("sms", 7u), Pair("whatsapp", 18u)));
  EXPECT_THAT(
      *store_->Channels("u", "received", T("2026-11-24T00:00:00Z"), T("2026-11-25T00:00:00Z")),
      ElementsAre(Pair("", 7u)));

  EXPECT_EQ(SortedFields(Load().counters),
            SortedFields(std::vector<CounterRow>{{"other", "sent", p1, 1000},
                                                 {"u", "received", p1, 7},
                                                 {"u", "sent", p0, 100},
                                                 {"u", "sent", p1, 25}}));
}

// Units given back (a failed message's charge): each lowers its counter, hour
// and day, several of one row in one batch add up, no row goes below 0 and
// none is made.
TEST_P(StoreContractTest, UnitsGivenBackLowerTheirRowsNeverBelowZeroAndMakeNone) {
  AddTenants({"u"});
  const absl::Time p1 = T("2026-11-08T10:00:00Z");
  CommitBatch charged;
  charged.usage = {{"u", "sent", "whatsapp", p1, T("2026-11-23T12:10:00Z"), 3},
                   {"u", "sent", "sms", p1, T("2026-11-23T12:10:00Z"), 4}};
  Commit(charged);
  CommitBatch given;
  given.given_back = {{"u", "sent", "whatsapp", p1, T("2026-11-23T12:40:00Z"), 1},
                      {"u", "sent", "whatsapp", p1, T("2026-11-23T12:20:00Z"), 1},
                      {"u", "sent", "sms", p1, T("2026-11-23T12:10:00Z"), 9},
                      {"u", "received", "", p1, T("2026-11-23T12:10:00Z"), 1}};
  Commit(given);
  EXPECT_EQ(SortedFields(*store_->Periods("u", p1)),
            SortedFields(std::vector<CounterRow>{{"u", "sent", p1, 0}}));
  EXPECT_THAT(*store_->Channels("u", "sent", T("2026-11-23T12:00:00Z"), T("2026-11-23T13:00:00Z")),
              ElementsAre(Pair("sms", 0u), Pair("whatsapp", 1u)));
  const absl::CivilDay nov23(2026, 11, 23);
  std::vector<std::tuple<std::string, uint64_t>> days;
  auto daily = store_->Daily("u", nov23, nov23);
  ASSERT_TRUE(daily.ok()) << daily.status();
  for (const auto& d : *daily) days.emplace_back(d.meter, d.value);
  EXPECT_THAT(days, UnorderedElementsAre(std::make_tuple("sent", 1u)));
}

// The reconciliation's repair: a counter set to a value, then the batch's
// usage added on top; the hour and day buckets are left alone.
TEST_P(StoreContractTest, ACounterSetReplacesTheValueBeforeTheBatchsUsageIsAdded) {
  AddTenants({"u"});
  const absl::Time p1 = T("2026-11-08T10:00:00Z");
  CommitBatch first;
  first.usage = {{"u", "sent", "whatsapp", p1, T("2026-11-23T12:10:00Z"), 30}};
  Commit(first);
  CommitBatch repair;
  repair.counter_sets = {{"u", "sent", p1, 100}, {"u", "received", p1, 9}};
  repair.usage = {{"u", "sent", "whatsapp", p1, T("2026-11-23T12:20:00Z"), 5}};
  Commit(repair);
  EXPECT_EQ(
      SortedFields(*store_->Periods("u", p1)),
      SortedFields(std::vector<CounterRow>{{"u", "received", p1, 9}, {"u", "sent", p1, 105}}));
  auto daily = store_->Daily("u", absl::CivilDay(2026, 11, 23), absl::CivilDay(2026, 11, 23));
  ASSERT_TRUE(daily.ok()) << daily.status();
  ASSERT_EQ(daily->size(), 1u);
  EXPECT_EQ(daily->front().value, 35u) << "only usage reaches the day buckets";
  CommitBatch lower;
  lower.counter_sets = {{"u", "sent", p1, 7}};
  Commit(lower);
  EXPECT_EQ(SortedFields(*store_->Periods("u", p1)),
            SortedFields(std::vector<CounterRow>{{"u", "received", p1, 9}, {"u", "sent", p1, 7}}));
}

// A close moves a period's counters into usage_aggregates (with its plan and
// limits): Periods reads them the same, OpenPeriods and start-up no longer
// see them, a second close changes nothing, and a row that arrives after
// the close (a late drain) is folded in by the next one.
TEST_P(StoreContractTest, AClosedPeriodMovesIntoTheAggregatesOnceAndFoldsLateRows) {
  AddTenants({"u"});
  const absl::Time p1 = T("2026-10-08T10:00:00Z"), p2 = T("2026-11-08T10:00:00Z");
  CommitBatch usage;
  usage.usage = {{"u", "sent", "whatsapp", p1, T("2026-10-23T12:10:00Z"), 30},
                 {"u", "credits", "whatsapp", p1, T("2026-10-23T12:10:00Z"), 90},
                 {"u", "sent", "whatsapp", p2, T("2026-11-23T12:10:00Z"), 4}};
  Commit(usage);
  auto open = store_->OpenPeriods(p2 + absl::Seconds(1));
  ASSERT_TRUE(open.ok()) << open.status();
  EXPECT_EQ(*open, (std::vector<std::pair<std::string, absl::Time>>{{"u", p1}, {"u", p2}}));
  const std::vector<CounterRow> all{
      {"u", "credits", p1, 90}, {"u", "sent", p1, 30}, {"u", "sent", p2, 4}};
  CommitBatch close;
  close.period_closes = {{"u", {p1, p2, 0}, "pro", {{"sent", 100}}, T("2026-11-08T11:05:00Z")}};
  Commit(close);
  EXPECT_EQ(SortedFields(*store_->Periods("u", p1)), SortedFields(all));
  EXPECT_EQ(*store_->OpenPeriods(p2 + absl::Seconds(1)),
            (std::vector<std::pair<std::string, absl::Time>>{{"u", p2}}));
  Commit(close);  // again: nothing left to move
  EXPECT_EQ(SortedFields(*store_->Periods("u", p1)), SortedFields(all));
  CommitBatch late;
  late.usage = {{"u", "sent", "whatsapp", p1, T("2026-11-08T09:59:00Z"), 2}};
  Commit(late);
  EXPECT_EQ(SortedFields(*store_->Periods("u", p1)),
            SortedFields(std::vector<CounterRow>{
                {"u", "credits", p1, 90}, {"u", "sent", p1, 32}, {"u", "sent", p2, 4}}));
  Commit(close);
  EXPECT_EQ(SortedFields(*store_->Periods("u", p1)),
            SortedFields(std::vector<CounterRow>{
                {"u", "credits", p1, 90}, {"u", "sent", p1, 32}, {"u", "sent", p2, 4}}));
  EXPECT_EQ(store_->OpenPeriods(p2 + absl::Seconds(1))->size(), 1u);
  EXPECT_EQ(ExecSql("DELETE FROM usage_aggregates WHERE tenant_id='u' AND meter='sent' AND "
                    "limit_value=100 AND plan='pro' AND value=32"),
            absl::OkStatus());
  EXPECT_EQ(SortedFields(*store_->Periods("u", p1)),
            SortedFields(std::vector<CounterRow>{{"u", "credits", p1, 90}, {"u", "sent", p2, 4}}))
      << "the closed row carried the plan and its limit";
}

// The report reads: hourly and daily rows per meter and channel, in order.
TEST_P(StoreContractTest, HourlyAndDailyByChannelRowsAreKeptPerMeterAndChannel) {
  AddTenants({"u", "other"});
  const absl::Time p1 = T("2026-11-08T10:00:00Z");
  CommitBatch b;
  b.usage = {{"u", "sent", "whatsapp", p1, T("2026-11-23T12:10:00Z"), 3},
             {"u", "sent", "sms", p1, T("2026-11-23T12:50:00Z"), 4},
             {"u", "sent", "whatsapp", p1, T("2026-11-23T12:20:00Z"), 10},
             {"u", "sent", "whatsapp", p1, T("2026-11-23T13:05:00Z"), 5},
             {"u", "received", "", p1, T("2026-11-24T00:30:00Z"), 7},
             {"u", "sent", "sms", p1, T("2026-11-23T23:59:59Z"), 1},
             {"other", "sent", "whatsapp", p1, T("2026-11-23T12:10:00Z"), 1000}};
  Commit(b);

  auto hours = store_->Hourly("u", T("2026-11-23T00:00:00Z"), T("2026-11-24T00:00:00Z"));
  ASSERT_TRUE(hours.ok()) << hours.status();
  std::vector<std::tuple<absl::Time, std::string, std::string, uint64_t>> got;
  for (const auto& h : *hours) got.emplace_back(h.hour, h.meter, h.channel, h.value);
  EXPECT_THAT(got, ElementsAre(std::make_tuple(T("2026-11-23T12:00:00Z"), "sent", "sms", 4u),
                               std::make_tuple(T("2026-11-23T12:00:00Z"), "sent", "whatsapp", 13u),
                               std::make_tuple(T("2026-11-23T13:00:00Z"), "sent", "whatsapp", 5u),
                               std::make_tuple(T("2026-11-23T23:00:00Z"), "sent", "sms", 1u)));
  // Hours starting in [from, to): the 12:00 bucket does not start at or after 12:30.
  EXPECT_EQ(store_->Hourly("u", T("2026-11-23T12:30:00Z"), T("2026-11-23T23:00:00Z"))->size(), 1u);
  EXPECT_THAT(*store_->Hourly("u", T("2026-11-25T00:00:00Z"), T("2026-11-26T00:00:00Z")),
              IsEmpty());

  const absl::CivilDay nov23(2026, 11, 23), nov24(2026, 11, 24);
  auto days = store_->DailyByChannel("u", nov23, nov24);
  ASSERT_TRUE(days.ok()) << days.status();
  std::vector<std::tuple<absl::CivilDay, std::string, std::string, uint64_t>> daily;
  for (const auto& d : *days) daily.emplace_back(d.day, d.meter, d.channel, d.value);
  EXPECT_THAT(daily, ElementsAre(std::make_tuple(nov23, "sent", "sms", 5u),
                                 std::make_tuple(nov23, "sent", "whatsapp", 18u),
                                 std::make_tuple(nov24, "received", "", 7u)));
  EXPECT_EQ(store_->DailyByChannel("u", nov24, nov24)->size(), 1u);
  EXPECT_THAT(*store_->DailyByChannel("u", nov23 - 5, nov23 - 1), IsEmpty());
}

TEST_P(StoreContractTest, TenantIdsListsEveryTenantInIdOrder) {
  EXPECT_THAT(*store_->TenantIds(), IsEmpty());
  AddTenants({"zeta", "alpha", "mid"});
  EXPECT_THAT(*store_->TenantIds(), ElementsAre("alpha", "mid", "zeta"));
}

TEST_P(StoreContractTest, LeaseRowsAreOneTenantsSessionsGroupsAndGauges) {
  AddTenants({"u", "v"});
  const absl::Time at = T("2026-11-23T12:10:00Z");
  CommitBatch b;
  b.sessions = {{"u", "s2", "+1555", "working", at, at, at, at, -1, 0},
                {"u", "s1", "", "starting", at, at, std::nullopt, at, -1, 0},
                {"v", "s9", "", "starting", at, at, std::nullopt, at, -1, 0}};
  b.groups = {{"u", "g1", "Sales", at}, {"v", "g9", "Other", at}};
  b.gauges = {{"u", "subscribers", 42}, {"v", "subscribers", 7}};
  Commit(b);
  absl::StatusOr<engine::TenantLeaseRows> rows = store_->LeaseRows("u");
  ASSERT_TRUE(rows.ok()) << rows.status();
  std::vector<std::tuple<std::string, std::string, std::optional<absl::Time>>> sessions;
  for (const SessionRecord& s : rows->sessions) {
    EXPECT_EQ(s.tenant_id, "u");
    sessions.emplace_back(s.id, s.status, s.first_working_at);
  }
  EXPECT_THAT(sessions, ElementsAre(std::make_tuple("s1", "starting", std::nullopt),
                                    std::make_tuple("s2", "working", at)));
  ASSERT_EQ(rows->groups.size(), 1u);
  EXPECT_EQ(rows->groups[0].name, "Sales");
  ASSERT_EQ(rows->gauges.size(), 1u);
  EXPECT_EQ(rows->gauges[0].value, 42u);
  EXPECT_THAT(store_->LeaseRows("nobody")->sessions, IsEmpty());
}

TEST_P(StoreContractTest, FailOpenChargesWaitInOrderUntilReconciled) {
  AddTenants({"u"});
  const absl::Time p0 = T("2026-11-08T10:00:00Z"), p1 = T("2026-12-08T10:00:00Z");
  const absl::Time at = T("2026-11-23T12:10:00Z");
  CommitBatch b;
  b.fail_open = {{"i/2", "u", "sent", "whatsapp", p0, p1, at, at + absl::Seconds(1), 5, true},
                 {"i/1", "u", "api_calls", "", p0, p1, at, at, 0, true},
                 {"i/3", "u", "sent", "", p0, p1, at, at, 9007199254740991u, false}};
  Commit(b);
  auto fields = [](const std::vector<engine::FailOpenCharge>& v) {
    std::vector<std::tuple<std::string, std::string, std::string, std::string, absl::Time,
                           absl::Time, absl::Time, absl::Time, uint64_t, bool>>
        out;
    for (const auto& f : v) {
      out.emplace_back(f.id, f.tenant_id, f.meter, f.channel, f.period_start, f.period_end, f.at,
                       f.now, f.units, f.api_call);
    }
    return out;
  };
  EXPECT_EQ(fields(*store_->PendingFailOpen(10)), fields(b.fail_open));  // in commit order
  EXPECT_EQ(store_->PendingFailOpen(1)->size(), 1u);
  // They are not usage: no counter moved.
  EXPECT_THAT(*store_->Periods("u", p0), IsEmpty());
  CommitBatch done;
  done.reconciled_fail_open = {"i/2", "i/3"};
  Commit(done);
  auto left = store_->PendingFailOpen(10);
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ(left->front().id, "i/1");
}

TEST_P(StoreContractTest, AnEntryDeliveredTwiceIsAppliedOnce) {
  AddTenants({"u"});
  const absl::Time p1 = T("2026-11-08T10:00:00Z"), at = T("2026-11-23T12:10:00Z");
  auto batch = [&](std::vector<std::string> entries, uint64_t units) {
    CommitBatch b;
    b.usage = {{"u", "sent", "whatsapp", p1, at, units}};
    b.applied_entries = std::move(entries);
    return b;
  };
  ASSERT_TRUE(store_->Commit(batch({"u/1-0", "u/1-1"}, 5)).ok());
  // Once one id of a batch is known, the whole batch is refused and changes nothing.
  EXPECT_EQ(store_->Commit(batch({"u/2-0", "u/1-1"}, 7)).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->Commit(batch({"u/1-0"}, 7)).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->Commit(batch({"u/3-0", "u/3-0"}, 7)).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->Periods("u", p1)->front().value, 5u);
  // The refused batch's new ids were not recorded: they apply on their own.
  ASSERT_TRUE(store_->Commit(batch({"u/2-0"}, 11)).ok());
  ASSERT_TRUE(store_->Commit(batch({"u/3-0"}, 13)).ok());
  EXPECT_EQ(store_->Periods("u", p1)->front().value, 29u);
  // Batches without ids are never refused for them.
  ASSERT_TRUE(store_->Commit(batch({}, 1)).ok());
  EXPECT_EQ(store_->Periods("u", p1)->front().value, 30u);
}

TEST_P(StoreContractTest, CounterRowsOfOneTenantArriveTogether) {
  AddTenants({"c", "a", "b"});
  const absl::Time p1 = T("2026-11-08T10:00:00Z"), p0 = T("2026-10-08T10:00:00Z");
  for (const char* t : {"c", "a", "b", "a", "c", "b"}) {
    CommitBatch b;
    b.usage = {{t, absl::StrCat("m", t), "", p1, T("2026-11-23T12:00:00Z"), 1},
               {t, "shared", "", p0, T("2026-10-23T12:00:00Z"), 1}};
    Commit(b);
  }
  std::vector<std::string> tenants_met;
  for (const auto& c : Load().counters) {
    if (tenants_met.empty() || tenants_met.back() != c.tenant_id) {
      tenants_met.push_back(c.tenant_id);
    }
  }
  EXPECT_THAT(tenants_met, UnorderedElementsAre("a", "b", "c")) << "each tenant's rows together";
}

TEST_P(StoreContractTest, EventsAreNewestFirstPerTenantUpToTheLimit) {
  AddTenants({"a", "b"});
  CommitBatch first;
  first.events = {{"a", "e", "1", "", T("2026-11-23T12:00:00Z")},
                  {"b", "e", "b1", "", T("2026-11-23T12:00:00Z")},
                  {"a", "e", "2", "", T("2026-11-23T12:00:00Z")}};
  Commit(first);
  CommitBatch second;
  second.events = {{"a", "e", "3", "", T("2026-11-23T11:00:00Z")}};  // older `at`, newer record
  Commit(second);
  auto subjects = [&](const std::string& tenant, size_t limit) {
    std::vector<std::string> out;
    auto events = store_->Events(tenant, limit);
    EXPECT_TRUE(events.ok()) << events.status();
    for (const auto& e : events.value_or(std::vector<EventRecord>{})) out.push_back(e.subject);
    return out;
  };
  EXPECT_THAT(subjects("a", 10), ElementsAre("3", "2", "1"));
  EXPECT_THAT(subjects("a", 2), ElementsAre("3", "2"));
  EXPECT_THAT(subjects("b", 10), ElementsAre("b1"));
  EXPECT_THAT(subjects("nobody", 10), IsEmpty());
}

TEST_P(StoreContractTest, FindMessageAnswersOnlyTheOwningTenant) {
  AddTenants({"a", "b"});
  CommitBatch b;
  b.messages = {{"m-1", "a", "whatsapp", "+1", "hi", "queued", T("2026-11-23T12:00:00Z")}};
  Commit(b);
  auto found = store_->FindMessage("a", "m-1");
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ(Fields(**found), Fields(b.messages[0]));
  EXPECT_FALSE(store_->FindMessage("b", "m-1")->has_value());
  EXPECT_FALSE(store_->FindMessage("a", "m-2")->has_value());
}

TEST_P(StoreContractTest, IdempotencyRecordsOlderThanTheCutOffAreNotLoaded) {
  AddTenants({"a"});
  const absl::Time now = T("2026-11-23T12:00:00Z");
  CommitBatch b;
  b.idempotency = {{"a", "old", 1, SomeDecision(), now - absl::Hours(25)},
                   {"a", "edge", 2, SomeDecision(), now - absl::Hours(24)},
                   {"a", "new", 3, SomeDecision(), now}};
  Commit(b);
  std::vector<std::string> keys;
  for (const auto& r : Load(now - absl::Hours(24)).idempotency) keys.push_back(r.key);
  EXPECT_THAT(keys, UnorderedElementsAre("edge", "new"));
  // A record committed again under the same key replaces the first.
  CommitBatch again;
  again.idempotency = {{"a", "new", 4, SomeDecision(), now}};
  Commit(again);
  std::vector<std::pair<std::string, uint64_t>> fingerprints;
  for (const auto& r : Load(now - absl::Hours(24)).idempotency) {
    fingerprints.emplace_back(r.key, r.fingerprint);
  }
  EXPECT_THAT(fingerprints, UnorderedElementsAre(Pair("edge", 2u), Pair("new", 4u)));
}

TEST_P(StoreContractTest, OverridesAreSetReplacedAndCleared) {
  AddTenants({"a", "b"});
  CommitBatch first;
  first.overrides = {{"a", "sent", 5}, {"a", "received", 6}, {"b", "sent", 7}};
  Commit(first);
  CommitBatch second;
  second.overrides = {{"a", "sent", std::nullopt},  // cleared
                      {"b", "sent", 8},             // replaced
                      {"a", "x", 1},                // set then cleared in one batch
                      {"a", "x", std::nullopt},
                      {"a", "y", std::nullopt},  // cleared (absent) then set
                      {"a", "y", 2}};
  Commit(second);
  EXPECT_EQ(SortedFields(Load().overrides),
            SortedFields(
                std::vector<LimitOverride>{{"a", "received", 6}, {"a", "y", 2}, {"b", "sent", 8}}));
}

TEST_P(StoreContractTest, SessionsGroupsKeyLimitsAndGaugesAreUpsertedAndDeleted) {
  Commit(FullBatch());
  SessionRecord s1 = FullBatch().sessions[0];
  s1.status = "working";
  s1.first_working_at = T("2026-11-23T12:05:00Z");
  s1.warmup_day = 4;
  s1.warmup_count = 9;
  SessionRecord s3 = s1;
  s3.id = "s-3";
  CommitBatch second;
  second.sessions = {FullBatch().sessions[0], s1, s3};  // the last upsert of s-1 wins
  second.deleted_sessions = {{"t-b", "s-2"}, {"t-b", "s-3"}};
  second.groups = {{"t-a", "g-2", "two", T("2026-11-23T12:00:00Z")}};
  second.deleted_groups = {{"t-a", "g-1"}};
  second.key_rate_limits = {{"k-a", {1, 2, 3}}, {"k-b", {std::nullopt, 5, std::nullopt}}};
  second.gauges = {
      {"t-a", "subscribers", 78}, {"t-a", "subscribers", 80}, {"t-b", "subscribers", 0}};
  Commit(second);
  RecordingSink s = Load();
  EXPECT_EQ(AllFields(s.sessions), AllFields(std::vector<SessionRecord>{s1}));
  EXPECT_EQ(AllFields(s.groups), AllFields(second.groups));
  EXPECT_EQ(SortedFields(s.key_rate_limits), SortedFields(second.key_rate_limits));
  EXPECT_EQ(SortedFields(s.gauges), SortedFields(std::vector<GaugeRecord>{
                                        {"t-a", "subscribers", 80}, {"t-b", "subscribers", 0}}));
}

// Reservations are inserted, ended by (tenant, id), and loaded last; a new
// one takes its tenant's expired ones out (another tenant's stay).
TEST_P(StoreContractTest, ReservationsAreKeptUntilEndedOrPurgedOnceExpired) {
  Commit(FullBatch());
  const absl::Time t0 = T("2026-11-23T12:00:00.250Z");
  CommitBatch first;
  first.reservations = {{"t-a", "rsv-1", "ai_tokens", 600, t0, t0 + absl::Seconds(30)},
                        {"t-a", "rsv-2", "ai_tokens", 5, t0, t0 + absl::Minutes(5)},
                        {"t-b", "rsv-1", "credits", 7, t0, t0 + absl::Seconds(30)}};
  Commit(first);
  RecordingSink s = Load();
  EXPECT_EQ(s.usage_order.back(), "reservations");
  EXPECT_EQ(SortedFields(s.reservations), SortedFields(first.reservations));
  CommitBatch second;
  second.ended_reservations = {{"t-a", "rsv-2"}, {"t-a", "nobody"}};
  second.reservations = {
      {"t-a", "rsv-3", "ai_tokens", 9, t0 + absl::Minutes(1), t0 + absl::Minutes(2)},
      {"t-a", "rsv-4", "ai_tokens", 1, t0 + absl::Minutes(1), t0 + absl::Minutes(2)}};
  second.ended_reservations.emplace_back("t-a", "rsv-4");  // made and ended in one batch
  Commit(second);
  s = Load();
  // t-a's rsv-1 expired before rsv-3 was made; t-b's is another tenant's.
  EXPECT_EQ(SortedFields(s.reservations), SortedFields(std::vector<ReservationRecord>{
                                              first.reservations[2], second.reservations[0]}));
}

TEST_P(StoreContractTest, RevokedKeysLoadRevoked) {
  Commit(FullBatch());
  CommitBatch b;
  b.keys = {{"k-new", "t-a", KeyHash('n'), T("2026-11-23T12:00:00Z")}};
  b.revoked_key_ids = {"k-b", "k-new", "no-such-key"};
  Commit(b);
  std::vector<std::pair<std::string, bool>> keys;
  for (const auto& k : Load().keys) keys.emplace_back(k.key_id, k.revoked);
  EXPECT_THAT(keys, ElementsAre(Pair("k-b", true), Pair("k-a", false), Pair("k-new", true)));
}

TEST_P(StoreContractTest, ReopeningKeepsEverything) {
  Commit(FullBatch());
  const RecordingSink before = Load();
  Reopen();
  Reopen();  // opening an up-to-date store twice changes nothing either
  const RecordingSink after = Load();
  EXPECT_EQ(after.order, before.order);
  EXPECT_EQ(after.usage_order, before.usage_order);
  EXPECT_EQ(after.keys_order, before.keys_order);
  EXPECT_EQ(AllFields(after.tenants), AllFields(before.tenants));
  EXPECT_EQ(AllFields(after.keys), AllFields(before.keys));
  EXPECT_EQ(AllFields(after.overrides), AllFields(before.overrides));
  EXPECT_EQ(AllFields(after.counters), AllFields(before.counters));
  EXPECT_EQ(SortedFields(after.idempotency), SortedFields(before.idempotency));
  EXPECT_EQ(SortedFields(after.sessions), SortedFields(before.sessions));
  EXPECT_EQ(AllFields(after.groups), AllFields(before.groups));
  EXPECT_EQ(AllFields(after.key_rate_limits), AllFields(before.key_rate_limits));
  EXPECT_EQ(AllFields(after.gauges), AllFields(before.gauges));
  EXPECT_TRUE(store_->FindMessage("t-b", "m-1")->has_value());
  EXPECT_EQ(store_->Events("t-b", 10)->size(), 1u);
}

TEST_P(StoreContractTest, ReadsRunConcurrentlyWithCommitsAndSeeOnlyCommittedData) {
  AddTenants({"a"});
  const absl::Time p1 = T("2026-11-08T10:00:00Z");
  constexpr int kCommits = 100;
  std::atomic<bool> done{false};
  std::atomic<int> failures{0}, reads{0};
  auto reader = [&] {
    uint64_t last = 0;
    while (!done.load()) {
      auto rows = store_->Periods("a", p1);
      auto daily = store_->Daily("a", absl::CivilDay(2026, 11, 23), absl::CivilDay(2026, 11, 23));
      if (!rows.ok() || !daily.ok() || !store_->CheckWritable().ok()) ++failures;
      // Each commit adds 1 to the counter and 1 to the day: never a torn batch.
      const uint64_t v = rows.ok() && !rows->empty() ? rows->front().value : 0;
      if (v < last) ++failures;
      last = v;
      ++reads;
    }
  };
  std::vector<std::thread> readers;
  for (int i = 0; i < 3; ++i) readers.emplace_back(reader);
  for (int i = 0; i < kCommits; ++i) {
    CommitBatch b;
    b.usage = {{"a", "sent", "", p1, T("2026-11-23T12:00:00Z"), 1}};
    b.events = {{"a", "tick", absl::StrCat(i), "", T("2026-11-23T12:00:00Z")}};
    absl::Status committed = store_->Commit(b);
    if (!committed.ok()) {
      ADD_FAILURE() << committed;
      break;
    }
  }
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(store_->Periods("a", p1)->front().value, uint64_t{kCommits});
  EXPECT_EQ(store_->Events("a", 1000)->size(), size_t{kCommits});
}

QUOTUM_FOR_EVERY_STORE(StoreContractTest);

}  // namespace
}  // namespace quotum::contract
