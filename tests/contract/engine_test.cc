// Engine use cases on every store (SQLite in a temp dir, a real PostgreSQL), with a
// fake clock.
#include "quotum/engine/engine.h"

#include <atomic>
#include <fstream>
#include <future>
#include <map>
#include <sstream>
#include <thread>

#include "engine_fixture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quotum/base/mutex.h"
#include "quotum/config/config.h"
#include "quotum/engine/errors.h"
#include "quotum/engine/outbox_relay.h"
#include "quotum/engine/reservations.h"
#include "quotum/engine/scheduled_jobs.h"
#include "quotum/engine/usage_reports.h"
#include "store_backend.h"

namespace quotum::engine {
namespace {

using ::testing::ElementsAre;

TEST_P(EngineTest, SeedScenario) {
  Principal pro = NewTenant("acme", "pro");
  ASSERT_TRUE(Consume(pro, "messages_sent", 9800)->allowed);
  auto partial = Consume(pro, "messages_sent", 500, true);
  ASSERT_TRUE(partial.ok());
  EXPECT_TRUE(partial->allowed);
  EXPECT_EQ(partial->consumed, 200u);
  EXPECT_EQ(partial->remaining, 0u);
  auto denied = Consume(pro, "messages_sent", 1);
  EXPECT_FALSE(denied->allowed);
  EXPECT_EQ(denied->reason, DenyReason::kQuotaExceeded);
  EXPECT_EQ(denied->reset_at, T("2026-12-08T10:00:00Z"));
  EXPECT_TRUE(Consume(pro, "messages_received", 7)->allowed);
  EXPECT_EQ(Used(pro, "messages_sent"), 10000u);
  EXPECT_EQ(Used(pro, "messages_received"), 7u);
}

TEST_P(EngineTest, ConcurrentConsumersAdmitExactlyTheLimit) {
  Principal starter = NewTenant("busy", "starter");  // messages_sent limit 1000
  std::atomic<uint64_t> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        auto d = Consume(starter, "messages_sent", 1);
        if (d.ok() && d->allowed) admitted += d->consumed;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(admitted.load(), 1000u);
  EXPECT_EQ(Used(starter, "messages_sent"), 1000u);
  Reopen();
  EXPECT_EQ(Used(Who("busy"), "messages_sent"), 1000u);
}

// The nightly sync sets a drifted aggregate to its counter while decisions
// of the same tenant keep coming: the repaired aggregate equals the counter
// afterwards, so no decision was lost or counted twice by the repair.
TEST_P(EngineTest, TheSyncRepairsAPlantedDriftExactlyWhileDecisionsRun) {
  Principal who = TenantWithDrift("drifty");
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> admitted{1000};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      // At least a few decisions each, then until the repair has happened.
      for (int i = 0; i < 20 || !stop.load(); ++i) {
        auto d = Consume(who, "messages_sent", 1);
        if (d.ok() && d->allowed) admitted += d->consumed;
      }
    });
  }
  size_t repaired = 0;
  for (int round = 0; round < 50 && repaired == 0; ++round) {
    auto report = engine_->SyncAggregates();
    ASSERT_TRUE(report.ok()) << report.status();
    repaired = report->repaired;
  }
  stop = true;
  for (auto& t : threads) t.join();
  ASSERT_GE(repaired, 1u);  // messages_sent, and api_calls when it was in flight
  auto after = engine_->Reconcile(false);
  ASSERT_TRUE(after.ok()) << after.status();
  bool seen = false;
  for (const ReconcileRow& r : after->rows) {
    if (r.tenant_id != "drifty" || r.meter != "messages_sent") continue;
    seen = true;
    EXPECT_EQ(r.counter, admitted.load());
    EXPECT_EQ(r.aggregate, admitted.load());
    EXPECT_FALSE(r.drift.flagged);
  }
  EXPECT_TRUE(seen);
  Reopen();
  EXPECT_EQ(Used(Who("drifty"), "messages_sent"), admitted.load());
}

// Syncs racing each other (the nightly one and POST /admin/reconcile) while
// decisions run and some group commits fail: the aggregate is either still
// the planted drift (no sync got through) or exactly the counter, never a
// failed commit's units ahead.
TEST_P(EngineTest, RacingSyncsAndFailedCommitsLeaveTheAggregateExact) {
  Principal who = TenantWithDrift("racy");
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&] {
      while (!stop.load()) (void)Consume(who, "messages_sent", 1);
    });
    threads.emplace_back([&] {
      while (!stop.load()) (void)engine_->SyncAggregates();
    });
  }
  for (int flip = 0; flip < 40; ++flip) {
    flaky_->fail = flip % 4 == 1;  // one span in four fails every commit
    std::this_thread::sleep_for(std::chrono::milliseconds(15));
  }
  flaky_->fail = false;
  stop = true;
  for (auto& t : threads) t.join();
  auto after = engine_->Reconcile(false);
  ASSERT_TRUE(after.ok()) << after.status();
  for (const ReconcileRow& r : after->rows) {
    if (r.tenant_id != "racy" || r.meter != "messages_sent") continue;
    EXPECT_TRUE(r.drift.units == 0 || r.drift.units == 300) << r.counter << " " << r.aggregate;
  }
}

// The forecast check (every forecast_every, over every tenant) asks its stop
// check between tenants: a stopping relay ends it early, and what it had
// found is committed. A later full round finds the rest, once each.
TEST_P(EngineTest, TheForecastCheckStopsWhenAskedAndKeepsWhatItFound) {
  clock_.Set(T("2026-11-23T12:00:00Z"));
  std::vector<Principal> over;
  for (const char* id : {"fc-a", "fc-b", "fc-c"}) {
    over.push_back(NewTenant(id, "starter", "2026-11-23T12:00:00Z"));
    // Minutes into the period, 300 of 1,000 projects far past the limit.
    ASSERT_TRUE(Consume(over.back(), "messages_sent", 300)->allowed);
  }
  clock_.Set(T("2026-11-23T12:10:00Z"));
  auto forecasts = [&](const Principal& who) {
    auto events = engine_->Events(who, 100);
    EXPECT_TRUE(events.ok()) << events.status();
    size_t n = 0;
    for (const EventRecord& e : events.value_or(std::vector<EventRecord>{})) {
      n += e.type == "usage.forecast_exceeds_limit" && e.subject == "messages_sent";
    }
    return n;
  };
  int asked = 0;
  ASSERT_EQ(engine_->CheckForecasts([&] { return ++asked > 1; }), absl::OkStatus());
  EXPECT_EQ(asked, 2);  // asked before the first tenant, and stopped before the second
  size_t found = 0;
  for (const Principal& who : over) found += forecasts(who);
  EXPECT_EQ(found, 1u);
  ASSERT_EQ(engine_->CheckForecasts(), absl::OkStatus());
  for (const Principal& who : over) EXPECT_EQ(forecasts(who), 1u) << who.tenant->id;
}

