// Engine: metering decisions (check, consume, api_call counting).
#include <limits>

#include "absl/strings/str_cat.h"
#include "quotum/core/quota.h"
#include "quotum/engine/alerts.h"
#include "quotum/engine/engine.h"
#include "quotum/engine/errors.h"
#include "quotum/engine/send_messages.h"

namespace quotum::engine {
namespace {

constexpr size_t kMaxIdempotencyKey = 255;

absl::Status KeyReused() {
  return Unprocessable("idempotency_key_reused",
                       "This Idempotency-Key was already used for a different request; use a new "
                       "key.");
}

/// Runs `done` with `r` once the caller has released the tenant lock.
absl::AnyInvocable<void()> ReplyLater(Engine::Callback<Decision>& done,
                                      absl::StatusOr<Decision> r) {
  return [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); };
}

}  // namespace

absl::Status Engine::Validate(const MeterRequest& req, MeterId* meter) const {
  const Catalog& cat = *opts_.catalog;
  auto m = cat.FindMeter(req.meter);
  const bool ends_hold = req.hold && *req.hold != HoldCheck::Op::kReserve;
  if (ends_hold && (!m || cat.meters[*m].kind != MeterKind::kCounter ||
                    cat.meters[*m].reported_by_server || *m == messages_sent_meter_)) {
    return ReservationNotFound(req.hold_id);  // its id names no meter that can be held
  }
  if (!m) {
    return Unprocessable("unknown_meter", absl::StrCat("Unknown meter \"", req.meter, "\"."));
  }
  if (cat.meters[*m].kind != MeterKind::kCounter) {
    return Unprocessable("gauge_meter",
                         absl::StrCat("\"", req.meter,
                                      "\" is a concurrent (gauge) meter; it changes through "
                                      "sessions and groups, not by consuming units."));
  }
  if (cat.meters[*m].reported_by_server) {
    return Error(absl::StatusCode::kPermissionDenied, "meter_not_reportable",
                 absl::StrCat("\"", req.meter,
                              "\" is counted by the server itself; it cannot be reported."));
  }
  if (req.hold) return ValidateHold(req, *m, meter);
  if (req.quantity == 0) {
    return Unprocessable("invalid_quantity", "quantity must be a positive integer.");
  }
  if (!req.channel.empty() && !cat.HasChannel(req.channel)) {
    return Unprocessable("unknown_channel", absl::StrCat("Unknown channel \"", req.channel, "\"."));
  }
  if (req.idempotency_key.size() > kMaxIdempotencyKey) {
    return BadRequest("invalid_idempotency_key", "Idempotency-Key is longer than 255 characters.");
  }
  *meter = *m;
  return absl::OkStatus();
}

absl::Status Engine::ValidateHold(const MeterRequest& req, MeterId m, MeterId* meter) const {
  if (m == messages_sent_meter_) {
    return Unprocessable("not_reservable",
                         "messages_sent is charged when a message is sent (with its credits); "
                         "it cannot be reserved.");
  }
  if (*req.hold == HoldCheck::Op::kReserve) {
    if (req.quantity == 0) {
      return Unprocessable("invalid_quantity", "quantity must be a positive integer.");
    }
    if (req.hold_ttl < kMinReservationTtl || req.hold_ttl > kMaxReservationTtl) {
      return Unprocessable(
          "invalid_ttl", absl::StrCat("ttl_s must lie in [", kMinReservationTtl / absl::Seconds(1),
                                      ", ", kMaxReservationTtl / absl::Seconds(1), "] seconds."));
    }
  }
  if (!req.channel.empty() && !opts_.catalog->HasChannel(req.channel)) {
    return Unprocessable("unknown_channel", absl::StrCat("Unknown channel \"", req.channel, "\"."));
  }
  if (req.idempotency_key.size() > kMaxIdempotencyKey) {
    return BadRequest("invalid_idempotency_key", "Idempotency-Key is longer than 255 characters.");
  }
  *meter = m;
  return absl::OkStatus();
}

