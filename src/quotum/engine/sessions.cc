// Engine: sessions (leases on sessions_active), groups (groups_active) and the
// subscribers gauge. Each operation decides its rules and applies its effect
// under the tenant lock, all or nothing, and commits before it answers.
#include "absl/strings/str_cat.h"
#include "quotum/core/ids.h"
#include "quotum/engine/engine.h"
#include "quotum/engine/errors.h"
#include "quotum/engine/events.h"

namespace quotum::engine {
namespace {

using ratelimit::Category;
constexpr char kWorking[] = "working";

bool IsSessionStatus(absl::string_view s) { return !SessionStatusLiteral(s).empty(); }

// Runs `done(result)` later, outside the lock.
template <typename T>
absl::AnyInvocable<void()> Later(Engine::Callback<T>& done, absl::StatusOr<T> result) {
  return [done = std::move(done), r = std::move(result)]() mutable { done(std::move(r)); };
}

}  // namespace

absl::string_view SessionStatusLiteral(absl::string_view status) {
  for (absl::string_view known : {"starting", "scan_qr", "working", "stopped", "failed"}) {
    if (status == known) return known;
  }
  return {};
}

SessionRecord Engine::SessionRecordOf(const TenantState& t, const std::string& id,
                                      const SessionState& s) const {
  return SessionRecord{t.id,
                       id,
                       s.phone,
                       std::string(s.status),
                       s.created_at,
                       s.updated_at,
                       s.first_working_at,
                       s.last_heartbeat,
                       s.warmup_day,
                       s.warmup_count,
                       s.tier ? int64_t{s.tier->level.level} : 0,
                       s.tier ? s.tier->level.since_ms : 0,
                       s.tier ? s.tier->level.qualified_ms : 0};
}

SessionView Engine::SessionViewOf(const TenantState& t, const std::string& id,
                                  const SessionState& s, absl::Time now) const {
  SessionView v{id,
                s.phone,
                std::string(s.status),
                s.created_at,
                s.updated_at,
                s.first_working_at,
                s.last_heartbeat,
                std::nullopt,
                std::nullopt,
                0};
  if (s.status == kWorking) v.lease_expires_at = s.last_heartbeat + opts_.session_lease_ttl;
  int64_t day = 0;
  v.warmup_cap = WarmupCap(t, s, now, &day);
  if (v.warmup_cap && s.warmup_day == day) v.warmup_sent = s.warmup_count;
  if (t.plan->messaging_tiers) {
    const int64_t at = absl::ToUnixMillis(now);
    TierLevel level;
    std::pair<uint64_t, uint64_t> counts{0, 0};
    if (s.tier) {
      level = s.tier->level;
      counts = s.tier->window.CountsAt(std::max(at, s.tier->window.now_ms()));
    }
    v.tier = ViewTier(*t.plan->messaging_tiers, level, counts.first, counts.second, at);
  }
  return v;
}

void Engine::ExpireLeases(TenantState& t, absl::Time now) {
  // Scale-out: lease.lua expires leases in Redis, once for every instance;
  // the sessions here are only this instance's cache of them.
  if (opts_.shared_ledger) return;
  if (!t.leases || now < t.leases->next_lease_expiry) return;
  absl::Time next = absl::InfiniteFuture();
  std::vector<SessionRecord> changed;
  std::vector<EventRecord> events;
  for (auto& [id, s] : t.Leases().sessions) {
    if (s.status != kWorking) continue;
    const absl::Time expiry = s.last_heartbeat + opts_.session_lease_ttl;
    if (expiry > now) {
      next = std::min(next, expiry);
      continue;
    }
    s.status = "stopped";
    s.updated_at = now;
    t.used[sessions_meter_] -= std::min<uint64_t>(1, t.used[sessions_meter_]);
    changed.push_back(SessionRecordOf(t, id, s));
    stats_.lease_expiries.Add({});
    events.push_back(
        EventRecord{t.id,
                    "session.lease_expired",
                    id,
                    absl::StrCat("no heartbeat since ", FormatRfc3339(s.last_heartbeat),
                                 "; stopped counting toward sessions_active"),
                    now,
                    LeaseExpiredEventId(t.id, id, s.last_heartbeat),
                    {}});
  }
  t.Leases().next_lease_expiry = next;
  if (changed.empty()) return;
  // Best effort: if this commit fails, the stored heartbeat is just as old, so
  // the lease expires again on the next start.
  CommitQueue::Done ignore = [](const absl::Status&) {};
  queue_.Enqueue(
      [&](CommitBatch& b) {
        for (auto& r : changed) b.sessions.push_back(std::move(r));
        for (auto& e : events) b.events.push_back(std::move(e));
      },
      ignore);
}

template <typename T>
void Engine::TenantOp(
    const Principal& who, Callback<Admitted<T>>& done, std::vector<RuleTarget> rules,
    absl::FunctionRef<absl::Status(TenantState&)> check,
    absl::FunctionRef<absl::AnyInvocable<void()>(TenantState&, absl::Time, RatePass&, Decision&)>
        apply) {
  TenantState& t = *who.tenant;
  absl::AnyInvocable<void()> after;
  Decision d;
  bool decided = false;
  {
    MutexLock lock(&t.mu);
    const absl::Time now = clock_->Now();
    Touch(t, now);
    if (absl::Status s = check(t); !s.ok()) {
      after = Later(done, absl::StatusOr<Admitted<T>>(s));
    } else {
      decided = true;
      RatePass pass = EvaluateRates(t, who, rules, now);
      if (pass.refused >= 0) {
        d = RateDenial(pass);
      } else {
        d.allowed = true;
        d.rates = pass.outcomes;
        d.shadow_denied = pass.shadow_denied;
        after = apply(t, now, pass, d);
      }
      if (!d.allowed) {
        CountApiCallLocked(t, now);  // every authenticated request, admitted or not
        after = Later(done, absl::StatusOr<Admitted<T>>(Admitted<T>{d, std::nullopt}));
      }
    }
  }
  if (decided) CountDecision(d);
  if (after) after();
}

// Refuses a concurrent-limit increase (unless the plan shadows that meter).
// Returns true when the operation may go on.
bool Engine::AdmitGauge(TenantState& t, MeterId m, absl::Time now, Decision& d) {
  d.meter = opts_.catalog->meters[m].name;
  d.limit = EffectiveLimit(t, m);
  d.requested = 1;
  if (!d.limit || t.used[m] < *d.limit) return true;
  if (t.plan->shadow[m]) {
    d.shadow_denied.push_back(d.meter);
    return true;
  }
  d.allowed = false;
  d.reason = DenyReason::kQuotaExceeded;
  d.rule = d.meter;
  d.remaining = 0;
  // The soonest a session slot can free up by itself is a lease running out.
  const absl::Duration wait =
      m == sessions_meter_ && t.leases && t.leases->next_lease_expiry != absl::InfiniteFuture()
          ? t.leases->next_lease_expiry - now
          : (m == sessions_meter_ ? opts_.session_lease_ttl : absl::Minutes(1));
  d.retry_ns = absl::ToInt64Nanoseconds(wait);
  return false;
}

void Engine::CreateSession(const Principal& who, std::string id, std::string phone,
                           Callback<Admitted<SessionView>> done) {
  if (id.empty()) id = absl::StrCat("ses_", RandomHex(8));
  if (!IsValidId(id)) {
    return done(
        BadRequest("invalid_session_id",
                   "Session id must be 1-64 characters of letters, digits, '_', '-' or '.'."));
  }
  if (phone.size() > 32)
    return done(BadRequest("invalid_phone", "phone is at most 32 characters."));
  if (opts_.shared_ledger) {
    return done(SharedSessionOp(who, LeaseOpKind::kCreateSession, id, phone));
  }
  TenantOp<SessionView>(
      who, done, {{Category::kGeneral, who.key_id}, {Category::kSessions, who.key_id}},
      [&](TenantState& t) {
        return t.Leases().sessions.contains(id) ? SessionExists(id) : absl::OkStatus();
      },
      [&](TenantState& t, absl::Time now, RatePass& pass, Decision& d) {
        ApplyRates(t, pass);
        SessionState s{phone, "starting", now, now, std::nullopt, now, -1, 0};
        t.Leases().sessions[id] = s;
        Admitted<SessionView> result{d, SessionViewOf(t, id, s, now)};
        SessionRecord rec = SessionRecordOf(t, id, s);
        return CommitWithApiCall(
            t, [&](CommitBatch& b) { b.sessions.push_back(rec); },
            [tp = &t, id, result, done = std::move(done)](const absl::Status& st) mutable {
              if (!st.ok()) {
                {
                  MutexLock l(&tp->mu);
                  tp->Leases().sessions.erase(id);
                }
                return done(st);
              }
              done(result);
            });
      });
}

void Engine::UpdateSession(const Principal& who, std::string id, std::string status,
                           Callback<Admitted<SessionView>> done) {
  if (!IsSessionStatus(status)) {
    return done(Unprocessable(
        "invalid_status", "status must be one of starting, scan_qr, working, stopped, failed."));
  }
  if (opts_.shared_ledger) return done(SharedSessionOp(who, LeaseOpKind::kSetStatus, id, status));
  TenantOp<SessionView>(
      who, done, {{Category::kGeneral, who.key_id}},
      [&](TenantState& t) {
        return t.Leases().sessions.contains(id) ? absl::OkStatus() : SessionNotFound(id);
      },
      [&](TenantState& t, absl::Time now, RatePass& pass,
          Decision& d) -> absl::AnyInvocable<void()> {
        SessionState& s = t.Leases().sessions[id];
        const bool starts_working = status == kWorking && s.status != kWorking;
        const bool stops_working = status != kWorking && s.status == kWorking;
        if (starts_working && !AdmitGauge(t, sessions_meter_, now, d)) return nullptr;
        ApplyRates(t, pass);
        const SessionState before = s;
        if (starts_working) {
          t.used[sessions_meter_] += 1;
          if (!s.first_working_at) s.first_working_at = now;
          s.last_heartbeat = now;
          t.Leases().next_lease_expiry =
              std::min(t.Leases().next_lease_expiry, now + opts_.session_lease_ttl);
        }
        if (stops_working)
          t.used[sessions_meter_] -= std::min<uint64_t>(1, t.used[sessions_meter_]);
        s.status = SessionStatusLiteral(status);
        s.updated_at = now;
        d.meter = meters::kSessionsActive;
        d.limit = EffectiveLimit(t, sessions_meter_);
        d.consumed = starts_working ? 1 : 0;
        d.remaining = d.limit ? *d.limit - std::min(*d.limit, t.used[sessions_meter_]) : UINT64_MAX;
        Admitted<SessionView> result{d, SessionViewOf(t, id, s, now)};
        SessionRecord rec = SessionRecordOf(t, id, s);
        return CommitWithApiCall(
            t, [&](CommitBatch& b) { b.sessions.push_back(rec); },
            [this, tp = &t, id, before, result,
             done = std::move(done)](const absl::Status& st) mutable {
              if (!st.ok()) {
                {
                  MutexLock l(&tp->mu);
                  auto e = tp->Leases().sessions.find(id);
                  if (e != tp->Leases().sessions.end()) {
                    const int now_working = e->second.status == kWorking;
                    const int was_working = before.status == kWorking;
                    tp->used[sessions_meter_] += was_working - now_working;
                    e->second = before;
                  }
                }
                return done(st);
              }
              done(result);
            });
      });
}

void Engine::DeleteSession(const Principal& who, std::string id,
                           Callback<Admitted<SessionView>> done) {
  if (opts_.shared_ledger) return done(SharedSessionOp(who, LeaseOpKind::kDeleteSession, id, ""));
  TenantOp<SessionView>(
      who, done, {{Category::kGeneral, who.key_id}},
      [&](TenantState& t) {
        return t.Leases().sessions.contains(id) ? absl::OkStatus() : SessionNotFound(id);
      },
      [&](TenantState& t, absl::Time now, RatePass& pass, Decision& d) {
        ApplyRates(t, pass);
        auto it = t.Leases().sessions.find(id);
        const SessionState before = it->second;
        SessionView view = SessionViewOf(t, id, before, now);
        view.status = "deleted";
        t.Leases().sessions.erase(it);
        if (before.status == kWorking)
          t.used[sessions_meter_] -= std::min<uint64_t>(1, t.used[sessions_meter_]);
        Admitted<SessionView> result{d, view};
        return CommitWithApiCall(
            t, [&](CommitBatch& b) { b.deleted_sessions.emplace_back(t.id, id); },
            [this, tp = &t, id, before, result,
             done = std::move(done)](const absl::Status& st) mutable {
              if (!st.ok()) {
                {
                  MutexLock l(&tp->mu);
                  tp->Leases().sessions[id] = before;
                  if (before.status == kWorking) tp->used[sessions_meter_] += 1;
                }
                return done(st);
              }
              done(result);
            });
      });
}

void Engine::Heartbeat(const Principal& who, std::string id, Callback<Admitted<SessionView>> done) {
  if (opts_.shared_ledger) return done(SharedSessionOp(who, LeaseOpKind::kHeartbeat, id, ""));
  TenantOp<SessionView>(
      who, done, {{Category::kGeneral, who.key_id}},
      [&](TenantState& t) {
        return t.Leases().sessions.contains(id) ? absl::OkStatus() : SessionNotFound(id);
      },
      [&](TenantState& t, absl::Time now, RatePass& pass, Decision& d) {
        ApplyRates(t, pass);
        SessionState& s = t.Leases().sessions[id];
        s.last_heartbeat = now;
        Admitted<SessionView> result{d, SessionViewOf(t, id, s, now)};
        SessionRecord rec = SessionRecordOf(t, id, s);
        return CommitWithApiCall(
            t, [&](CommitBatch& b) { b.sessions.push_back(rec); },
            [result, done = std::move(done)](const absl::Status& st) mutable {
              if (!st.ok()) return done(st);
              done(result);
            });
      });
}

absl::StatusOr<Admitted<SessionView>> Engine::PollQr(const Principal& who, absl::string_view id) {
  if (opts_.shared_ledger) return SharedSessionOp(who, LeaseOpKind::kPollQr, id, "");
  TenantState& t = *who.tenant;
  Admitted<SessionView> out;
  {
    MutexLock lock(&t.mu);
    const absl::Time now = clock_->Now();
    Touch(t, now);
    auto it = t.Leases().sessions.find(id);
    if (it == t.Leases().sessions.end()) return SessionNotFound(id);
    RatePass pass =
        EvaluateRates(t, who, {{Category::kGeneral, who.key_id}, {Category::kQr, id}}, now);
    CountApiCallLocked(t, now);
    if (pass.refused >= 0) {
      out.decision = RateDenial(pass);
    } else {
      ApplyRates(t, pass);
      out.decision.allowed = true;
      out.decision.rates = std::move(pass.outcomes);
      out.decision.shadow_denied = std::move(pass.shadow_denied);
      out.value = SessionViewOf(t, it->first, it->second, now);
    }
  }
  CountDecision(out.decision);
  return out;
}

absl::StatusOr<std::vector<SessionView>> Engine::ListSessions(const Principal& who) {
  if (opts_.shared_ledger) return SharedSessions(who);
  TenantState& t = *who.tenant;
  MutexLock lock(&t.mu);
  const absl::Time now = clock_->Now();
  Touch(t, now);
  std::vector<SessionView> out;
  for (const auto& [id, s] : t.Leases().sessions) out.push_back(SessionViewOf(t, id, s, now));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::tie(a.created_at, a.id) < std::tie(b.created_at, b.id);
  });
  return out;
}