// The weekly report: made once the week is over, for a tenant with a webhook
// asking for it, from the stored days, alerts and the forecast; once only,
// across rounds and restarts; nothing for a tenant without such a webhook.
TEST_P(EngineTest, AFinishedWeekGivesEachSubscribedTenantOneReport) {
  clock_.Set(T("2026-11-23T12:00:00Z"));  // a Monday
  Principal who = NewTenant("weekly", "pro");
  Principal quiet = NewTenant("quiet", "pro");
  ASSERT_TRUE(
      engine_->CreateWebhook(who, "http://127.0.0.1:9/r", {"usage.report.weekly"}, "s").ok());
  auto send = [&](const char* at, uint64_t q, const char* channel) {
    clock_.Set(T(at));
    MeterRequest req;
    req.meter = "messages_sent";
    req.quantity = q;
    req.channel = channel;
    req.operation = "test";
    auto d = Wait<Decision>([&](auto cb) { engine_->Consume(who, req, std::move(cb)); });
    ASSERT_TRUE(d.ok() && d->allowed);
  };
  send("2026-11-23T13:00:00Z", 100, "whatsapp");
  send("2026-11-25T09:00:00Z", 8000, "telegram");  // crosses 80 % of 10,000
  send("2026-11-29T23:59:00Z", 50, "whatsapp");
  ASSERT_TRUE(Consume(quiet, "messages_sent", 5)->allowed);

  clock_.Set(T("2026-11-30T00:05:00Z"));
  ScheduledJobs jobs(store_.get(), engine_.get(), &clock_, ScheduleOptions{});
  ASSERT_EQ(jobs.RunDue(), absl::OkStatus());
  ASSERT_EQ(jobs.RunDue(), absl::OkStatus());
  ScheduledJobs restarted(store_.get(), engine_.get(), &clock_, ScheduleOptions{});
  ASSERT_EQ(restarted.RunDue(), absl::OkStatus());

  const DayRange week{absl::CivilDay(2026, 11, 23), absl::CivilDay(2026, 11, 29)};
  auto made = store_->FindEvent(ReportEventId("weekly", kWeeklyReport, week));
  ASSERT_TRUE(made.ok() && made->has_value()) << made.status();
  const EventRecord& e = **made;
  EXPECT_EQ(e.type, "usage.report.weekly");
  // Pro limits credits: each text message cost one.
  EXPECT_EQ(e.detail,
            "Weekly usage 2026-11-23 to 2026-11-29: 3 api_calls, 8150 credits, 8150 messages_sent");
  std::map<std::string, EventField> f;
  for (const EventField& field : e.fields) f.emplace(field.name, field);
  EXPECT_EQ(f.at("from").value, "2026-11-23");
  EXPECT_EQ(f.at("to").value, "2026-11-29");
  EXPECT_EQ(f.at("plan").value, "pro");
  EXPECT_TRUE(f.at("totals").json);
  EXPECT_EQ(f.at("totals").value,
            R"({"api_calls":{"total":3,"channels":{},"peak_day":"2026-11-23","peak_value":1},)"
            R"("credits":{"total":8150,"channels":{"telegram":8000,"whatsapp":150},)"
            R"("peak_day":"2026-11-25","peak_value":8000},)"
            R"("messages_sent":{"total":8150,"channels":{"telegram":8000,"whatsapp":150},)"
            R"("peak_day":"2026-11-25","peak_value":8000}})");
  EXPECT_THAT(f.at("alerts").value, ::testing::HasSubstr(R"("threshold":80,"value":8100)"));
  EXPECT_THAT(f.at("forecast").value, ::testing::HasSubstr(R"("meter":"messages_sent")"));

  size_t reports = 0;
  for (const char* tenant : {"weekly", "quiet"}) {
    auto events = store_->Events(tenant, 100);
    ASSERT_TRUE(events.ok());
    for (const EventRecord& each : *events)
      reports += each.type.starts_with("usage.report") ? 1 : 0;
  }
  EXPECT_EQ(reports, 1u) << "one weekly report, no monthly one (not asked for), none for quiet";

  // The relay hands it to the webhook (and nothing else: it asked for reports only).
  struct Recording final : WebhookTransport {
    std::vector<std::string> delivered;
    WebhookAnswer Deliver(const WebhookRecord& w, const EventRecord& event) override {
      delivered.push_back(w.url + " " + event.type + " " + event.id);
      return WebhookAnswer{200, true, "", absl::Milliseconds(1)};
    }
  } transport;
  OutboxRelay relay(store_.get(), engine_.get(), &transport, &clock_, RelayOptions{});
  ASSERT_EQ(relay.RunOnce(), absl::OkStatus());
  ASSERT_EQ(relay.RunOnce(), absl::OkStatus());
  EXPECT_THAT(transport.delivered, ElementsAre("http://127.0.0.1:9/r usage.report.weekly " + e.id));
}

TEST_P(EngineTest, IdempotentRetryCountsOnce) {
  Principal p = NewTenant("idem", "pro");
  auto first = Consume(p, "messages_sent", 5, false, "k1");
  auto again = Consume(p, "messages_sent", 5, false, "k1");
  ASSERT_TRUE(first.ok() && again.ok());
  EXPECT_FALSE(first->replayed);
  EXPECT_TRUE(again->replayed);
  EXPECT_EQ(again->consumed, 5u);
  EXPECT_EQ(again->remaining, first->remaining);
  EXPECT_EQ(Used(p, "messages_sent"), 5u);
  auto reused = Consume(p, "messages_sent", 6, false, "k1");
  EXPECT_EQ(reused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(MachineCode(reused.status()), "idempotency_key_reused");
  EXPECT_EQ(Used(p, "messages_sent"), 5u);
}

TEST_P(EngineTest, RestartRestoresCountersKeysAndIdempotency) {
  Principal p = NewTenant("durable", "pro");
  ASSERT_TRUE(Consume(p, "messages_sent", 42, false, "k-restart")->allowed);
  ASSERT_TRUE(Consume(p, "chatbot_sessions", 3)->allowed);
  auto key = Wait<MintedKey>([&](auto cb) { engine_->CreateKey("durable", std::move(cb)); });
  ASSERT_TRUE(key.ok());
  Reopen();
  auto again = engine_->Authenticate(key->secret);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Used(*again, "messages_sent"), 42u);
  EXPECT_EQ(Used(*again, "chatbot_sessions"), 3u);
  auto replay = Consume(*again, "messages_sent", 42, false, "k-restart");
  EXPECT_TRUE(replay->replayed);
  EXPECT_EQ(Used(*again, "messages_sent"), 42u);
}

// Start-up follows most streams along the tenants' id order; tenants created
// out of that order, and one whose counter rows are gone, must all come back.
TEST_P(EngineTest, RestartRestoresSessionsGroupsAndGaugesOfEveryTenant) {
  const std::vector<std::string> ids = {"m", "c", "x"};  // created out of id order
  for (size_t i = 0; i < ids.size(); ++i) {
    Principal p = NewTenant(ids[i], "pro");
    ASSERT_TRUE(Consume(p, "messages_sent", 10 + i)->allowed);
    ASSERT_TRUE(Wait<Admitted<SessionView>>([&](auto cb) {
                  engine_->CreateSession(p, "s-" + ids[i], "+1555", std::move(cb));
                }).ok());
    ASSERT_TRUE(Wait<Admitted<GroupView>>([&](auto cb) {
                  engine_->CreateGroup(p, "g-" + ids[i], "Group", std::move(cb));
                }).ok());
    ASSERT_TRUE(Wait<Decision>([&](auto cb) {
                  engine_->SetSubscribers(p, 100 + i, std::move(cb));
                })->allowed);
  }
  Close();
  ASSERT_EQ(ExecSql("DELETE FROM counters WHERE tenant_id='m'"), absl::OkStatus());
  Open();
  for (size_t i = 0; i < ids.size(); ++i) {
    SCOPED_TRACE(ids[i]);
    Principal p = Who(ids[i]);
    EXPECT_EQ(Used(p, "messages_sent"), ids[i] == "m" ? 0u : 10 + i);
    EXPECT_EQ(Used(p, "subscribers"), 100 + i);
    EXPECT_EQ(Used(p, "groups_active"), 1u);
    auto sessions = *engine_->ListSessions(p);
    ASSERT_EQ(sessions.size(), 1u);
    EXPECT_EQ(sessions[0].id, "s-" + ids[i]);
    auto groups = *engine_->ListGroups(p);
    ASSERT_EQ(groups.size(), 1u);
    EXPECT_EQ(groups[0].id, "g-" + ids[i]);
  }
}