absl::StatusOr<std::optional<BillingPeriod>> Engine::LatePeriodOf(const TenantState& t,
                                                                  const MeterRequest& req,
                                                                  absl::Time now) const {
  const absl::Time at = req.at.value_or(now);
  if (at >= t.period.start && at <= now + opts_.max_clock_skew) return std::nullopt;
  const BillingPeriod previous =
      PeriodAt(t.subscription_start, t.plan->interval, t.period.start - absl::Nanoseconds(1));
  const absl::Time grace_end = t.period.start + opts_.late_event_grace;
  if (at > now || at < previous.start || at < t.subscription_start) {
    return Unprocessable(
        "timestamp_out_of_period",
        absl::StrCat("timestamp must lie in the current billing period [",
                     FormatRfc3339(t.period.start), ", now], or in the one before until ",
                     FormatRfc3339(grace_end), "; usage of other periods is closed."));
  }
  if (now >= grace_end) {
    return Unprocessable(
        "late_event_too_late",
        absl::StrCat("timestamp lies in the billing period that ended at ",
                     FormatRfc3339(t.period.start), "; its late events were accepted until ",
                     FormatRfc3339(grace_end), "."));
  }
  if (!req.session_id.empty()) {
    return Unprocessable("late_send",
                         "A send through a session happens now: its timestamp must lie in the "
                         "current billing period.");
  }
  return previous;
}

absl::Status Engine::FindSendingSession(TenantState& t, const std::string& id,
                                        SessionState** session) const {
  *session = nullptr;
  if (id.empty()) return absl::OkStatus();
  auto it = t.Leases().sessions.find(id);
  if (it == t.Leases().sessions.end()) {
    return Error(absl::StatusCode::kNotFound, "session_not_found",
                 absl::StrCat("No session \"", id, "\"."));
  }
  if (it->second.status != "working") {
    return Error(absl::StatusCode::kAborted, "session_not_working",
                 absl::StrCat("Session \"", id, "\" is ", it->second.status,
                              "; only a working session can send."));
  }
  *session = &it->second;
  return absl::OkStatus();
}

std::vector<std::pair<size_t, absl::Status>> Engine::ValidateBatch(
    const Principal& who, const std::vector<MeterRequest>& reqs) {
  std::vector<std::pair<size_t, absl::Status>> bad;
  TenantState& t = *who.tenant;
  MutexLock lock(&t.mu);
  const absl::Time now = clock_->Now();
  Touch(t, now);
  for (size_t i = 0; i < reqs.size(); ++i) {
    MeterId m = 0;
    SessionState* session = nullptr;
    absl::Status s = Validate(reqs[i], &m);
    if (s.ok()) s = LatePeriodOf(t, reqs[i], now).status();
    if (s.ok()) s = FindSendingSession(t, reqs[i].session_id, &session);
    if (!s.ok()) bad.emplace_back(i, std::move(s));
  }
  return bad;
}

void Engine::Consume(const Principal& who, MeterRequest req, Callback<Decision> done) {
  MeterId m = 0;
  if (absl::Status s = Validate(req, &m); !s.ok()) return done(s);
  if (req.channel.empty()) req.channel = opts_.catalog->channels.front();
  if (opts_.shared_ledger) return ConsumeShared(who, m, std::move(req), std::move(done));
  TenantState& t = *who.tenant;
  absl::AnyInvocable<void()> after_unlock;
  {
    MutexLock lock(&t.mu);
    after_unlock = ConsumeLocked(who, t, m, req, done);
  }
  if (after_unlock) after_unlock();
}