absl::StatusOr<SessionView> Engine::GetSession(const Principal& who, absl::string_view id) {
  if (opts_.shared_ledger) {
    absl::StatusOr<std::vector<SessionView>> all = SharedSessions(who);
    if (!all.ok()) return all.status();
    for (SessionView& v : *all) {
      if (v.id == id) return std::move(v);
    }
    return SessionNotFound(id);
  }
  TenantState& t = *who.tenant;
  MutexLock lock(&t.mu);
  const absl::Time now = clock_->Now();
  Touch(t, now);
  auto it = t.Leases().sessions.find(id);
  if (it == t.Leases().sessions.end()) return SessionNotFound(id);
  return SessionViewOf(t, it->first, it->second, now);
}

void Engine::CreateGroup(const Principal& who, std::string id, std::string name,
                         Callback<Admitted<GroupView>> done) {
  if (!IsValidId(id)) {
    return done(
        BadRequest("invalid_group_id",
                   "Group id must be 1-64 characters of letters, digits, '_', '-' or '.'."));
  }
  if (name.size() > 200) return done(BadRequest("invalid_name", "name is at most 200 characters."));
  if (opts_.shared_ledger) return done(SharedGroupOp(who, LeaseOpKind::kCreateGroup, id, name));
  TenantOp<GroupView>(
      who, done, {{Category::kGeneral, who.key_id}},
      [&](TenantState& t) {
        return t.Leases().groups.contains(id) ? GroupExists(id) : absl::OkStatus();
      },
      [&](TenantState& t, absl::Time now, RatePass& pass,
          Decision& d) -> absl::AnyInvocable<void()> {
        if (!AdmitGauge(t, groups_meter_, now, d)) return nullptr;
        ApplyRates(t, pass);
        t.Leases().groups[id] = GroupState{name, now};
        t.used[groups_meter_] += 1;
        d.consumed = 1;
        d.remaining = d.limit ? *d.limit - std::min(*d.limit, t.used[groups_meter_]) : UINT64_MAX;
        Admitted<GroupView> result{d, GroupView{id, name, now}};
        GroupRecord rec{t.id, id, name, now};
        return CommitWithApiCall(
            t, [&](CommitBatch& b) { b.groups.push_back(rec); },
            [this, tp = &t, id, result, done = std::move(done)](const absl::Status& st) mutable {
              if (!st.ok()) {
                {
                  MutexLock l(&tp->mu);
                  if (tp->Leases().groups.erase(id) > 0)
                    tp->used[groups_meter_] -= std::min<uint64_t>(1, tp->used[groups_meter_]);
                }
                return done(st);
              }
              done(result);
            });
      });
}