TEST_P(EngineTest, RestartLoadsAnUnknownSessionStatusAsFailed) {
  Principal p = NewTenant("edited", "pro");
  for (const char* id : {"a", "b"}) {
    ASSERT_TRUE(Wait<Admitted<SessionView>>([&](auto cb) {
                  engine_->CreateSession(p, id, "+1555", std::move(cb));
                }).ok());
    ASSERT_TRUE(Wait<Admitted<SessionView>>([&](auto cb) {
                  engine_->UpdateSession(p, id, "working", std::move(cb));
                }).ok());
  }
  EXPECT_EQ(Used(p, "sessions_active"), 2u);
  Close();
  ASSERT_EQ(ExecSql("UPDATE sessions SET status='bogus' WHERE id='a'"), absl::OkStatus());
  Open();
  auto a = engine_->GetSession(Who("edited"), "a");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->status, "failed");
  EXPECT_EQ(engine_->GetSession(Who("edited"), "b")->status, "working");
  EXPECT_EQ(Used(Who("edited"), "sessions_active"), 1u);
}

TEST_P(EngineTest, StartRefusesATenantOnAPlanTheConfigNoLongerHas) {
  NewTenant("orphan", "pro");
  Close();
  ASSERT_EQ(ExecSql("UPDATE tenants SET plan='retired' WHERE id='orphan'"), absl::OkStatus());
  auto store = OpenStore();
  ASSERT_TRUE(store.ok()) << store.status();
  store_ = std::move(*store);
  EngineOptions o;
  o.catalog = &cfg_->catalog;
  o.default_plan = "starter";
  Engine engine(o, store_.get(), &clock_);
  absl::Status s = engine.Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("\"orphan\" is on plan \"retired\""), absl::string_view::npos)
      << s.message();
}

TEST_P(EngineTest, FailedCommitIsNeverAcknowledgedAndChangesNothing) {
  Principal p = NewTenant("flaky", "pro");
  ASSERT_TRUE(Consume(p, "messages_sent", 10)->allowed);
  flaky_->fail = true;
  auto r = Consume(p, "messages_sent", 5, false, "k-fail");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  flaky_->fail = false;
  EXPECT_EQ(Used(p, "messages_sent"), 10u);
  auto retry = Consume(p, "messages_sent", 5, false, "k-fail");
  ASSERT_TRUE(retry.ok());
  EXPECT_FALSE(retry->replayed) << "a key whose first attempt failed is free again";
  EXPECT_EQ(Used(p, "messages_sent"), 15u);
}

// A session operation whose commit fails takes its api_call back out of
// memory as well: the counter holds only what the store holds.
TEST_P(EngineTest, AFailedSessionCommitDoesNotCountItsApiCall) {
  Principal p = NewTenant("flaky-session", "pro");
  const uint64_t calls = Used(p, "api_calls");
  flaky_->fail = true;
  auto r = Wait<Admitted<SessionView>>(
      [&](auto cb) { engine_->CreateSession(p, "s-1", "+15550001", std::move(cb)); });
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  flaky_->fail = false;
  EXPECT_EQ(Used(p, "api_calls"), calls);
  auto ok = Wait<Admitted<SessionView>>(
      [&](auto cb) { engine_->CreateSession(p, "s-1", "+15550001", std::move(cb)); });
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(Used(p, "api_calls"), calls + 1);
  Reopen();
  EXPECT_EQ(Used(Who("flaky-session"), "api_calls"), calls + 1);
}

TEST_P(EngineTest, CountersResetAtThePeriodBoundaryAndHistoryKeepsThem) {
  Principal p = NewTenant("roll", "pro", "2026-10-31T08:00:00Z");
  // Period [Oct 31 08:00, Nov 30 08:00) contains the clock (Nov 23).
  ASSERT_TRUE(Consume(p, "messages_sent", 700)->allowed);
  clock_.Set(T("2026-11-30T07:59:59Z"));
  EXPECT_EQ(Used(p, "messages_sent"), 700u);
  clock_.Set(T("2026-11-30T08:00:00Z"));
  EXPECT_EQ(Used(p, "messages_sent"), 0u);
  ASSERT_TRUE(Consume(p, "messages_sent", 3)->allowed);
  auto h = engine_->History(p, 12);
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->size(), 2u);
  const MeterId sent = *cfg_->catalog.FindMeter("messages_sent");
  EXPECT_TRUE((*h)[0].current);
  EXPECT_EQ((*h)[0].values[sent], 3u);
  EXPECT_EQ((*h)[1].period.start, T("2026-10-31T08:00:00Z"));
  EXPECT_EQ((*h)[1].values[sent], 700u);
  Reopen();  // the new period survives a restart too
  EXPECT_EQ(engine_->History(Who("roll"), 1)->front().values[sent], 3u);
  // Start-up reads both periods' rows and keeps the current one's.
  EXPECT_EQ(Used(Who("roll"), "messages_sent"), 3u);
}

TEST_P(EngineTest, ALateEventCountsInTheClosedPeriodUnenforcedWithinTheGrace) {
  // Period [Oct 31 08:00, Nov 30 08:00); the grace runs until Nov 30 09:00.
  Principal p = NewTenant("late", "starter", "2026-10-31T08:00:00Z");
  const uint64_t limit = *Consume(p, "messages_sent", 1)->limit;
  ASSERT_TRUE(Consume(p, "messages_sent", limit - 1)->allowed);  // the period is full
  clock_.Set(T("2026-11-30T08:30:00Z"));
  ASSERT_TRUE(Consume(p, "messages_sent", 2)->allowed);
  auto at = [&](const char* when, uint64_t q, const std::string& key = "",
                const std::string& session = "") {
    MeterRequest req;
    req.meter = "messages_sent";
    req.quantity = q;
    req.at = T(when);
    req.idempotency_key = key;
    req.session_id = session;
    return Submit(p, std::move(req));
  };
  absl::StatusOr<Decision> late = at("2026-11-30T07:59:00Z", 5, "late-1");
  ASSERT_TRUE(late.ok()) << late.status();
  EXPECT_TRUE(late->allowed);  // past the closed period's limit: never enforced
  EXPECT_EQ(late->consumed, 5u);
  EXPECT_TRUE(late->late);
  EXPECT_FALSE(late->limit.has_value());
  EXPECT_EQ(late->period_start, T("2026-10-31T08:00:00Z"));
  EXPECT_EQ(late->reset_at, T("2026-11-30T08:00:00Z"));
  absl::StatusOr<Decision> again = at("2026-11-30T07:59:00Z", 5, "late-1");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->replayed);
  EXPECT_TRUE(again->late);

  // Refused, changing nothing: after the grace, before the closed period,
  // and a send through a session (which happens now).
  EXPECT_EQ(MachineCode(at("2026-10-31T07:59:59Z", 1).status()), "timestamp_out_of_period");
  EXPECT_EQ(MachineCode(at("2026-11-30T07:00:00Z", 1, "", "s1").status()), "late_send");
  clock_.Set(T("2026-11-30T09:00:00Z"));
  EXPECT_EQ(MachineCode(at("2026-11-30T07:59:00Z", 1).status()), "late_event_too_late");

  const MeterId sent = *cfg_->catalog.FindMeter("messages_sent");
  auto check = [&](const Principal& who) {
    EXPECT_EQ(Used(who, "messages_sent"), 2u);  // the live counter is left alone
    EXPECT_EQ(Used(who, "api_calls"), 2u);      // the late call counts now
    auto h = engine_->History(who, 2);
    ASSERT_TRUE(h.ok()) << h.status();
    ASSERT_EQ(h->size(), 2u);
    EXPECT_EQ((*h)[1].values[sent], limit + 5);  // the closed period's aggregate, amended
    const absl::CivilDay day(2026, 11, 30);
    auto d = engine_->Daily(who, day, day);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(d->front().values[sent], 7u);  // the late units on the day they happened
  };
  check(p);
  Reopen();
  check(Who("late"));
  clock_.Set(T("2026-11-30T08:40:00Z"));  // a retry after a restart, within the grace
  absl::StatusOr<Decision> replay = [&] {
    MeterRequest req;
    req.meter = "messages_sent";
    req.quantity = 5;
    req.at = T("2026-11-30T07:59:00Z");
    req.idempotency_key = "late-1";
    return Submit(Who("late"), std::move(req));
  }();
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_TRUE(replay->replayed);
  EXPECT_TRUE(replay->late);
  EXPECT_EQ(engine_->History(Who("late"), 2)->back().values[sent], limit + 5);
}