absl::AnyInvocable<void()> Engine::ConsumeLocked(const Principal& who, TenantState& t, MeterId m,
                                                 MeterRequest& req, Callback<Decision>& done) {
  const absl::Time now = clock_->Now();
  Touch(t, now);
  const absl::Time at = req.at.value_or(now);
  absl::StatusOr<std::optional<BillingPeriod>> late = LatePeriodOf(t, req, now);
  if (!late.ok()) return ReplyLater(done, late.status());
  // Sending through a session: it must exist and be working (a replay is
  // answered whatever the session became since).
  SessionState* session = nullptr;
  const absl::Status sending = FindSendingSession(t, req.session_id, &session);
  const CheckProgram program = CompileChecks(CompileInputOf(t, who, session, now, *late), req, m);
  MemoryLedger ledger = LedgerFor(t, session);
  absl::StatusOr<LedgerResult> x =
      sending.ok() ? ledger.Execute(program, now) : ledger.Replay(program, now);
  if (!x.ok()) return ReplyLater(done, x.status());
  if (x->replay != LedgerResult::Replay::kNone) return AnswerKnownKey(t, program, *x, done);
  if (x->hold_missing) return ReplyLater(done, ReservationNotFound(program.hold->id));
  if (x->hold_exists) return ReplyLater(done, ReservationExists(program.hold->id));
  if (!sending.ok()) return ReplyLater(done, sending);
  CountDecision(x->decision, m);
  if (program.dry_run) {
    if (x->decision.allowed && program.count_api_call) PersistApiCallLocked(t, now);
    return ReplyLater(done, std::move(x->decision));
  }
  return CommitConsume(t, program, req, at, session, std::move(*x), now, done);
}

void Engine::ConsumeShared(const Principal& who, MeterId m, MeterRequest req,
                           Callback<Decision> done) {
  auto c = std::make_unique<PendingConsume>();
  c->who = who;
  c->req = std::move(req);
  c->meter = m;
  c->now = clock_->Now();
  c->at = c->req.at.value_or(c->now);
  c->done = std::move(done);
  absl::Status sending;
  absl::StatusOr<CheckProgram> program =
      CompileLocked(c->who, *who.tenant, m, c->req, c->now, &sending);
  if (program.ok() && !sending.ok()) {
    // This instance's view of the session may be old: look again, which
    // takes Redis round trips, on the blocking pool (not the caller's thread).
    return blocking_pool_->Run([this, c = std::move(c)]() mutable {
      if (absl::Status s = SharedSessions(c->who).status(); !s.ok()) return c->done(s);
      absl::Status sending;
      absl::StatusOr<CheckProgram> program =
          CompileLocked(c->who, *c->who.tenant, c->meter, c->req, c->now, &sending);
      DecideShared(std::move(c), std::move(program), sending);
    });
  }
  DecideShared(std::move(c), std::move(program), sending);
}

void Engine::DecideShared(std::unique_ptr<PendingConsume> c, absl::StatusOr<CheckProgram> program,
                          const absl::Status& sending) {
  if (!program.ok()) return c->done(program.status());
  c->program = std::move(*program);
  c->facts = UsageFacts{c->req.meter, c->req.channel, c->program.quota.period.start,
                        c->at,        c->now,         c->req.quantity,
                        {},           std::nullopt,   {},
                        {},           std::nullopt,   std::nullopt};
  c->facts.messages = std::move(c->req.messages);
  c->facts.queue_rest = c->req.queue_rest;
  if (c->program.quota.late_period) {
    c->facts.late_period_start = c->program.quota.late_period->start;
  }
  if (c->program.credits) {
    const CreditsCheck& credits = *c->program.credits;
    c->facts.credits = CreditsFacts{
        credits.per_unit, credits.limit,
        std::vector<int>(credits.alert_thresholds.begin(), credits.alert_thresholds.end())};
    c->facts.period_end = c->program.quota.period.end;
  }
  if (c->program.quota.limit) {
    c->facts.limit = c->program.quota.limit;
    c->facts.period_end = c->program.quota.period.end;
    c->facts.thresholds.assign(c->program.quota.alert_thresholds.begin(),
                               c->program.quota.alert_thresholds.end());
  }
  c->program.facts = &c->facts;
  SharedLedger& ledger = *opts_.shared_ledger;
  if (!sending.ok()) {
    // The session cannot send; only a replay of an earlier send is answered
    // (a blocking call: this runs on the blocking pool).
    absl::StatusOr<LedgerResult> known = ledger.Replay(c->program, c->now);
    if (!known.ok()) return c->done(known.status());  // never fails open: it cannot send
    if (known->replay == LedgerResult::Replay::kNone) return c->done(sending);
    return FinishShared(std::move(c), std::move(known));
  }
  PendingConsume* pending = c.get();
  ledger.ExecuteAsync(pending->program, pending->now,
                      [this, c = std::move(c)](absl::StatusOr<LedgerResult> x) mutable {
                        FinishShared(std::move(c), std::move(x));
                      });
}

