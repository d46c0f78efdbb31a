// The engine's contract-test fixture: an Engine over each store (SQLite in
// a temp dir, a real PostgreSQL) with the example config and a fake clock.
#pragma once

#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include "gtest/gtest.h"
#include "quotum/base/mutex.h"
#include "quotum/config/config.h"
#include "quotum/engine/engine.h"
#include "store_backend.h"
#include "support/time_literal.h"

namespace quotum::engine {

// Wraps a store; Commit fails while `fail` is set.
class FlakyStore final : public Store {
 public:
  explicit FlakyStore(Store* inner) : inner_(inner) {}
  std::atomic<bool> fail{false};
  /// While set, Commit waits (a commit still in flight), then goes on;
  /// `holding` counts the commits waiting so.
  std::atomic<bool> hold{false};
  std::atomic<int> holding{0};
  /// The next this many commits fail (after any hold).
  std::atomic<int> fail_next{0};
  /// Set before the engine starts: the store is Shared() when the inner one
  /// is, and the engine reads keys and tenants through it (scale-out's rules).
  bool shared = false;
  absl::Status Load(absl::Time since, SnapshotSink& sink) override {
    return inner_->Load(since, sink);
  }
  absl::Status Commit(const CommitBatch& b) override {
    if (hold.load()) {
      holding.fetch_add(1);
      while (hold.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      holding.fetch_sub(1);
    }
    if (fail.load()) return absl::InternalError("disk on fire");
    for (int n = fail_next.load(); n > 0;) {
      if (fail_next.compare_exchange_weak(n, n - 1)) return absl::InternalError("disk on fire");
    }
    return inner_->Commit(b);
  }
  bool Shared() const override { return shared && inner_->Shared(); }
  absl::StatusOr<std::optional<KeySnapshot>> FindKey(const std::string& hash) override {
    return inner_->FindKey(hash);
  }
  absl::StatusOr<std::optional<KeySnapshot>> FindKeyById(const std::string& key_id) override {
    return inner_->FindKeyById(key_id);
  }
  absl::StatusOr<std::optional<KeySnapshot>> FindTenant(const std::string& id) override {
    return inner_->FindTenant(id);
  }
  absl::StatusOr<std::vector<KeySnapshot>> AllTenants() override { return inner_->AllTenants(); }
  absl::StatusOr<std::vector<DailyRow>> Daily(const std::string& t, absl::CivilDay f,
                                              absl::CivilDay to) override {
    return inner_->Daily(t, f, to);
  }
  absl::StatusOr<std::vector<HourlyRow>> Hourly(const std::string& t, absl::Time f,
                                                absl::Time to) override {
    return inner_->Hourly(t, f, to);
  }
  absl::StatusOr<std::vector<DailyChannelRow>> DailyByChannel(const std::string& t,
                                                              absl::CivilDay f,
                                                              absl::CivilDay to) override {
    return inner_->DailyByChannel(t, f, to);
  }
  absl::StatusOr<std::vector<CounterRow>> Periods(const std::string& t, absl::Time s) override {
    return inner_->Periods(t, s);
  }
  absl::StatusOr<std::vector<std::pair<std::string, uint64_t>>> Channels(const std::string& t,
                                                                         const std::string& m,
                                                                         absl::Time f,
                                                                         absl::Time to) override {
    return inner_->Channels(t, m, f, to);
  }
  absl::StatusOr<std::optional<MessageRecord>> FindMessage(const std::string& t,
                                                           const std::string& id) override {
    return inner_->FindMessage(t, id);
  }
  absl::StatusOr<std::vector<MessageRecord>> Messages(const std::string& t,
                                                      const std::string& status,
                                                      const std::optional<MessageCursor>& after,
                                                      size_t limit) override {
    return inner_->Messages(t, status, after, limit);
  }
  absl::StatusOr<std::vector<MessageRecord>> DueMessages(
      absl::Time now, absl::Time stale, size_t per_session, size_t limit,
      const std::optional<DuePosition>& after) override {
    return inner_->DueMessages(now, stale, per_session, limit, after);
  }
  absl::Status RecentSends(absl::Time since,
                           absl::FunctionRef<void(const MessageRecord&)> each) override {
    return inner_->RecentSends(since, each);
  }
  absl::StatusOr<std::vector<AlertRecord>> Alerts(const std::string& t, absl::Time from,
                                                  absl::Time to) override {
    return inner_->Alerts(t, from, to);
  }
  absl::StatusOr<std::vector<EventRecord>> Events(const std::string& t, size_t limit) override {
    return inner_->Events(t, limit);
  }
  absl::StatusOr<std::vector<WebhookRecord>> Webhooks(const std::string& t) override {
    return inner_->Webhooks(t);
  }
  absl::StatusOr<std::vector<EventRecord>> UnrelayedEvents(size_t max) override {
    return inner_->UnrelayedEvents(max);
  }
  absl::StatusOr<std::optional<EventRecord>> FindEvent(const std::string& id) override {
    return inner_->FindEvent(id);
  }
  absl::StatusOr<std::vector<DeliveryRecord>> NextDeliveries(absl::Time now, size_t max) override {
    return inner_->NextDeliveries(now, max);
  }
  absl::StatusOr<std::vector<DeliveryRecord>> Deliveries(const std::string& w,
                                                         size_t limit) override {
    return inner_->Deliveries(w, limit);
  }
  absl::StatusOr<std::optional<DeliveryRecord>> FindDelivery(const std::string& id) override {
    return inner_->FindDelivery(id);
  }
  absl::StatusOr<std::vector<AttemptRecord>> Attempts(const std::string& d) override {
    return inner_->Attempts(d);
  }
  absl::StatusOr<uint64_t> OutboxBacklog() override { return inner_->OutboxBacklog(); }
  absl::StatusOr<std::vector<std::string>> TenantIds() override { return inner_->TenantIds(); }
  absl::StatusOr<std::vector<std::pair<std::string, absl::Time>>> OpenPeriods(
      absl::Time before) override {
    return inner_->OpenPeriods(before);
  }
  absl::StatusOr<TenantLeaseRows> LeaseRows(const std::string& t) override {
    return inner_->LeaseRows(t);
  }
  absl::StatusOr<std::vector<SubscriptionChange>> SubscriptionChanges(
      const std::string& t) override {
    return inner_->SubscriptionChanges(t);
  }
  absl::StatusOr<std::vector<SubscriptionChange>> PendingPlanChanges() override {
    return inner_->PendingPlanChanges();
  }
  absl::StatusOr<std::vector<AddonRecord>> Addons(const std::string& t, absl::Time now) override {
    return inner_->Addons(t, now);
  }
  absl::StatusOr<std::vector<TopupRecord>> Topups(const std::string& t, absl::Time now) override {
    return inner_->Topups(t, now);
  }
  absl::StatusOr<std::vector<FailOpenCharge>> PendingFailOpen(size_t max) override {
    return inner_->PendingFailOpen(max);
  }
  absl::Status CheckWritable() override { return inner_->CheckWritable(); }
  bool KeepsJournalMarks() const override { return inner_->KeepsJournalMarks(); }
  absl::StatusOr<std::vector<JournalMark>> JournalMarks() override {
    return inner_->JournalMarks();
  }

 private:
  Store* inner_;
};

// `s` with a representation of its own. A failed commit hands one shared
// status to every request of its group, and its reference count lives in
// Debian's uninstrumented Abseil, where ThreadSanitizer cannot see it drop
// (see Engine::AwaitCommit): a status that crosses threads gets its own.
inline absl::Status OwnStatus(const absl::Status& s) {
  absl::Status own(s.code(), s.message());
  s.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) {
    own.SetPayload(url, absl::Cord(std::string(payload)));
  });
  return own;
}