// Pro: 10,000 messages and 20,000 credits; a whatsapp template costs 3
// credits, a text 1 (the default costs). Both are charged in one decision.
TEST_P(EngineTest, ASendCostsCreditsByChannelAndTypeInTheSameDecision) {
  Principal p = NewTenant("credits", "pro");
  auto send = [&](uint64_t q, MessageType type, const char* channel = "whatsapp",
                  bool partial = false) {
    MeterRequest req;
    req.meter = "messages_sent";
    req.quantity = q;
    req.channel = channel;
    req.type = type;
    req.partial = partial;
    return Submit(p, std::move(req));
  };
  absl::StatusOr<Decision> d = send(4000, MessageType::kTemplate);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->allowed);
  ASSERT_TRUE(d->credits.has_value());
  EXPECT_EQ(d->credits->per_unit, 3u);
  EXPECT_EQ(d->credits->charged, 12000u);
  EXPECT_EQ(d->credits->remaining, 8000u);
  // 3,000 templates need 9,000 credits: refused whole, nothing charged.
  d = send(3000, MessageType::kTemplate);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_FALSE(d->allowed);
  EXPECT_EQ(d->rule, "credits");
  EXPECT_EQ(d->reason, DenyReason::kQuotaExceeded);
  EXPECT_EQ(Used(p, "messages_sent"), 4000u);
  EXPECT_EQ(Used(p, "credits"), 12000u);
  // Partial: the whole messages the credits pay for (8,000 / 3 = 2,666).
  d = send(3000, MessageType::kTemplate, "whatsapp", true);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->allowed);
  EXPECT_EQ(d->consumed, 2666u);
  EXPECT_EQ(d->credits->charged, 7998u);
  EXPECT_EQ(d->remaining, 10000u - 6666u);  // the messages quota's own remaining
  d = send(2, MessageType::kText, "telegram");
  ASSERT_TRUE(d.ok() && d->allowed);
  EXPECT_EQ(d->credits->remaining, 0u);
  d = send(1, MessageType::kMedia, "telegram");
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->allowed);
  EXPECT_EQ(d->credits->per_unit, 2u);

  auto check = [&](const Principal& who) {
    EXPECT_EQ(Used(who, "messages_sent"), 6668u);
    EXPECT_EQ(Used(who, "credits"), 20000u);
    auto by_channel =
        engine_->ChannelsBetween(who, clock_.Now() - absl::Hours(1), clock_.Now() + absl::Hours(1));
    ASSERT_TRUE(by_channel.ok()) << by_channel.status();
    const MeterId credits = *cfg_->catalog.FindMeter("credits");
    std::map<std::string, uint64_t> seen;
    for (const ChannelUsage& u : *by_channel) {
      if (u.meter == credits) seen[u.channel] = u.value;
    }
    EXPECT_EQ(seen, (std::map<std::string, uint64_t>{{"telegram", 2}, {"whatsapp", 19998}}));
  };
  check(p);
  Reopen();
  check(Who("credits"));

  // Without a credits limit (enterprise) a send costs no credits.
  Principal e = NewTenant("nocredits", "enterprise");
  MeterRequest req;
  req.meter = "messages_sent";
  req.quantity = 5;
  req.type = MessageType::kTemplate;
  d = Submit(e, std::move(req));
  ASSERT_TRUE(d.ok() && d->allowed);
  EXPECT_FALSE(d->credits.has_value());
  EXPECT_EQ(Used(e, "credits"), 0u);
}

// Reserve -> commit/release (SPEC §2): held units count against the limit,
// a commit charges the real amount (more than held only if it fits), and
// holds survive a restart.
TEST_P(EngineTest, ReservedUnitsCountUntilCommittedAndSurviveARestart) {
  NewTenant("rsv", "starter");  // ai_tokens: 100,000 a period
  using Op = HoldCheck::Op;
  const std::string r1 = ReservationIdFor("rsv", "ai_tokens", "");
  absl::StatusOr<Decision> d = Hold("rsv", Op::kReserve, r1, 60000);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_TRUE(d->allowed);
  EXPECT_EQ(d->consumed, 0u);
  EXPECT_EQ(d->remaining, 40000u);
  ASSERT_TRUE(d->reservation.has_value());
  EXPECT_EQ(d->reservation->id, r1);
  EXPECT_EQ(d->reservation->units, 60000u);
  EXPECT_EQ(d->reservation->expires_at, clock_.Now() + absl::Minutes(5));
  EXPECT_EQ(Used(Who("rsv"), "ai_tokens"), 0u);
  EXPECT_FALSE(Consume(Who("rsv"), "ai_tokens", 40001)->allowed);  // the held units count
  ASSERT_TRUE(Consume(Who("rsv"), "ai_tokens", 40000)->allowed);

  // More than held, and it does not fit: refused, and the reservation stands.
  d = Hold("rsv", Op::kCommit, r1, 70000);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_FALSE(d->allowed);
  EXPECT_EQ(d->reason, DenyReason::kQuotaExceeded);
  Reopen();  // the hold survives a restart
  EXPECT_FALSE(Consume(Who("rsv"), "ai_tokens", 1)->allowed);
  d = Hold("rsv", Op::kCommit, r1, 59000);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_TRUE(d->allowed);
  EXPECT_EQ(d->consumed, 59000u);
  EXPECT_EQ(d->remaining, 1000u);
  EXPECT_EQ(d->reservation->state, ReservationUse::State::kCommitted);
  EXPECT_EQ(d->reservation->units, 60000u);
  EXPECT_EQ(Used(Who("rsv"), "ai_tokens"), 99000u);
  EXPECT_EQ(MachineCode(Hold("rsv", Op::kCommit, r1, 1).status()), "reservation_not_found");
  EXPECT_EQ(MachineCode(Hold("rsv", Op::kRelease, r1, 0).status()), "reservation_not_found");
}

