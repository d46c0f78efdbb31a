// Engine: sessions, groups and the subscribers gauge in scale-out mode. Each
// operation is one call of the shared ledger (SharedLedger::RunLease), which
// decides its rate checks and its gauge all or nothing against the state
// every instance shares, and appends the change to the facts stream for the
// cold store. The rules are the embedded mode's (sessions.cc). This
// instance keeps the sessions it last saw in t.Leases() only as a cache for
// compiling sends; the ledger checks a send's session itself.
#include "absl/strings/str_cat.h"
#include "quotum/engine/engine.h"
#include "quotum/engine/errors.h"
#include "quotum/engine/usage_facts.h"

namespace quotum::engine {
namespace {

using ratelimit::Category;

SessionState StateOf(const SessionRecord& r) {
  const absl::string_view status = SessionStatusLiteral(r.status);
  return SessionState{
      r.phone,
      status.empty() ? absl::string_view("failed") : status,
      r.created_at,
      r.updated_at,
      r.first_working_at ? std::optional<CompactTime>(*r.first_working_at) : std::nullopt,
      r.last_heartbeat,
      -1,
      0};
}

}  // namespace

absl::StatusOr<LeaseResult> Engine::RunSharedLease(const Principal& who, LeaseOp& op,
                                                   std::vector<RuleTarget> rules,
                                                   std::optional<MeterId> gauge) {
  TenantState& t = *who.tenant;
  const absl::Time now = clock_->Now();
  {
    MutexLock lock(&t.mu);
    Touch(t, now);
    for (const RuleTarget& r : rules) {
      op.rates.push_back(CompileRate(opts_.rate_rules[r.category], *t.profile, who.limits,
                                     r.category, r.subject, r.cost));
    }
    if (gauge) {
      op.limit = EffectiveLimit(t, *gauge);
      op.shadow = t.plan->shadow[*gauge];
    }
    op.period = t.period;
  }
  op.tenant_id = t.id;
  op.lease_ttl = opts_.session_lease_ttl;
  const UsageFacts facts{std::string(meters::kApiCalls),
                         "",
                         op.period.start,
                         now,
                         now,
                         0,
                         {},
                         std::nullopt,
                         {},
                         {},
                         std::nullopt,
                         std::nullopt};
  op.api_call = &facts;
  absl::StatusOr<LeaseResult> x = opts_.shared_ledger->RunLease(op, now);
  if (x.ok() && x->outcome == LeaseResult::Outcome::kNeedsBaseline) {
    if (absl::Status s = GiveBaseline(t); !s.ok()) return s;
    x = opts_.shared_ledger->RunLease(op, now);
    if (x.ok() && x->outcome == LeaseResult::Outcome::kNeedsBaseline) {
      return Error(absl::StatusCode::kUnavailable, "store_unavailable",
                   "The counter store lost its baseline again; retry.");
    }
  }
  op.api_call = nullptr;
  if (x.ok()) drain_->Notify(t.id);  // any operation may have appended (a lapsed lease)
  return x;
}

Decision Engine::SharedLeaseDecision(const LeaseOp& op, const LeaseResult& x,
                                     std::optional<MeterId> gauge) {
  RatePass pass;
  pass.outcomes = x.rates;
  pass.refused = x.refused;
  for (size_t i = 0; i < x.rates.size(); ++i) {
    if (x.rate_shadow_denied >> i & 1) {
      pass.shadow_denied.push_back(std::string(ratelimit::CategoryName(x.rates[i].category)));
    }
  }
  if (x.refused >= 0) return RateDenial(pass);
  Decision d;
  d.allowed = true;
  d.rates = std::move(pass.outcomes);
  d.shadow_denied = std::move(pass.shadow_denied);
  if (!gauge) return d;
  d.meter = opts_.catalog->meters[*gauge].name;
  d.limit = op.limit;
  d.requested = op.kind == LeaseOpKind::kSetSubscribers ? op.value : (x.raised ? 1 : 0);
  if (x.gauge_shadow_denied) d.shadow_denied.push_back(d.meter);
  if (x.outcome != LeaseResult::Outcome::kRefused) return d;
  d.allowed = false;
  d.reason = DenyReason::kQuotaExceeded;
  d.rule = d.meter;
  d.requested = op.kind == LeaseOpKind::kSetSubscribers ? op.value : 1;
  d.remaining =
      op.kind == LeaseOpKind::kSetSubscribers && *op.limit > x.gauge ? *op.limit - x.gauge : 0;
  const absl::Time now = clock_->Now();
  absl::Duration wait = absl::Minutes(1);
  if (*gauge == sessions_meter_) {
    wait = x.next_expiry != absl::InfiniteFuture() ? std::max(x.next_expiry - now, absl::Seconds(1))
                                                   : opts_.session_lease_ttl;
  }
  d.retry_ns = absl::ToInt64Nanoseconds(wait);
  return d;
}

void Engine::CacheSessions(TenantState& t, const LeaseResult& x, bool deleted, bool all) {
  MutexLock lock(&t.mu);
  TenantLeases& leases = t.Leases();
  if (all) leases.sessions.clear();
  for (const SessionRecord& r : x.sessions) {
    if (deleted) {
      leases.sessions.erase(r.id);
    } else {
      leases.sessions[r.id] = StateOf(r);
    }
  }
}

absl::StatusOr<Admitted<SessionView>> Engine::SharedSessionOp(const Principal& who,
                                                              LeaseOpKind kind,
                                                              absl::string_view id,
                                                              absl::string_view text) {
  std::vector<RuleTarget> rules{{Category::kGeneral, who.key_id}};
  if (kind == LeaseOpKind::kCreateSession) rules.push_back({Category::kSessions, who.key_id});
  if (kind == LeaseOpKind::kPollQr) rules.push_back({Category::kQr, id});
  const std::optional<MeterId> gauge =
      kind == LeaseOpKind::kSetStatus ? std::optional<MeterId>(sessions_meter_) : std::nullopt;
  LeaseOp op;
  op.kind = kind;
  op.id = id;
  op.text = text;
  absl::StatusOr<LeaseResult> x = RunSharedLease(who, op, std::move(rules), gauge);
  if (!x.ok()) return x.status();
  if (x->outcome == LeaseResult::Outcome::kNotFound) return SessionNotFound(id);
  if (x->outcome == LeaseResult::Outcome::kExists) return SessionExists(id);
  Admitted<SessionView> out{SharedLeaseDecision(op, *x, gauge), std::nullopt};
  if (out.decision.allowed && !x->sessions.empty()) {
    const bool deleted = kind == LeaseOpKind::kDeleteSession;
    CacheSessions(*who.tenant, *x, deleted, false);
    TenantState& t = *who.tenant;
    MutexLock lock(&t.mu);
    out.value = SessionViewOf(t, x->sessions[0].id, StateOf(x->sessions[0]), clock_->Now());
    if (deleted) out.value->status = "deleted";
  }
  if (out.value) FillSharedSession(*who.tenant, *out.value);
  if (out.decision.allowed && gauge) {
    Decision& d = out.decision;
    d.consumed = x->raised ? 1 : 0;
    d.remaining = d.limit ? *d.limit - std::min(*d.limit, x->gauge) : UINT64_MAX;
  }
  CountDecision(out.decision);
  return out;
}

absl::StatusOr<Admitted<GroupView>> Engine::SharedGroupOp(const Principal& who, LeaseOpKind kind,
                                                          absl::string_view id,
                                                          absl::string_view name) {
  const std::optional<MeterId> gauge =
      kind == LeaseOpKind::kCreateGroup ? std::optional<MeterId>(groups_meter_) : std::nullopt;
  LeaseOp op;
  op.kind = kind;
  op.id = id;
  op.text = name;
  absl::StatusOr<LeaseResult> x =
      RunSharedLease(who, op, {{Category::kGeneral, who.key_id}}, gauge);
  if (!x.ok()) return x.status();
  if (x->outcome == LeaseResult::Outcome::kNotFound) return GroupNotFound(id);
  if (x->outcome == LeaseResult::Outcome::kExists) return GroupExists(id);
  Admitted<GroupView> out{SharedLeaseDecision(op, *x, gauge), std::nullopt};
  if (out.decision.allowed && !x->groups.empty()) {
    const GroupRecord& g = x->groups[0];
    out.value = GroupView{g.id, g.name, g.created_at};
  }
  if (out.decision.allowed && gauge) {
    Decision& d = out.decision;
    d.consumed = 1;
    d.remaining = d.limit ? *d.limit - std::min(*d.limit, x->gauge) : UINT64_MAX;
  }
  CountDecision(out.decision);
  return out;
}

absl::StatusOr<Decision> Engine::SharedSetSubscribers(const Principal& who, uint64_t count) {
  LeaseOp op;
  op.kind = LeaseOpKind::kSetSubscribers;
  op.value = count;
  absl::StatusOr<LeaseResult> x =
      RunSharedLease(who, op, {{Category::kGeneral, who.key_id}}, subscribers_meter_);
  if (!x.ok()) return x.status();
  Decision d = SharedLeaseDecision(op, *x, subscribers_meter_);
  if (d.allowed) {
    d.consumed = count;
    d.remaining = d.limit ? (*d.limit > count ? *d.limit - count : 0) : UINT64_MAX;
  }
  CountDecision(d);
  return d;
}

absl::StatusOr<std::vector<SessionView>> Engine::SharedSessions(const Principal& who) {
  LeaseOp op;
  op.kind = LeaseOpKind::kListSessions;
  absl::StatusOr<LeaseResult> x = RunSharedLease(who, op, {}, std::nullopt);
  if (!x.ok()) return x.status();
  CacheSessions(*who.tenant, *x, false, true);
  TenantState& t = *who.tenant;
  std::vector<SessionView> out;
  {
    MutexLock lock(&t.mu);
    const absl::Time now = clock_->Now();
    for (const SessionRecord& r : x->sessions)
      out.push_back(SessionViewOf(t, r.id, StateOf(r), now));
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      return std::tie(a.created_at, a.id) < std::tie(b.created_at, b.id);
    });
  }
  for (SessionView& v : out) FillSharedSession(t, v);
  return out;
}