void Engine::FinishShared(std::unique_ptr<PendingConsume> c, absl::StatusOr<LedgerResult> x) {
  if (x.ok() && (x->needs_baseline || x->session != LedgerResult::SessionCheck::kOk)) {
    // Rare (a tenant's first decision in Redis, Redis came back empty, a
    // session changed on another instance): PostgreSQL and Redis
    // round trips, on the blocking pool rather than the ledger's thread,
    // whose other decisions would wait behind them.
    return blocking_pool_->Run([this, c = std::move(c), x = std::move(x)]() mutable {
      FinishSharedSlowly(std::move(c), std::move(x));
    });
  }
  AnswerShared(std::move(c), std::move(x));
}

void Engine::FinishSharedSlowly(std::unique_ptr<PendingConsume> c, absl::StatusOr<LedgerResult> x) {
  if (x->needs_baseline) x = ExecuteShared(*c->who.tenant, c->program, c->now);
  if (x.ok() && x->session != LedgerResult::SessionCheck::kOk) {
    if (absl::Status s = ResendShared(*c); !s.ok()) return c->done(s);
    x = ExecuteShared(*c->who.tenant, c->program, c->now);
    if (x.ok() && x->session != LedgerResult::SessionCheck::kOk) {
      return c->done(Error(absl::StatusCode::kUnavailable, "store_unavailable",
                           "The session kept changing while this send was decided; retry."));
    }
  }
  AnswerShared(std::move(c), std::move(x));
}

void Engine::AnswerShared(std::unique_ptr<PendingConsume> c, absl::StatusOr<LedgerResult> x) {
  // A late event is never admitted unchecked: its units belong to a closed
  // period, which fail-open reconciliation does not amend. Nor is a
  // reservation operation: its units are held in the ledger that is away.
  if (!x.ok() && FailsOpen(x.status()) && !c->program.quota.late_period && !c->program.hold &&
      !c->req.no_fail_open) {
    return ConsumeFailOpen(std::move(c));
  }
  if (!x.ok()) return c->done(x.status());
  if (x->replay == LedgerResult::Replay::kKeyReused) return c->done(KeyReused());
  if (x->hold_missing) return c->done(ReservationNotFound(c->program.hold->id));
  if (x->hold_exists) return c->done(ReservationExists(c->program.hold->id));
  if (x->replay == LedgerResult::Replay::kReplayed) return c->done(std::move(x->decision));
  CountDecision(x->decision, c->meter);
  drain_->Notify(c->who.tenant->id);
  c->done(std::move(x->decision));
}

absl::Status Engine::ResendShared(PendingConsume& c) {
  if (absl::Status s = SharedSessions(c.who).status(); !s.ok()) return s;
  absl::Status sending;
  // The messages went to the facts; the tier check is compiled from them
  // (moving a vector keeps its elements where they are, so views stay valid).
  c.req.messages = std::move(c.facts.messages);
  absl::StatusOr<CheckProgram> program =
      CompileLocked(c.who, *c.who.tenant, c.meter, c.req, c.now, &sending);
  c.facts.messages = std::move(c.req.messages);
  if (!program.ok()) return program.status();
  if (!sending.ok()) return sending;
  c.program = std::move(*program);
  c.program.facts = &c.facts;
  return absl::OkStatus();
}