// A release or an expiry (exactly at it) gives the units back, a retried
// reserve is answered once, a failed commit holds nothing, and bad input is
// refused before anything is decided.
TEST_P(EngineTest, ReservedUnitsComeBackOnReleaseOrExpiry) {
  NewTenant("rsv2", "starter");
  using Op = HoldCheck::Op;
  const std::string r2 = ReservationIdFor("rsv2", "ai_tokens", "");
  ASSERT_TRUE(Hold("rsv2", Op::kReserve, r2, 100000, "", absl::Seconds(10))->allowed);
  EXPECT_FALSE(Consume(Who("rsv2"), "ai_tokens", 1)->allowed);
  clock_.Advance(absl::Seconds(10) - absl::Milliseconds(1));
  EXPECT_FALSE(Consume(Who("rsv2"), "ai_tokens", 1)->allowed);
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_TRUE(Consume(Who("rsv2"), "ai_tokens", 1)->allowed);
  EXPECT_EQ(MachineCode(Hold("rsv2", Op::kCommit, r2, 1).status()), "reservation_not_found");

  const std::string r3 = ReservationIdFor("rsv2", "ai_tokens", "k3");
  EXPECT_EQ(r3, ReservationIdFor("rsv2", "ai_tokens", "k3"));
  ASSERT_TRUE(Hold("rsv2", Op::kReserve, r3, 99999, "k3")->allowed);
  absl::StatusOr<Decision> d = Hold("rsv2", Op::kReserve, r3, 99999, "k3");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->replayed);
  EXPECT_EQ(d->reservation->id, r3);
  const absl::Time r3_expires = d->reservation->expires_at;
  Reopen();  // a replay after a restart answers with the reservation too
  d = Hold("rsv2", Op::kReserve, r3, 99999, "k3");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->replayed);
  ASSERT_TRUE(d->reservation.has_value());
  EXPECT_EQ(d->reservation->id, r3);
  EXPECT_EQ(d->reservation->expires_at, r3_expires);
  // The same id once its key is forgotten: refused, the hold untouched.
  EXPECT_EQ(MachineCode(Hold("rsv2", Op::kReserve, r3, 5).status()), "reservation_exists");
  EXPECT_FALSE(Consume(Who("rsv2"), "ai_tokens", 1)->allowed);
  d = Hold("rsv2", Op::kRelease, r3, 0);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->reservation->state, ReservationUse::State::kReleased);
  EXPECT_EQ(d->reservation->units, 99999u);
  EXPECT_EQ(d->consumed, 0u);
  EXPECT_EQ(Used(Who("rsv2"), "ai_tokens"), 1u);

  flaky_->fail = true;
  const std::string r4 = ReservationIdFor("rsv2", "ai_tokens", "");
  EXPECT_EQ(Hold("rsv2", Op::kReserve, r4, 99999).status().code(), absl::StatusCode::kUnavailable);
  flaky_->fail = false;
  EXPECT_EQ(MachineCode(Hold("rsv2", Op::kRelease, r4, 0).status()), "reservation_not_found");
  EXPECT_TRUE(Consume(Who("rsv2"), "ai_tokens", 99999)->allowed);

  const std::string r5 = ReservationIdFor("rsv2", "ai_tokens", "");
  EXPECT_EQ(MachineCode(Hold("rsv2", Op::kReserve, r5, 0).status()), "invalid_quantity");
  EXPECT_EQ(MachineCode(Hold("rsv2", Op::kReserve, r5, 1, "", absl::ZeroDuration()).status()),
            "invalid_ttl");
  EXPECT_EQ(MachineCode(Hold("rsv2", Op::kReserve, r5, 1, "", absl::Hours(25)).status()),
            "invalid_ttl");
  EXPECT_EQ(MachineCode(
                Hold("rsv2", Op::kReserve, r5, 1, "", absl::Minutes(1), "messages_sent").status()),
            "not_reservable");
  EXPECT_EQ(MachineCode(
                Hold("rsv2", Op::kReserve, r5, 1, "", absl::Minutes(1), "groups_active").status()),
            "gauge_meter");
  EXPECT_EQ(MachineCode(Hold("rsv2", Op::kCommit, "rsv_x", 1, "", absl::Minutes(1), "").status()),
            "reservation_not_found");
  EXPECT_EQ(Used(Who("rsv2"), "ai_tokens"), 100000u);
}

TEST_P(EngineTest, RestartInANewPeriodStartsItAtZero) {
  Principal p = NewTenant("idle", "pro", "2026-10-31T08:00:00Z");
  ASSERT_TRUE(Consume(p, "messages_sent", 700)->allowed);
  clock_.Set(T("2026-11-30T08:00:00Z"));
  Reopen();  // the store's latest row for the meter is last period's
  EXPECT_EQ(Used(Who("idle"), "messages_sent"), 0u);
}

TEST_P(EngineTest, DailySeriesIsDenseAndNewestFirst) {
  Principal p = NewTenant("daily", "pro");
  ASSERT_TRUE(Consume(p, "messages_sent", 4)->allowed);
  clock_.Advance(absl::Hours(24));
  ASSERT_TRUE(Consume(p, "messages_sent", 6)->allowed);
  absl::CivilDay today = absl::ToCivilDay(clock_.Now(), absl::UTCTimeZone());
  auto d = engine_->Daily(p, today - 4, today);
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->size(), 5u);
  const MeterId sent = *cfg_->catalog.FindMeter("messages_sent");
  EXPECT_EQ((*d)[0].day, today);
  EXPECT_EQ((*d)[0].values[sent], 6u);
  EXPECT_EQ((*d)[1].values[sent], 4u);
  EXPECT_EQ((*d)[2].values[sent], 0u);
}

TEST_P(EngineTest, OverridesLiftEnterpriseLimits) {
  Principal e = NewTenant("bigco", "enterprise");
  EXPECT_FALSE(Consume(e, "messages_sent", 1)->limit.has_value());
  auto v = Wait<TenantView>([&](auto cb) {
    engine_->SetLimits("bigco", {{"messages_sent", 5}}, std::move(cb));
  });
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(Consume(e, "messages_sent", 4)->allowed);
  EXPECT_FALSE(Consume(e, "messages_sent", 1)->allowed);
  Reopen();
  EXPECT_FALSE(Consume(Who("bigco"), "messages_sent", 1)->allowed);
}

TEST_P(EngineTest, RejectsBadRequestsWithoutSideEffects) {
  Principal p = NewTenant("bad", "pro");
  EXPECT_EQ(MachineCode(Consume(p, "nope", 1).status()), "unknown_meter");
  EXPECT_EQ(MachineCode(Consume(p, "sessions_active", 1).status()), "gauge_meter");
  EXPECT_EQ(MachineCode(Consume(p, "messages_sent", 0).status()), "invalid_quantity");
  ASSERT_TRUE(Consume(p, "ai_tokens", 1)->allowed);
  EXPECT_EQ(MachineCode(Consume(p, "ai_tokens", ~0ULL).status()), "quantity_overflow");
  EXPECT_EQ(Used(p, "ai_tokens"), 1u);
  EXPECT_EQ(Used(p, "messages_sent"), 0u);
}

TEST_P(EngineTest, KeysAreRevocableAndTenantsUnique) {
  auto r = Wait<CreatedTenant>([&](auto cb) {
    engine_->CreateTenant({"uniq", "U", "pro", std::nullopt}, std::move(cb));
  });
  ASSERT_TRUE(r.ok());
  auto dup = Wait<CreatedTenant>([&](auto cb) {
    engine_->CreateTenant({"uniq", "U", "pro", std::nullopt}, std::move(cb));
  });
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(engine_->Authenticate(r->key.secret).ok());
  ASSERT_TRUE(
      Wait<std::string>([&](auto cb) { engine_->RevokeKey(r->key.key_id, std::move(cb)); }).ok());
  EXPECT_FALSE(engine_->Authenticate(r->key.secret).ok());
  Reopen();
  EXPECT_FALSE(engine_->Authenticate(r->key.secret).ok());
  EXPECT_EQ(engine_->ListTenants()->size(), 1u);
}