void Engine::DeleteGroup(const Principal& who, std::string id, Callback<Admitted<GroupView>> done) {
  if (opts_.shared_ledger) return done(SharedGroupOp(who, LeaseOpKind::kDeleteGroup, id, ""));
  TenantOp<GroupView>(
      who, done, {{Category::kGeneral, who.key_id}},
      [&](TenantState& t) {
        return t.Leases().groups.contains(id) ? absl::OkStatus() : GroupNotFound(id);
      },
      [&](TenantState& t, absl::Time now, RatePass& pass, Decision& d) {
        ApplyRates(t, pass);
        auto it = t.Leases().groups.find(id);
        const GroupState before = it->second;
        t.Leases().groups.erase(it);
        t.used[groups_meter_] -= std::min<uint64_t>(1, t.used[groups_meter_]);
        Admitted<GroupView> result{d, GroupView{id, before.name, before.created_at}};
        return CommitWithApiCall(
            t, [&](CommitBatch& b) { b.deleted_groups.emplace_back(t.id, id); },
            [this, tp = &t, id, before, result,
             done = std::move(done)](const absl::Status& st) mutable {
              if (!st.ok()) {
                {
                  MutexLock l(&tp->mu);
                  if (tp->Leases().groups.emplace(id, before).second) tp->used[groups_meter_] += 1;
                }
                return done(st);
              }
              done(result);
            });
      });
}