absl::StatusOr<LedgerResult> Engine::ExecuteShared(TenantState& t, const CheckProgram& p,
                                                   absl::Time now) {
  absl::StatusOr<LedgerResult> x = opts_.shared_ledger->Execute(p, now);
  if (!x.ok() || !x->needs_baseline) return x;
  if (absl::Status s = GiveBaseline(t); !s.ok()) return s;
  x = opts_.shared_ledger->Execute(p, now);
  if (x.ok() && x->needs_baseline) {
    return Error(absl::StatusCode::kUnavailable, "store_unavailable",
                 "The counter store lost its baseline again; retry.");
  }
  return x;
}

absl::Status Engine::GiveBaseline(TenantState& t) {
  BillingPeriod period;
  {
    MutexLock lock(&t.mu);
    period = t.period;
  }
  auto rows = store_->Periods(t.id, period.start);
  if (!rows.ok()) return StoreUnavailable("The usage aggregates");
  std::vector<std::pair<std::string, uint64_t>> values;
  for (const CounterRow& r : *rows) {
    auto m = opts_.catalog->FindMeter(r.meter);
    if (!m || opts_.catalog->meters[*m].kind != MeterKind::kCounter) continue;
    if (r.period_start == period.start) values.emplace_back(r.meter, r.value);
  }
  absl::StatusOr<TenantLeaseRows> leases = store_->LeaseRows(t.id);
  if (!leases.ok()) return StoreUnavailable("The sessions and groups");
  absl::StatusOr<std::vector<TopupRecord>> topups = store_->Topups(t.id, clock_->Now());
  if (!topups.ok()) return StoreUnavailable("The top-ups");
  if (absl::Status s = opts_.shared_ledger->RestoreTopups(t.id, *topups); !s.ok()) return s;
  return opts_.shared_ledger->SetBaseline(
      t.id, period, values, LeaseBaseline{std::move(*leases), opts_.session_lease_ttl});
}

absl::StatusOr<CheckProgram> Engine::CompileLocked(const Principal& who, TenantState& t, MeterId m,
                                                   const MeterRequest& req, absl::Time now,
                                                   absl::Status* sending) {
  MutexLock lock(&t.mu);
  Touch(t, now);
  absl::StatusOr<std::optional<BillingPeriod>> late = LatePeriodOf(t, req, now);
  if (!late.ok()) return late.status();
  SessionState* session = nullptr;
  *sending = FindSendingSession(t, req.session_id, &session);
  return CompileChecks(CompileInputOf(t, who, session, now, *late), req, m);
}

absl::Status Engine::CommitDrained(CommitBatch batch) {
  return AwaitCommit(
      [&](CommitQueue::Done& done) { return queue_.CommitAlone(std::move(batch), done); });
}

absl::Status Engine::AwaitCommit(absl::FunctionRef<bool(CommitQueue::Done&)> submit) {
  Mutex mu;
  CondVar committed;
  std::optional<absl::Status> status;
  CommitQueue::Done done = [&](const absl::Status& s) {
    MutexLock lock(&mu);
    // A copy of its own: a shared error payload's reference count lives in
    // Debian's uninstrumented Abseil, where ThreadSanitizer cannot see that
    // the writer's last reference is dropped only after this one is taken.
    status = absl::Status(s.code(), s.message());
    committed.Signal();
  };
  if (!submit(done)) return absl::UnavailableError("the engine is stopping");
  MutexLock lock(&mu);
  while (!status) committed.Wait(&mu);
  return *status;
}