// The HTTP layer asks PlanKeyLookup where a key would be found, so that no
// store read runs on its I/O threads. Embedded, every key is in memory. On a
// shared store, a key in use is refreshed in the background from 0.75 s on
// (one refresh claimed at a time) and read on the request path (the HTTP
// layer's read pool) only from 0.95 s; a revocation made behind this
// engine's back (another instance's) is seen once the refresh has run.
TEST_P(EngineTest, KeysInUseAreRefreshedAheadOfTheirCheck) {
  using Lookup = Engine::KeyLookup;
  NewTenant("fresh", "pro");
  const std::string secret = secrets_["fresh"];
  const std::string key_id = Who("fresh").key_id;
  if (!is_postgres()) {
    EXPECT_EQ(engine_->PlanKeyLookup(secret), Lookup::kInMemory);
    EXPECT_EQ(engine_->PlanKeyLookup("qk_unknown"), Lookup::kInMemory);
    clock_.Advance(absl::Seconds(2));
    EXPECT_EQ(engine_->PlanKeyLookup(secret), Lookup::kInMemory);
    return;
  }
  // A second instance on the shared store (the fixture's engine sees the
  // store through a wrapper that does not say it is shared).
  Engine other(Options(), store_.get(), &clock_);
  ASSERT_TRUE(other.Start().ok());
  EXPECT_EQ(other.PlanKeyLookup(secret), Lookup::kReadsStore);  // not seen yet
  ASSERT_TRUE(other.Authenticate(secret).ok());                 // read, so checked now
  EXPECT_EQ(other.PlanKeyLookup(secret), Lookup::kInMemory);
  EXPECT_EQ(other.PlanKeyLookup("qk_unknown"), Lookup::kReadsStore);
  ASSERT_EQ(ExecSql("UPDATE api_keys SET revoked_at=1 WHERE key_id='" + key_id + "'"),
            absl::OkStatus());
  clock_.Advance(absl::Milliseconds(800));
  EXPECT_EQ(other.PlanKeyLookup(secret), Lookup::kInMemoryRefreshDue);
  EXPECT_EQ(other.PlanKeyLookup(secret), Lookup::kInMemory);  // already claimed
  EXPECT_TRUE(other.Authenticate(secret).ok());               // not yet refreshed
  other.RefreshKey(secret);
  EXPECT_EQ(MachineCode(other.Authenticate(secret).status()), "unauthorized");
  clock_.Advance(absl::Milliseconds(800));
  EXPECT_EQ(other.PlanKeyLookup(secret), Lookup::kInMemoryRefreshDue);  // claimable again
  clock_.Advance(absl::Milliseconds(160));  // 0.96 s: too close to the lapse to stay inline
  EXPECT_EQ(other.PlanKeyLookup(secret), Lookup::kReadsStore);
}

// ---- Plan changes (issue 11): the ledger, on both cold stores, with a fake clock.

absl::StatusOr<SubscriptionChange> ChangePlanOf(Engine& e, const Principal& who,
                                                const std::string& plan) {
  return Wait<SubscriptionChange>([&](auto cb) { e.ChangePlan(who, plan, std::move(cb)); });
}

TEST_P(EngineTest, AnUpgradeAppliesAtOnceProRataAndKeepsTheCounters) {
  // Period [Nov 8 10:00, Dec 8 10:00): 30 days; half of it is left on Nov 23 10:00.
  Principal p = NewTenant("up", "pro");
  clock_.Set(T("2026-11-23T10:00:00Z"));
  ASSERT_TRUE(Consume(p, "messages_sent", 9000)->allowed);
  auto preview = engine_->PreviewPlanChange(p, "business");
  ASSERT_TRUE(preview.ok()) << preview.status();
  EXPECT_EQ(preview->kind, PlanChangeKind::kUpgrade);
  EXPECT_EQ(preview->proration_cents, 3500);
  EXPECT_EQ(Used(p, "messages_sent"), 9000u);                // the preview changed nothing
  EXPECT_FALSE(Consume(p, "messages_sent", 2000)->allowed);  // still pro's 10,000
  auto c = ChangePlanOf(*engine_, p, "business");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->state, "applied");
  EXPECT_EQ(c->amount_cents, 3500);
  EXPECT_EQ(c->actor, "tenant");
  EXPECT_EQ(Used(p, "messages_sent"), 9000u);               // not reset
  EXPECT_TRUE(Consume(p, "messages_sent", 2000)->allowed);  // business's 50,000
  Reopen();
  EXPECT_EQ(engine_->CurrentUsage(Who("up")).tenant.plan, "business");
  auto sub = engine_->Subscription(Who("up"));
  ASSERT_TRUE(sub.ok()) << sub.status();
  ASSERT_EQ(sub->changes.size(), 1u);
  EXPECT_EQ(sub->changes[0].from_plan, "pro");
  EXPECT_EQ(sub->changes[0].amount_cents, 3500);
}

// Period [Oct 31 08:00, Nov 30 08:00) on Pro, with a downgrade to Starter
// due at its end: the close waits for the late-event grace, then moves the
// period into usage_aggregates under Pro's plan and limits; history and a
// restart read the same numbers, and a second sweep closes nothing.
TEST_P(EngineTest, AnEndedPeriodClosesAfterTheGraceUnderItsOwnPlan) {
  Principal p = NewTenant("closer", "pro", "2026-10-31T08:00:00Z");
  ASSERT_TRUE(Consume(p, "messages_sent", 700)->allowed);
  ASSERT_TRUE(ChangePlanOf(*engine_, p, "starter").ok());
  const MeterId sent = *cfg_->catalog.FindMeter("messages_sent");
  clock_.Set(T("2026-11-30T08:30:00Z"));  // ended, within the grace
  ASSERT_TRUE(Consume(p, "messages_sent", 3)->allowed);
  EXPECT_EQ(*engine_->ClosePeriods(), 0u);
  clock_.Set(T("2026-11-30T09:00:00Z"));  // the grace is over
  EXPECT_EQ(*engine_->ClosePeriods(), 1u);
  EXPECT_EQ(*engine_->ClosePeriods(), 0u);
  auto check = [&](const Principal& who) {
    auto h = engine_->History(who, 2);
    ASSERT_TRUE(h.ok()) << h.status();
    ASSERT_EQ(h->size(), 2u);
    EXPECT_EQ((*h)[0].values[sent], 3u);
    EXPECT_EQ((*h)[1].values[sent], 700u);
    EXPECT_EQ(Used(who, "messages_sent"), 3u);
  };
  check(p);
  Reopen();
  check(Who("closer"));
  // The closed rows carry Pro (the plan before the boundary) and its limit:
  // deleting exactly that row empties the closed period.
  ASSERT_EQ(ExecSql("DELETE FROM usage_aggregates WHERE tenant_id='closer' AND "
                    "meter='messages_sent' AND plan='pro' AND limit_value=10000 AND value=700"),
            absl::OkStatus());
  EXPECT_EQ(engine_->History(Who("closer"), 2)->back().values[sent], 0u);
}