// Runs `call` and waits for its callback (on whichever thread it runs).
template <typename T>
absl::StatusOr<T> Wait(std::function<void(Engine::Callback<T>)> call) {
  Mutex mu;
  CondVar done;
  std::optional<absl::StatusOr<T>> out;
  call([&](absl::StatusOr<T> r) {
    if (!r.ok()) r = OwnStatus(r.status());
    MutexLock lock(&mu);
    out = std::move(r);
    done.Signal();
  });
  MutexLock lock(&mu);
  while (!out) done.Wait(&mu);
  return std::move(*out);
}

class EngineTest : public contract::StoreBackendTest {
 protected:
  void SetUp() override {
    StoreBackendTest::SetUp();
    if (HasFatalFailure()) return;
    std::ifstream in(QUOTUM_EXAMPLE_CONFIG);
    std::stringstream text;
    text << in.rdbuf() << ExtraToml();
    auto loaded = config::LoadString(text.str(), "test.toml");
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    cfg_ = *loaded;
    Open();
  }
  void TearDown() override {
    Close();
    StoreBackendTest::TearDown();
  }
  /// TOML appended to the example config (extra plans for a test suite).
  virtual std::string ExtraToml() const { return ""; }
  /// Changes the engine's options before each Open.
  virtual void Configure(EngineOptions& o) const {}
  /// True: the engine treats a shared store (PostgreSQL) as scale-out does.
  virtual bool SharedStore() const { return false; }