void Engine::FillSharedSession(TenantState& t, SessionView& v) {
  const absl::Time now = clock_->Now();
  if (v.warmup_cap && v.first_working_at) {
    // The day CompileWarmup charges.
    absl::StatusOr<uint64_t> sent =
        opts_.shared_ledger->WarmupSent(t.id, v.id, WarmupDayAt(*v.first_working_at, now).end);
    if (sent.ok()) v.warmup_sent = *sent;
  }
  if (!v.tier) return;
  absl::StatusOr<SharedLedger::TierState> s = opts_.shared_ledger->TierOf(t.id, v.id, now);
  MutexLock lock(&t.mu);
  if (!s.ok() || !t.plan->messaging_tiers) {
    v.tier.reset();  // best effort: the operation itself has succeeded
    return;
  }
  v.tier = ViewTier(*t.plan->messaging_tiers, s->level, s->used_24h, s->unique_7d,
                    absl::ToUnixMillis(now));
}

absl::StatusOr<std::vector<GroupView>> Engine::SharedGroups(const Principal& who) {
  LeaseOp op;
  op.kind = LeaseOpKind::kListGroups;
  absl::StatusOr<LeaseResult> x = RunSharedLease(who, op, {}, std::nullopt);
  if (!x.ok()) return x.status();
  std::vector<GroupView> out;
  for (const GroupRecord& g : x->groups) out.push_back(GroupView{g.id, g.name, g.created_at});
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::tie(a.created_at, a.id) < std::tie(b.created_at, b.id);
  });
  return out;
}

}  // namespace quotum::engine