TEST_P(EngineTest, ADowngradeWaitsForThePeriodsEndAndSurvivesARestart) {
  Principal p = NewTenant("down", "business");
  clock_.Set(T("2026-11-23T10:00:00Z"));
  auto c = ChangePlanOf(*engine_, p, "pro");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->state, "pending");
  EXPECT_EQ(c->amount_cents, 0);
  EXPECT_EQ(c->effective_at, T("2026-12-08T10:00:00Z"));
  EXPECT_EQ(engine_->CurrentUsage(p).tenant.plan, "business");
  ASSERT_TRUE(engine_->CurrentUsage(p).pending_plan.has_value());
  Reopen();
  p = Who("down");
  ASSERT_TRUE(engine_->CurrentUsage(p).pending_plan.has_value());
  // One second before the boundary: still business; at the boundary: pro.
  clock_.Set(T("2026-12-08T09:59:59Z"));
  EXPECT_EQ(engine_->CurrentUsage(p).tenant.plan, "business");
  clock_.Set(T("2026-12-08T10:00:00Z"));
  EXPECT_EQ(engine_->CurrentUsage(p).tenant.plan, "pro");
  EXPECT_FALSE(engine_->CurrentUsage(p).pending_plan.has_value());
  Reopen();  // the applied change was committed
  EXPECT_EQ(engine_->CurrentUsage(Who("down")).tenant.plan, "pro");
  auto sub = engine_->Subscription(Who("down"));
  ASSERT_TRUE(sub.ok());
  ASSERT_EQ(sub->changes.size(), 1u);
  EXPECT_EQ(sub->changes[0].state, "applied");
}

TEST_P(EngineTest, AnUpgradeAfterAScheduledDowngradeReplacesIt) {
  Principal p = NewTenant("both", "pro");
  clock_.Set(T("2026-11-23T10:00:00Z"));
  ASSERT_EQ(ChangePlanOf(*engine_, p, "starter")->state, "pending");
  auto up = ChangePlanOf(*engine_, p, "business");
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(up->amount_cents, 3500);  // from pro, the plan it has
  EXPECT_FALSE(engine_->CurrentUsage(p).pending_plan.has_value());
  clock_.Set(T("2026-12-08T10:00:01Z"));
  EXPECT_EQ(engine_->CurrentUsage(p).tenant.plan, "business");
  auto sub = engine_->Subscription(p);
  ASSERT_TRUE(sub.ok());
  std::vector<std::string> states;
  for (const auto& ch : sub->changes) states.push_back(ch.to_plan + ":" + ch.state);
  EXPECT_THAT(states, ElementsAre("business:applied", "starter:cancelled"));
}

TEST_P(EngineTest, CancellingAPendingDowngradeKeepsThePlan) {
  Principal p = NewTenant("keep", "business");
  ASSERT_EQ(ChangePlanOf(*engine_, p, "pro")->state, "pending");
  auto cancelled =
      Wait<SubscriptionChange>([&](auto cb) { engine_->CancelPendingPlan(p, std::move(cb)); });
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state, "cancelled");
  auto again =
      Wait<SubscriptionChange>([&](auto cb) { engine_->CancelPendingPlan(p, std::move(cb)); });
  EXPECT_EQ(MachineCode(again.status()), "no_pending_change");
  clock_.Set(T("2026-12-09T00:00:00Z"));
  EXPECT_EQ(engine_->CurrentUsage(p).tenant.plan, "business");
}

TEST_P(EngineTest, BadPlanChangesAreRefusedAndChangeNothing) {
  Principal p = NewTenant("bad", "pro");
  EXPECT_EQ(MachineCode(ChangePlanOf(*engine_, p, "warp").status()), "unknown_plan");
  EXPECT_EQ(MachineCode(ChangePlanOf(*engine_, p, "enterprise").status()), "plan_not_selectable");
  EXPECT_EQ(ChangePlanOf(*engine_, p, "enterprise").status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(MachineCode(ChangePlanOf(*engine_, p, "pro").status()), "same_plan");
  EXPECT_EQ(engine_->PreviewPlanChange(p, "pro")->kind, PlanChangeKind::kSame);
  EXPECT_EQ(engine_->CurrentUsage(p).tenant.plan, "pro");
  EXPECT_TRUE(engine_->Subscription(p)->changes.empty());
  // An admin may move it anywhere, at once; a downgrade is then credited.
  clock_.Set(T("2026-11-23T10:00:00Z"));
  auto moved = Wait<SubscriptionChange>(
      [&](auto cb) { engine_->AdminChangePlan("bad", "starter", std::move(cb)); });
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(moved->state, "applied");
  EXPECT_EQ(moved->amount_cents, -1450);
  EXPECT_EQ(moved->actor, "admin");
  EXPECT_EQ(engine_->CurrentUsage(p).tenant.plan, "starter");
  auto missing = Wait<SubscriptionChange>(
      [&](auto cb) { engine_->AdminChangePlan("nobody", "pro", std::move(cb)); });
  EXPECT_EQ(MachineCode(missing.status()), "tenant_not_found");
}

TEST_P(EngineTest, AFailedCommitTakesThePlanChangeBack) {
  Principal p = NewTenant("flaky", "pro");
  flaky_->fail = true;
  EXPECT_FALSE(ChangePlanOf(*engine_, p, "business").ok());
  flaky_->fail = false;
  EXPECT_EQ(engine_->CurrentUsage(p).tenant.plan, "pro");
}

// ---- Add-ons (issue 11 item 3): recurring packs that follow the base cycle.

absl::StatusOr<BoughtAddon> Buy(Engine& e, const Principal& who, const std::string& meter,
                                uint64_t units) {
  return Wait<BoughtAddon>([&](auto cb) { e.BuyAddon(who, meter, units, std::move(cb)); });
}

TEST_P(EngineTest, AnAddonRaisesTheLimitAtOnceAndRenewsUntilCancelled) {
  // Period [Nov 8 10:00, Dec 8 10:00); half of it left on Nov 23 10:00.
  Principal p = NewTenant("packs", "pro");  // chatbot_sessions 2000
  clock_.Set(T("2026-11-23T10:00:00Z"));
  ASSERT_TRUE(Consume(p, "chatbot_sessions", 2000)->allowed);
  EXPECT_FALSE(Consume(p, "chatbot_sessions", 1)->allowed);
  auto bought = Buy(*engine_, p, "chatbot_sessions", 1000);  // 30.00 a month
  ASSERT_TRUE(bought.ok()) << bought.status();
  EXPECT_EQ(bought->proration_cents, 1500);
  EXPECT_EQ(engine_->CurrentUsage(p).limits[*cfg_->catalog.FindMeter("chatbot_sessions")], 3000u);
  EXPECT_TRUE(Consume(p, "chatbot_sessions", 1000)->allowed);
  EXPECT_FALSE(Consume(p, "chatbot_sessions", 1)->allowed);
  Reopen();
  p = Who("packs");
  ASSERT_EQ(engine_->ListAddons(p).size(), 1u);
  // Renewed in the next period, until cancelled; then it ends with the period.
  clock_.Set(T("2026-12-10T00:00:00Z"));
  EXPECT_TRUE(Consume(p, "chatbot_sessions", 3000)->allowed);
  auto cancelled =
      Wait<AddonRecord>([&](auto cb) { engine_->CancelAddon(p, bought->addon.id, std::move(cb)); });
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->ends_at, T("2027-01-08T10:00:00Z"));
  auto again =
      Wait<AddonRecord>([&](auto cb) { engine_->CancelAddon(p, bought->addon.id, std::move(cb)); });
  EXPECT_EQ(MachineCode(again.status()), "addon_cancelled");
  Reopen();
  p = Who("packs");
  EXPECT_EQ(engine_->ListAddons(p).size(), 1u);  // counts until the period's end
  clock_.Set(T("2027-01-08T10:00:00Z"));
  EXPECT_TRUE(engine_->ListAddons(p).empty());
  EXPECT_EQ(engine_->CurrentUsage(p).limits[*cfg_->catalog.FindMeter("chatbot_sessions")], 2000u);
  Reopen();
  EXPECT_TRUE(engine_->ListAddons(Who("packs")).empty());
  auto sub = engine_->Subscription(Who("packs"));
  ASSERT_TRUE(sub.ok());
  std::vector<std::string> kinds;
  for (const auto& ch : sub->changes) kinds.push_back(ch.kind);
  EXPECT_THAT(kinds, ElementsAre("addon_cancelled", "addon_added"));
}