CompileInput Engine::CompileInputOf(const TenantState& t, const Principal& who,
                                    const SessionState* session, absl::Time now,
                                    std::optional<BillingPeriod> late_period) const {
  CompileInput in;
  in.tenant_id = t.id;
  in.rate_rules = &opts_.rate_rules;
  in.messages_sent_meter = messages_sent_meter_;
  in.credits_meter = credits_meter_;
  in.plan = t.plan;
  in.profile = t.profile;
  in.overrides = &t.overrides;
  in.catalog = opts_.catalog;
  in.addons = &t.addons;
  in.topups = &t.topups;
  in.period = t.period;
  in.late_period = late_period;
  in.key_id = who.key_id;
  in.key_limits = who.limits;
  in.session = session;
  in.now = now;
  return in;
}

MemoryLedger Engine::LedgerFor(TenantState& t, SessionState* session) const {
  return MemoryLedger(t, session, {api_calls_meter_, opts_.idempotency_ttl});
}

absl::AnyInvocable<void()> Engine::AnswerKnownKey(TenantState& t, const CheckProgram& p,
                                                  LedgerResult r, Callback<Decision>& done) {
  switch (r.replay) {
    case LedgerResult::Replay::kKeyReused:
      return ReplyLater(done, KeyReused());
    case LedgerResult::Replay::kFirstPending: {
      // The first request is still being written: answer once it is
      // committed or undone (ConsumeCompletion runs the waiters).
      IdempotencyEntry& first = t.Traffic().idempotency.find(p.idempotency_key)->second;
      if (!first.waiters)
        first.waiters = std::make_unique<std::vector<absl::AnyInvocable<void()>>>();
      first.waiters->push_back(
          [wait = AwaitFirstCommit(t, std::string(p.idempotency_key), std::move(done))]() mutable {
            wait(absl::OkStatus());
          });
      return nullptr;
    }
    default:
      return ReplyLater(done, std::move(r.decision));
  }
}

CommitQueue::Done Engine::AwaitFirstCommit(TenantState& t, std::string key,
                                           Callback<Decision> done) {
  return [tp = &t, key = std::move(key), done = std::move(done)](const absl::Status& s) mutable {
    absl::StatusOr<Decision> r =
        s.ok() ? absl::StatusOr<Decision>(Decision{}) : absl::StatusOr<Decision>(s);
    {
      MutexLock l(&tp->mu);
      auto e = tp->Traffic().idempotency.find(key);
      if (s.ok() && e != tp->Traffic().idempotency.end() && e->second.committed) {
        r = e->second.decision;
        r->replayed = true;
      } else if (s.ok()) {
        r = Error(absl::StatusCode::kUnavailable, "store_unavailable",
                  "The first request with this Idempotency-Key did not commit; retry.");
      }
    }
    done(std::move(r));
  };
}

