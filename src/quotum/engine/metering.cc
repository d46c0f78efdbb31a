// Engine: metering decisions (check, consume, api_call counting).
#include <limits>

#include "absl/strings/str_cat.h"
#include "quotum/core/quota.h"
#include "quotum/engine/engine.h"
#include "quotum/engine/errors.h"

namespace quotum::engine {
namespace {

constexpr size_t kMaxIdempotencyKey = 255;

uint64_t FingerprintOf(const MeterRequest& r) {
  return StableHash(absl::StrCat(r.operation, "|", r.meter, "|", r.quantity, "|", r.channel, "|",
                                 r.partial ? 1 : 0, "|", r.session_id));
}

}  // namespace

absl::Status Engine::Validate(const MeterRequest& req, MeterId* meter) const {
  const Catalog& cat = *opts_.catalog;
  auto m = cat.FindMeter(req.meter);
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

absl::Status Engine::CheckTimestamp(const TenantState& t, absl::Time at, absl::Time now) const {
  if (at >= t.period.start && at <= now + opts_.max_clock_skew) return absl::OkStatus();
  return Unprocessable(
      "timestamp_out_of_period",
      absl::StrCat("timestamp must lie in the current billing period [",
                   FormatRfc3339(t.period.start), ", now]; usage of other periods is closed."));
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
    if (s.ok()) s = CheckTimestamp(t, reqs[i].at.value_or(now), now);
    if (s.ok()) s = FindSendingSession(t, reqs[i].session_id, &session);
    if (!s.ok()) bad.emplace_back(i, std::move(s));
  }
  return bad;
}

void Engine::Consume(const Principal& who, MeterRequest req, Callback<Decision> done) {
  MeterId m = 0;
  if (absl::Status s = Validate(req, &m); !s.ok()) return done(s);
  if (req.channel.empty()) req.channel = opts_.catalog->channels.front();
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
  auto reply = [&done](absl::StatusOr<Decision> r) -> absl::AnyInvocable<void()> {
    return [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); };
  };
  const absl::Time now = clock_->Now();
  const uint64_t fingerprint = req.idempotency_key.empty() || req.dry_run ? 0 : FingerprintOf(req);
  Touch(t, now);
  const absl::Time at = req.at.value_or(now);
  if (absl::Status s = CheckTimestamp(t, at, now); !s.ok()) return reply(s);