  void Open() {
    auto store = OpenStore();
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    flaky_ = std::make_unique<FlakyStore>(store_.get());
    flaky_->shared = SharedStore();
    engine_ = std::make_unique<Engine>(Options(), flaky_.get(), &clock_);
    ASSERT_TRUE(engine_->Start().ok());
  }
  /// The options Open gives the engine.
  EngineOptions Options() const {
    EngineOptions o;
    o.catalog = &cfg_->catalog;
    o.default_plan = "starter";
    o.rate_rules = rules_;
    Configure(o);
    return o;
  }
  void Close() {
    engine_.reset();
    flaky_.reset();
    store_.reset();
  }
  void Reopen() {
    Close();
    Open();
  }

  Principal NewTenant(const std::string& id, const std::string& plan,
                      const char* start = "2026-11-08T10:00:00Z") {
    auto r = Wait<CreatedTenant>([&](auto cb) {
      engine_->CreateTenant({id, id, plan, T(start)}, std::move(cb));
    });
    EXPECT_TRUE(r.ok()) << r.status();
    secrets_[id] = r->key.secret;
    return *engine_->Authenticate(r->key.secret);
  }
  /// A tenant on `plan` with working session "s1".
  Principal TenantWithSession(const std::string& id, const std::string& plan) {
    Principal who = NewTenant(id, plan);
    for (auto step : {0, 1}) {
      auto r = Wait<Admitted<SessionView>>([&](auto cb) {
        if (step == 0) engine_->CreateSession(who, "s1", "+15550001", std::move(cb));
        if (step == 1) engine_->UpdateSession(who, "s1", "working", std::move(cb));
      });
      EXPECT_TRUE(r.ok() && r->decision.allowed) << r.status();
    }
    return Who(id);
  }

  /// The tenant's principal in the current engine (after a Reopen too).
  Principal Who(const std::string& id) { return *engine_->Authenticate(secrets_[id]); }

  absl::StatusOr<Decision> Consume(const Principal& who, const std::string& meter, uint64_t q,
                                   bool partial = false, const std::string& key = "") {
    MeterRequest req;
    req.meter = meter;
    req.quantity = q;
    req.partial = partial;
    req.idempotency_key = key;
    return Submit(who, std::move(req));
  }
  /// Consumes `req` (operation "test") and waits for the decision.
  absl::StatusOr<Decision> Submit(const Principal& who, MeterRequest req) {
    req.operation = "test";
    return Wait<Decision>([&](auto cb) { engine_->Consume(who, req, std::move(cb)); });
  }

  /// A reservation operation of tenant `tenant_id` (HoldCheck), waited for.
  absl::StatusOr<Decision> Hold(const std::string& tenant_id, HoldCheck::Op op,
                                const std::string& id, uint64_t q, const std::string& key = "",
                                absl::Duration ttl = absl::Minutes(5),
                                const std::string& meter = "ai_tokens") {
    MeterRequest req;
    req.meter = meter;
    req.quantity = q;
    req.hold = op;
    req.hold_id = id;
    req.hold_ttl = ttl;
    req.idempotency_key = key;
    return Submit(Who(tenant_id), std::move(req));
  }

  /// A business tenant that sent 1,000 messages, 300 of which the stored
  /// aggregate then lost behind the engine's back.
  Principal TenantWithDrift(const std::string& id) {
    Principal who = NewTenant(id, "business");
    EXPECT_TRUE(Consume(who, "messages_sent", 1000)->allowed);
    EXPECT_EQ(ExecSql("UPDATE counters SET value=value-300 WHERE tenant_id='" + id +
                      "' AND meter='messages_sent'"),
              absl::OkStatus());
    return who;
  }

  uint64_t Used(const Principal& who, const char* meter) {
    return engine_->CurrentUsage(who).used[*cfg_->catalog.FindMeter(meter)];
  }

  std::shared_ptr<const config::Config> cfg_;
  FakeClock clock_{T("2026-11-23T12:00:00Z")};
  std::unique_ptr<Store> store_;
  std::unique_ptr<FlakyStore> flaky_;
  std::unique_ptr<Engine> engine_;
  std::map<std::string, std::string> secrets_;
  /// Metering tests keep the general rule out of the way; rate tests reset this.
  ratelimit::RuleSet rules_ = [] {
    auto r = ratelimit::RuleSet::Defaults();
    r[ratelimit::Category::kGeneral].limit = 1'000'000'000;
    return r;
  }();
};

}  // namespace quotum::engine