absl::AnyInvocable<void()> Engine::CommitConsume(TenantState& t, const CheckProgram& p,
                                                 MeterRequest& req, absl::Time at,
                                                 const SessionState* session, LedgerResult x,
                                                 absl::Time now, Callback<Decision>& done) {
  const uint64_t charged = x.verdicts.charged;
  ConsumeCharge c;
  c.meter = p.quota.meter;
  c.units = charged;
  c.period_start = p.quota.period.start;
  c.late = p.quota.late_period.has_value();
  c.api_call = p.count_api_call;
  std::optional<SessionRecord> session_rec;
  if (p.warmup && charged > 0) {
    c.warm_session = req.session_id;
    c.warm_day = p.warmup->day;
  }
  NoteTierRecorded(req.session_id, session, x.verdicts, c);
  if (!c.warm_session.empty() || !c.tier_session.empty()) {
    session_rec = SessionRecordOf(t, req.session_id, *session);
  }
  std::optional<ReservationRecord> reserved;
  if (p.hold && x.decision.allowed) {
    c.hold_id = std::string(p.hold->id);
    c.hold =
        HeldUnits{p.quota.meter, x.decision.reservation->units, x.decision.reservation->expires_at};
    c.reserved = p.hold->op == HoldCheck::Op::kReserve;
    if (c.reserved) {
      reserved =
          ReservationRecord{t.id, c.hold_id, req.meter, c.hold.units, now, c.hold.expires_at};
    }
  }
  std::optional<IdempotencyRecord> idem_rec;
  if (!p.idempotency_key.empty()) {
    c.idempotency_key = req.idempotency_key;
    idem_rec = IdempotencyRecord{t.id, req.idempotency_key, p.fingerprint, x.decision, now};
  }
  const uint64_t admitted = x.decision.allowed ? charged : 0;
  c.topup_draws = std::move(x.verdicts.topup_draws);
  std::vector<AlertRecord> alerts =
      AlertsOfCharge(ChargeOfMeter{t.id, req.meter, p.quota.period, x.verdicts.quota_before,
                                   charged, x.verdicts.quota_limit, p.quota.alert_thresholds, now});
  if (p.credits) {
    c.credits_meter = p.credits->meter;
    c.credits = x.verdicts.credits_charged;
    for (AlertRecord& a : AlertsOfCharge(ChargeOfMeter{
             t.id, meters::kCredits, p.quota.period, x.verdicts.credits_before, c.credits,
             x.verdicts.credits_limit, p.credits->alert_thresholds, now})) {
      alerts.push_back(std::move(a));
    }
  }
  CommitQueue::Done finish = ConsumeCompletion(t, c, std::move(x.decision), std::move(done));
  // What a journal record cannot carry (sessions, reservations, messages,
  // events) goes through the store's writer.
  const bool journalable = !session_rec && !reserved && c.hold_id.empty() &&
                           (req.messages.empty() || admitted == 0) && alerts.empty();
  bool queued = EnqueueEffects(
      t, journalable,
      [&](CommitBatch& b) {
        if (c.units > 0) {
          b.usage.push_back(
              UsageDelta{t.id, req.meter, req.channel, p.quota.UnitsPeriod().start, at, c.units});
        }
        if (c.credits > 0) {
          b.usage.push_back(UsageDelta{t.id, std::string(meters::kCredits), req.channel,
                                       p.quota.UnitsPeriod().start, at, c.credits});
        }
        if (c.api_call) {
          b.usage.push_back(ApiCallRow(t, c.period_start, now));
        }
        if (idem_rec) b.idempotency.push_back(std::move(*idem_rec));
        for (const auto& [id, units] : c.topup_draws) b.topup_draws.push_back({t.id, id, units});
        if (reserved) b.reservations.push_back(std::move(*reserved));
        if (!c.hold_id.empty() && !c.reserved) b.ended_reservations.emplace_back(t.id, c.hold_id);
        AppendSendMessages(req.messages, admitted, req.queue_rest, b);
        if (session_rec) b.sessions.push_back(*session_rec);
        AppendReached(alerts, b);
      },
      finish);
  if (queued) return nullptr;
  return FailLater(std::move(finish));
}

CommitQueue::Done Engine::ConsumeCompletion(TenantState& t, ConsumeCharge c, Decision d,
                                            Callback<Decision> done) {
  return [this, tp = &t, c = std::move(c), d = std::move(d),
          done = std::move(done)](const absl::Status& s) mutable {
    // A plain success has nothing to mark or undo: the tenant lock is left alone.
    std::unique_ptr<std::vector<absl::AnyInvocable<void()>>> waiters;
    if (!s.ok() || !c.idempotency_key.empty()) {
      MutexLock l(&tp->mu);
      if (auto e = tp->Traffic().idempotency.find(c.idempotency_key);
          !c.idempotency_key.empty() && e != tp->Traffic().idempotency.end()) {
        e->second.committed = s.ok();
        waiters = std::move(e->second.waiters);
      }
      if (!s.ok()) UndoConsume(*tp, c);
    }
    if (waiters) {
      for (auto& w : *waiters) w();
    }
    if (!s.ok()) return done(s);
    done(std::move(d));
  };
}