absl::StatusOr<std::vector<GroupView>> Engine::ListGroups(const Principal& who) {
  if (opts_.shared_ledger) return SharedGroups(who);
  TenantState& t = *who.tenant;
  MutexLock lock(&t.mu);
  std::vector<GroupView> out;
  for (const auto& [id, g] : t.Leases().groups) out.push_back(GroupView{id, g.name, g.created_at});
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::tie(a.created_at, a.id) < std::tie(b.created_at, b.id);
  });
  return out;
}

void Engine::SetSubscribers(const Principal& who, uint64_t count, Callback<Decision> done) {
  if (opts_.shared_ledger) return done(SharedSetSubscribers(who, count));
  TenantState& t = *who.tenant;
  absl::AnyInvocable<void()> after;
  Decision counted;
  {
    MutexLock lock(&t.mu);
    const absl::Time now = clock_->Now();
    Touch(t, now);
    RatePass pass = EvaluateRates(t, who, {{Category::kGeneral, who.key_id}}, now);
    Decision d;
    d.rates = pass.outcomes;
    d.shadow_denied = pass.shadow_denied;
    d.meter = meters::kSubscribers;
    d.limit = EffectiveLimit(t, subscribers_meter_);
    d.requested = count;
    const uint64_t before = t.used[subscribers_meter_];
    if (pass.refused >= 0) {
      d = RateDenial(pass);
    } else if (d.limit && count > *d.limit && count > before) {
      if (t.plan->shadow[subscribers_meter_]) {
        d.shadow_denied.push_back(meters::kSubscribers);
      } else {
        d.reason = DenyReason::kQuotaExceeded;
        d.rule = meters::kSubscribers;
        d.remaining = *d.limit > before ? *d.limit - before : 0;
        d.retry_ns = absl::ToInt64Nanoseconds(absl::Minutes(1));
      }
    }
    if (!d.rule.empty()) {
      counted = d;
      CountApiCallLocked(t, now);
      after = Later(done, absl::StatusOr<Decision>(d));
    } else {
      ApplyRates(t, pass);
      t.used[subscribers_meter_] = count;
      d.allowed = true;
      d.consumed = count;
      d.remaining = d.limit ? (*d.limit > count ? *d.limit - count : 0) : UINT64_MAX;
      counted = d;
      GaugeRecord rec{t.id, std::string(meters::kSubscribers), count};
      after = CommitWithApiCall(
          t, [&](CommitBatch& b) { b.gauges.push_back(rec); },
          [this, tp = &t, before, count, d,
           done = std::move(done)](const absl::Status& st) mutable {
            if (!st.ok()) {
              {
                MutexLock l(&tp->mu);
                if (tp->used[subscribers_meter_] == count) tp->used[subscribers_meter_] = before;
              }
              return done(st);
            }
            done(d);
          });
    }
  }
  CountDecision(counted);
  if (after) after();
}

absl::StatusOr<std::vector<EventRecord>> Engine::Events(const Principal& who, size_t limit) {
  auto rows = store_->Events(who.tenant->id, limit);
  if (!rows.ok()) return StoreUnavailable("Events");
  return rows;
}

}  // namespace quotum::engine
