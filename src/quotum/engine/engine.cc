#include "quotum/engine/engine.h"

#include "absl/strings/str_cat.h"
#include "quotum/engine/errors.h"

namespace quotum::engine {

uint64_t StableHash(absl::string_view data) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

Engine::Engine(EngineOptions options, Store* store, const Clock* clock)
    : opts_(std::move(options)),
      store_(store),
      clock_(clock),
      queue_(store, [this](size_t requests, double seconds, bool ok) {
        stats_.commit_seconds.Observe({}, seconds);
        stats_.commit_batch.Observe({}, static_cast<double>(requests));
        if (!ok) stats_.commit_failures.Add({});
      }) {
  const Catalog& cat = *opts_.catalog;
  api_calls_meter_ = *cat.FindMeter(meters::kApiCalls);
  messages_sent_meter_ = *cat.FindMeter(meters::kMessagesSent);
  sessions_meter_ = *cat.FindMeter(meters::kSessionsActive);
  groups_meter_ = *cat.FindMeter(meters::kGroupsActive);
  subscribers_meter_ = *cat.FindMeter(meters::kSubscribers);
  for (const MeterDef& m : cat.meters) {
    allowed_counters_.push_back(stats_.decisions.Child({m.name, "allowed", "none"}));
  }
  allowed_counters_.push_back(stats_.decisions.Child({"none", "allowed", "none"}));
}

Engine::~Engine() { Stop(); }

absl::Status Engine::Start() {
  const Catalog& cat = *opts_.catalog;
  const absl::Time now = clock_->Now();
  auto snap = store_->Load(now - opts_.idempotency_ttl);
  if (!snap.ok()) return snap.status();
  absl::MutexLock reg(&registry_mu_);
  tenants_.reserve(snap->tenants.size());
  tenant_order_.reserve(snap->tenants.size());
  keys_by_hash_.reserve(snap->keys.size());
  hash_by_key_id_.reserve(snap->keys.size());
  for (auto& rec : snap->tenants) {
    const Plan* plan = cat.FindPlan(rec.plan);
    if (!plan) {
      return absl::FailedPreconditionError(absl::StrCat(
          "tenant \"", rec.id, "\" is on plan \"", rec.plan, "\", which the config no longer has"));
    }
    auto t = std::make_unique<TenantState>(rec.id);
    absl::MutexLock lock(&t->mu);
    t->name = rec.name;
    t->plan = plan;
    t->profile = cat.FindProfile(plan->rate_limit_profile);
    t->subscription_start = rec.subscription_start;
    t->created_at = rec.created_at;
    t->committed = true;
    t->period = PeriodAt(rec.subscription_start, plan->interval, now);
    t->used.assign(cat.meter_count(), 0);
    tenant_order_.push_back(t.get());
    tenants_[rec.id] = std::move(t);
  }
  for (auto& o : snap->overrides) {
    TenantState* t = FindTenant(o.tenant_id);
    auto m = cat.FindMeter(o.meter);
    if (!t || !m) continue;
    absl::MutexLock lock(&t->mu);
    if (t->overrides.empty()) t->overrides.assign(cat.meter_count(), std::nullopt);
    t->overrides[*m] = o.limit;
  }
  // Counter rows arrive grouped by tenant: look each tenant up once.
  TenantState* last = nullptr;
  for (auto& c : snap->counters) {
    TenantState* t = last && last->id == c.tenant_id ? last : FindTenant(c.tenant_id);
    last = t;
    auto m = cat.FindMeter(c.meter);
    if (!t || !m) continue;
    absl::MutexLock lock(&t->mu);
    if (cat.meters[*m].kind == MeterKind::kCounter && c.period_start == t->period.start)
      t->used[*m] = c.value;
  }
  for (auto& r : snap->idempotency) {
    TenantState* t = FindTenant(r.tenant_id);
    if (!t) continue;
    absl::MutexLock lock(&t->mu);
    t->Act().idempotency[r.key] = IdempotencyEntry{r.fingerprint, r.decision, r.created_at, true};
  }
  for (auto& k : snap->keys) {
    TenantState* t = FindTenant(k.tenant_id);
    if (!t) continue;
    keys_by_hash_[ToKeyHash(k.hash)] = KeyEntry{k.key_id, t, k.revoked, true, {}};
    hash_by_key_id_[k.key_id] = ToKeyHash(k.hash);
  }
  for (auto& l : snap->key_rate_limits) {
    auto h = hash_by_key_id_.find(l.key_id);
    if (h != hash_by_key_id_.end()) keys_by_hash_[h->second].limits = l.limits;
  }
  for (auto& s : snap->sessions) {
    TenantState* t = FindTenant(s.tenant_id);
    if (!t) continue;
    absl::MutexLock lock(&t->mu);
    t->Act().sessions[s.id] = SessionState{s.phone,      s.status,           s.created_at,
                                           s.updated_at, s.first_working_at, s.last_heartbeat,
                                           s.warmup_day, s.warmup_count};
    if (s.status == "working") {
      t->used[sessions_meter_] += 1;
      t->Act().next_lease_expiry =
          std::min(t->Act().next_lease_expiry, s.last_heartbeat + opts_.session_lease_ttl);
    }
  }
  for (auto& g : snap->groups) {
    TenantState* t = FindTenant(g.tenant_id);
    if (!t) continue;
    absl::MutexLock lock(&t->mu);
    t->Act().groups[g.id] = GroupState{g.name, g.created_at};
    t->used[groups_meter_] += 1;
  }
  for (auto& g : snap->gauges) {
    TenantState* t = FindTenant(g.tenant_id);
    auto m = cat.FindMeter(g.meter);
    if (!t || !m) continue;
    absl::MutexLock lock(&t->mu);
    t->used[*m] = g.value;
  }
  queue_.Start();
  return absl::OkStatus();
}

void Engine::Stop() { queue_.Stop(); }

absl::Status Engine::Ready() const { return store_->CheckWritable(); }

TenantState* Engine::FindTenant(absl::string_view id) const {
  // Called with or without registry_mu_ held by the caller's context:
  // callers outside Start() take a reader lock first.
  auto it = tenants_.find(id);
  return it == tenants_.end() ? nullptr : it->second.get();
}

absl::StatusOr<Principal> Engine::Authenticate(absl::string_view secret) const {
  if (secret.empty()) {
    return Error(absl::StatusCode::kUnauthenticated, "unauthorized",
                 "Missing API key: send it as \"Authorization: Bearer <key>\" or \"X-API-Key\".");
  }
  const KeyHash hash = ToKeyHash(HashSecret(secret));
  absl::ReaderMutexLock lock(&registry_mu_);
  auto it = keys_by_hash_.find(hash);
  if (it == keys_by_hash_.end() ||
      !ConstantTimeEquals(absl::string_view(it->first.data(), it->first.size()),
                          absl::string_view(hash.data(), hash.size())) ||
      it->second.revoked || !it->second.committed) {
    return Error(absl::StatusCode::kUnauthenticated, "unauthorized", "Invalid or revoked API key.");
  }
  return Principal{it->second.tenant, it->second.key_id, it->second.limits};
}

void Engine::Touch(TenantState& t, absl::Time now) {
  ExpireLeases(t, now);
  if (t.period.Contains(now)) return;
  BillingPeriod next = PeriodAt(t.subscription_start, t.plan->interval, now);
  if (next == t.period) return;
  t.period = next;
  const Catalog& cat = *opts_.catalog;
  for (size_t m = 0; m < cat.meter_count(); ++m) {
    if (cat.meters[m].kind == MeterKind::kCounter) t.used[m] = 0;
  }
}

std::optional<uint64_t> Engine::EffectiveLimit(const TenantState& t, MeterId m) const {
  if (!t.overrides.empty() && t.overrides[m]) return t.overrides[m];
  return t.plan->limits[m];
}

TenantView Engine::ViewOf(const TenantState& t) const {
  return TenantView{t.id,         t.name,   t.plan->name, t.subscription_start,
                    t.created_at, t.period, t.overrides};
}

}  // namespace quotum::engine