  const bool idempotent = !req.idempotency_key.empty() && !req.dry_run;
  if (idempotent) {
    auto it = t.Traffic().idempotency.find(req.idempotency_key);
    if (it != t.Traffic().idempotency.end() &&
        it->second.created_at + opts_.idempotency_ttl <= now) {
      t.Traffic().idempotency.erase(it);
      it = t.Traffic().idempotency.end();
    }
    if (it != t.Traffic().idempotency.end()) {
      if (it->second.fingerprint != fingerprint) {
        return reply(Unprocessable(
            "idempotency_key_reused",
            "This Idempotency-Key was already used for a different request; use a new key."));
      }
      if (it->second.committed) {
        Decision d = it->second.decision;
        d.replayed = true;
        return reply(d);
      }
      // The first request is still committing: answer once its batch is done.
      CommitQueue::Done wait = [tp = &t, key = req.idempotency_key,
                                done = std::move(done)](const absl::Status& s) mutable {
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
      if (queue_.Enqueue([](CommitBatch&) {}, wait)) return nullptr;
      return [wait = std::move(wait)]() mutable { wait(ShuttingDown()); };
    }
  }

  // Sending through a session: it must exist and be working.
  SessionState* session = nullptr;
  if (absl::Status s = FindSendingSession(t, req.session_id, &session); !s.ok()) return reply(s);
  const bool sends = session != nullptr && m == messages_sent_meter_ && !req.dry_run;

  // Every rule that applies, decided before anything is charged. The general
  // rule is charged once per HTTP request (with its api_call).
  RatePass pass;
  if (req.count_api_call && sends) {
    pass = EvaluateRates(t, who,
                         {{ratelimit::Category::kGeneral, who.key_id},
                          {ratelimit::Category::kMessages, req.session_id, req.quantity}},
                         now);
  } else if (req.count_api_call) {
    pass = EvaluateRates(t, who, {{ratelimit::Category::kGeneral, who.key_id}}, now);
  } else if (sends) {
    pass = EvaluateRates(t, who, {{ratelimit::Category::kMessages, req.session_id, req.quantity}},
                         now);
  }

  // Warm-up: a daily cap per session while its number is new.
  uint64_t quantity = req.quantity;
  int64_t warm_day = 0;
  const std::optional<uint64_t> warm_cap =
      sends ? WarmupCap(t, *session, now, &warm_day) : std::nullopt;
  const uint64_t warm_used =
      warm_cap && session->warmup_day == warm_day ? session->warmup_count : 0;
  bool warm_denied = false;
  if (warm_cap) {
    const uint64_t left = *warm_cap > warm_used ? *warm_cap - warm_used : 0;
    if (quantity > left) {
      if (t.plan->warmup_shadow) {
        pass.shadow_denied.push_back("warmup");
      } else if (req.partial && left > 0) {
        quantity = left;
      } else {
        warm_denied = true;
      }
    }
  }

  QuotaRequest qr;
  qr.used = t.used[m];
  qr.limit = EffectiveLimit(t, m);
  qr.quantity = quantity;
  qr.partial = req.partial;
  qr.on_limit = t.plan->on_limit[m];
  QuotaOutcome q = DecideQuota(qr);
  if (q.verdict == QuotaOutcome::Verdict::kOverflow) {
    return reply(
        Unprocessable("quantity_overflow",
                      absl::StrCat("quantity would take \"", req.meter, "\" past its maximum of ",
                                   kMaxCounter, " units; nothing was counted.")));
  }
  if (q.verdict == QuotaOutcome::Verdict::kDenied && t.plan->shadow[m]) {
    // Shadow mode: record the would-be denial, admit like a soft limit.
    pass.shadow_denied.push_back(req.meter);
    q.verdict = QuotaOutcome::Verdict::kAdmitted;
    q.overage = quantity - q.remaining;
    q.admitted = quantity;
    q.remaining = 0;
  }

  Decision d;
  if (pass.refused >= 0) d = RateDenial(pass);
  d.meter = req.meter;
  d.requested = req.quantity;
  d.limit = qr.limit;
  d.period_start = t.period.start;
  d.reset_at = t.period.end;
  d.warmup_cap = warm_cap;
  d.warmup_used = warm_used;
  d.rates = pass.outcomes;
  d.shadow_denied = std::move(pass.shadow_denied);
  if (pass.refused < 0 && warm_denied) {
    d.reason = DenyReason::kWarmupLimit;
    d.rule = "warmup";
    d.retry_ns = absl::ToInt64Nanoseconds(*session->first_working_at +
                                          absl::Hours(24) * (warm_day + 1) - now);
  } else if (pass.refused < 0 && q.verdict == QuotaOutcome::Verdict::kDenied) {
    d.reason = DenyReason::kQuotaExceeded;
    d.rule = req.meter;
  }
  d.allowed = d.reason == DenyReason::kNone;
  d.remaining = q.remaining;
  CountDecision(d, m);
  if (req.dry_run) {
    // A check reports what would be admitted and what is left now; it charges
    // no quota and remembers nothing. When it passes, its general rule and
    // api_call are charged like any request's.
    d.consumed = 0;
    if (q.verdict == QuotaOutcome::Verdict::kAdmitted && qr.limit) {
      d.remaining = q.remaining + q.admitted - q.overage;
    }
    if (!qr.limit) d.remaining = std::numeric_limits<uint64_t>::max();
    if (d.allowed && req.count_api_call) {
      ApplyRates(t, pass);
      CountApiCallLocked(t, now);
    }
    return reply(d);
  }
  if (d.allowed) {
    d.consumed = q.admitted;
    d.overage = q.overage;
    ApplyRates(t, pass);
  }

  // Apply in memory now, so that concurrent requests see it; undo on failure.
  const uint64_t charged = d.consumed;
  const absl::Time period_start = t.period.start;
  t.used[m] += charged;
  if (req.count_api_call) SaturatingIncrement(t.used[api_calls_meter_]);
  if (idempotent) {
    t.Traffic().idempotency[req.idempotency_key] = IdempotencyEntry{fingerprint, d, now, false};
    SweepIdempotency(t, now);
  }
  std::optional<SessionRecord> session_rec;
  if (sends && warm_cap && charged > 0) {
    session->warmup_day = warm_day;
    session->warmup_count = warm_used + charged;
    session_rec = SessionRecordOf(t, req.session_id, *session);
  }
  const bool write_message = req.message && d.allowed && charged == req.quantity;

  std::optional<IdempotencyRecord> idem_rec;
  if (idempotent) idem_rec = IdempotencyRecord{t.id, req.idempotency_key, fingerprint, d, now};
  CommitQueue::Done finish =
      [this, tp = &t, m, charged, period_start, count_api = req.count_api_call,
       warm_session = session_rec ? req.session_id : std::string(), warm_day,
       key = idempotent ? req.idempotency_key : std::string(), d = std::move(d),
       done = std::move(done)](const absl::Status& s) mutable {
        // A plain success has nothing to mark or undo: the tenant lock is left alone.
        if (!s.ok() || !key.empty()) {
          MutexLock l(&tp->mu);
          if (s.ok()) {  // then there is a key to mark committed
            auto e = tp->Traffic().idempotency.find(key);
            if (e != tp->Traffic().idempotency.end()) e->second.committed = true;
          } else {
            if (tp->period.start == period_start) {
              tp->used[m] -= std::min(tp->used[m], charged);
              if (count_api && tp->used[api_calls_meter_] > 0) tp->used[api_calls_meter_] -= 1;
            }
            if (!warm_session.empty()) {
              auto ws = tp->Leases().sessions.find(warm_session);
              if (ws != tp->Leases().sessions.end() && ws->second.warmup_day == warm_day) {
                ws->second.warmup_count -= std::min(ws->second.warmup_count, charged);
              }
            }
            if (!key.empty()) tp->Traffic().idempotency.erase(key);
          }
        }
        if (!s.ok()) return done(s);
        done(std::move(d));
      };
  bool queued = queue_.Enqueue(
      [&](CommitBatch& b) {
        if (charged > 0) {
          b.usage.push_back(UsageDelta{t.id, req.meter, req.channel, period_start, at, charged});
        }
        if (req.count_api_call) {
          b.usage.push_back(
              UsageDelta{t.id, std::string(meters::kApiCalls), "", period_start, now, 1});
        }
        if (idem_rec) b.idempotency.push_back(std::move(*idem_rec));
        if (write_message) b.messages.push_back(std::move(*req.message));
        if (session_rec) b.sessions.push_back(*session_rec);
      },
      finish);
  if (queued) return nullptr;
  return [finish = std::move(finish)]() mutable { finish(ShuttingDown()); };
}

void Engine::CountApiCallLocked(TenantState& t, absl::Time now) {
  SaturatingIncrement(t.used[api_calls_meter_]);
  const absl::Time period_start = t.period.start;
  // Best effort: the caller does not wait. A failed commit takes the unit back.
  CommitQueue::Done undo = [this, tp = &t, period_start](const absl::Status& s) {
    if (s.ok()) return;
    MutexLock l(&tp->mu);
    if (tp->period.start == period_start && tp->used[api_calls_meter_] > 0)
      tp->used[api_calls_meter_] -= 1;
  };
  bool queued = queue_.Enqueue(
      [&](CommitBatch& b) {
        b.usage.push_back(
            UsageDelta{t.id, std::string(meters::kApiCalls), "", period_start, now, 1});
      },
      undo);
  if (!queued) t.used[api_calls_meter_] -= 1;
}

void Engine::SweepIdempotency(TenantState& t, absl::Time now) const {
  if (t.Traffic().idempotency.size() < t.Traffic().idempotency_sweep_at) return;
  absl::erase_if(t.Traffic().idempotency, [&](const auto& kv) {
    return kv.second.committed && kv.second.created_at + opts_.idempotency_ttl <= now;
  });
  t.Traffic().idempotency_sweep_at = std::max<size_t>(64, t.Traffic().idempotency.size() * 2);
}

}  // namespace quotum::engine