TEST_P(EngineTest, AddonsComeOnlyInThePacksTheCatalogSells) {
  Principal p = NewTenant("sizes", "pro");
  auto wrong = Buy(*engine_, p, "chatbot_sessions", 1500);
  EXPECT_EQ(MachineCode(wrong.status()), "invalid_pack_size");
  EXPECT_NE(wrong.status().message().find("1000, 2000, 3000"), absl::string_view::npos)
      << wrong.status();
  EXPECT_EQ(MachineCode(Buy(*engine_, p, "messages_sent", 1000).status()), "no_addon_packs");
  EXPECT_EQ(MachineCode(Buy(*engine_, p, "warp", 1000).status()), "unknown_meter");
  auto missing =
      Wait<AddonRecord>([&](auto cb) { engine_->CancelAddon(p, "addon_nope", std::move(cb)); });
  EXPECT_EQ(MachineCode(missing.status()), "addon_not_found");
  EXPECT_TRUE(engine_->ListAddons(p).empty());
  flaky_->fail = true;
  EXPECT_FALSE(Buy(*engine_, p, "chatbot_sessions", 1000).ok());
  flaky_->fail = false;
  EXPECT_TRUE(engine_->ListAddons(p).empty());
}

// ---- Top-ups (issue 11 item 4): one-off packs used after the limit.

absl::StatusOr<TopupRecord> BuyTopup(Engine& e, const Principal& who, const std::string& meter,
                                     uint64_t units, std::optional<int64_t> days = std::nullopt) {
  return Wait<TopupRecord>([&](auto cb) { e.BuyTopup(who, meter, units, days, std::move(cb)); });
}

/// The balance of each top-up, in drawing order.
std::vector<uint64_t> Balances(Engine& e, const Principal& who) {
  std::vector<uint64_t> out;
  absl::StatusOr<std::vector<TopupRecord>> topups = e.ListTopups(who);
  EXPECT_TRUE(topups.ok()) << topups.status();
  for (const TopupRecord& r : topups.value_or(std::vector<TopupRecord>{})) out.push_back(r.Left());
  return out;
}

TEST_P(EngineTest, TopUpsAreUsedAfterTheLimitOldestExpiryFirstAndOutliveThePeriod) {
  // Period [Nov 8 10:00, Dec 8 10:00); starter sells 5,000 credits.
  Principal p = NewTenant("tops", "starter");
  const MeterId credits = *cfg_->catalog.FindMeter("credits");
  ASSERT_TRUE(Consume(p, "credits", 4000)->allowed);
  auto never = BuyTopup(*engine_, p, "credits", 20000);
  ASSERT_TRUE(never.ok()) << never.status();
  EXPECT_EQ(never->expires_at, absl::InfiniteFuture());
  auto soon = BuyTopup(*engine_, p, "credits", 5000, 30);  // lapses Dec 23 12:00
  ASSERT_TRUE(soon.ok()) << soon.status();
  EXPECT_EQ(soon->expires_at, T("2026-12-23T12:00:00Z"));
  EXPECT_EQ(engine_->CurrentUsage(p).limits[credits], 30000u);
  // 1,000 from the plan, then 1,000 from the top-up that lapses first.
  auto d = Consume(p, "credits", 2000);
  ASSERT_TRUE(d->allowed);
  EXPECT_EQ(d->limit, 30000u);
  EXPECT_EQ(d->remaining, 24000u);
  EXPECT_THAT(Balances(*engine_, p), ElementsAre(4000u, 20000u));
  // Bad input changes nothing.
  EXPECT_EQ(MachineCode(BuyTopup(*engine_, p, "credits", 1234).status()), "invalid_pack_size");
  EXPECT_EQ(MachineCode(BuyTopup(*engine_, p, "groups_active", 1).status()), "no_topup_packs");
  EXPECT_EQ(MachineCode(BuyTopup(*engine_, p, "warp", 1).status()), "unknown_meter");
  EXPECT_EQ(MachineCode(BuyTopup(*engine_, p, "credits", 5000, 0).status()), "invalid_expiry");
  Principal contract = NewTenant("tops-unlimited", "enterprise");  // no limits until set
  EXPECT_EQ(MachineCode(BuyTopup(*engine_, contract, "credits", 5000).status()), "unlimited_meter");
  flaky_->fail = true;
  EXPECT_FALSE(BuyTopup(*engine_, p, "credits", 5000).ok());
  EXPECT_FALSE(Consume(p, "credits", 10).ok());  // the draw is taken back
  flaky_->fail = false;
  EXPECT_THAT(Balances(*engine_, p), ElementsAre(4000u, 20000u));
  // What is drawn is kept across a restart.
  Reopen();
  p = Who("tops");
  EXPECT_THAT(Balances(*engine_, p), ElementsAre(4000u, 20000u));
  EXPECT_FALSE(Consume(p, "credits", 24001)->allowed);
  // The next period: the plan's 5,000 first, then 4,000 + 1,000 of the top-ups.
  clock_.Set(T("2026-12-09T00:00:00Z"));
  ASSERT_TRUE(Consume(p, "credits", 5000)->allowed);
  EXPECT_THAT(Balances(*engine_, p), ElementsAre(4000u, 20000u));
  ASSERT_TRUE(Consume(p, "credits", 5000)->allowed);
  EXPECT_THAT(Balances(*engine_, p), ElementsAre(0u, 19000u));
  // A lapsed top-up's units are gone; the rest stay.
  clock_.Set(T("2026-12-23T12:00:00Z"));
  EXPECT_THAT(Balances(*engine_, p), ElementsAre(19000u));
  EXPECT_EQ(engine_->CurrentUsage(p).limits[credits], 29000u);
  auto sub = engine_->Subscription(p);
  ASSERT_TRUE(sub.ok());
  std::vector<std::string> kinds;
  for (const auto& ch : sub->changes) kinds.push_back(ch.kind);
  EXPECT_THAT(kinds, ElementsAre("topup_added", "topup_added"));
}

TEST_P(EngineTest, SendsDrawCreditTopUpsInTheSameDecision) {
  // Starter: 1,000 messages, 5,000 credits; a text on the default channel costs 1.
  Principal p = NewTenant("sends", "starter");
  ASSERT_TRUE(Consume(p, "credits", 5000)->allowed);
  EXPECT_FALSE(Consume(p, "messages_sent", 1)->allowed);  // no credits left
  ASSERT_TRUE(BuyTopup(*engine_, p, "credits", 5000).ok());
  auto d = Consume(p, "messages_sent", 10);
  ASSERT_TRUE(d->allowed);
  ASSERT_TRUE(d->credits.has_value());
  EXPECT_EQ(d->credits->limit, 10000u);
  EXPECT_EQ(d->credits->remaining, 4990u);
  EXPECT_THAT(Balances(*engine_, p), ElementsAre(4990u));
}

QUOTUM_FOR_EVERY_STORE(EngineTest);

}  // namespace
}  // namespace quotum::engine