void Engine::UndoConsume(TenantState& t, const ConsumeCharge& c) {
  if (t.period.start == c.period_start) {
    if (!c.late) {
      t.used[c.meter] -= std::min(t.used[c.meter], c.units);
      t.used[c.credits_meter] -= std::min(t.used[c.credits_meter], c.credits);
    }
    if (c.api_call && t.used[api_calls_meter_] > 0) t.used[api_calls_meter_] -= 1;
  }
  if (!c.warm_session.empty()) {
    auto ws = t.Leases().sessions.find(c.warm_session);
    if (ws != t.Leases().sessions.end() && ws->second.warmup_day == c.warm_day) {
      ws->second.warmup_count -= std::min(ws->second.warmup_count, c.units);
    }
  }
  if (!c.tier_session.empty()) UndoTier(t, c);
  if (!c.idempotency_key.empty()) t.Traffic().idempotency.erase(c.idempotency_key);
  for (const auto& [id, units] : c.topup_draws) {
    for (TopupRecord& r : t.topups) {
      if (r.id == id) r.drawn -= std::min(r.drawn, units);
    }
  }
  if (c.reserved) {
    t.Traffic().holds.Remove(c.hold_id);
  } else if (!c.hold_id.empty()) {
    t.Traffic().holds.Add(c.hold_id, c.hold);  // held again
  }
}

void Engine::NoteTierRecorded(const std::string& session_id, const SessionState* session,
                              Verdicts& v, ConsumeCharge& c) {
  if (v.tier_recorded.empty()) return;
  c.tier_session = session_id;
  c.tier_recorded = std::move(v.tier_recorded);
  c.tier_level_before = v.tier_level_before;
  if (session->tier) c.tier_level_after = session->tier->level;
}

void Engine::UndoTier(TenantState& t, const ConsumeCharge& c) {
  auto ws = t.Leases().sessions.find(c.tier_session);
  if (ws == t.Leases().sessions.end() || !ws->second.tier) return;
  SessionTier& st = *ws->second.tier;
  for (const TierRecord& r : c.tier_recorded) st.window.Restore(r.to, r.record, r.previous);
  if (st.level == c.tier_level_after) {
    st.level = c.tier_level_before;
    // Decisions since may have reached the threshold on their own.
    if (t.plan->messaging_tiers) {
      MarkQualified(*t.plan->messaging_tiers, st.window.unique_7d(), st.window.now_ms(), st.level);
    }
  }
}

bool Engine::EnqueueEffects(TenantState& t, bool journalable,
                            absl::FunctionRef<void(CommitBatch&)> fill, CommitQueue::Done& done) {
  Journal* j = journalable && journals_ ? Journal::OfThisThread() : nullptr;
  if (j && journals_->Owns(j)) return j->Append(t.journaled, fill, done);
  return queue_.Enqueue(fill, done);
}

absl::AnyInvocable<void()> Engine::FailLater(CommitQueue::Done done) {
  return [done = std::move(done)]() mutable { done(ShuttingDown()); };
}

void Engine::CountApiCallLocked(TenantState& t, absl::Time now) {
  SaturatingIncrement(t.used[api_calls_meter_]);
  PersistApiCallLocked(t, now);
}

void Engine::PersistApiCallLocked(TenantState& t, absl::Time now) {
  const absl::Time period_start = t.period.start;
  // Best effort: the caller does not wait. A failed commit takes the unit back.
  CommitQueue::Done undo = [this, tp = &t, period_start](const absl::Status& s) {
    if (s.ok()) return;
    MutexLock l(&tp->mu);
    if (tp->period.start == period_start && tp->used[api_calls_meter_] > 0)
      tp->used[api_calls_meter_] -= 1;
  };
  bool queued = queue_.Enqueue(
      [&](CommitBatch& b) { b.usage.push_back(ApiCallRow(t, period_start, now)); }, undo);
  if (!queued && t.used[api_calls_meter_] > 0) t.used[api_calls_meter_] -= 1;
}

}  // namespace quotum::engine
