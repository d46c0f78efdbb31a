#include "quotum/engine/engine.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "quotum/engine/errors.h"

namespace quotum::engine {

namespace {

// The rules the start-up load and the journals' replay share.

// The meter of a counter row (or delta) of `meter` that counts toward `t`'s
// current period; none for a gauge, an unknown meter or an earlier period
// (whose counters stay in the store alone).
std::optional<MeterId> CurrentPeriodCounter(const Catalog& cat, const TenantState& t,
                                            absl::string_view meter, absl::Time period_start)
    ABSL_SHARED_LOCKS_REQUIRED(t.mu) {
  std::optional<MeterId> m = cat.FindMeter(meter);
  if (!m || cat.meters[*m].kind != MeterKind::kCounter || period_start != t.period.start) {
    return std::nullopt;
  }
  return m;
}

// A stored idempotency record as the entry a retry is answered from.
IdempotencyEntry EntryOf(IdempotencyRecord r) {
  return IdempotencyEntry{std::move(r.fingerprint), std::move(r.decision), r.created_at, true};
}

}  // namespace

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
  credits_meter_ = *cat.FindMeter(meters::kCredits);
  sessions_meter_ = *cat.FindMeter(meters::kSessionsActive);
  groups_meter_ = *cat.FindMeter(meters::kGroupsActive);
  subscribers_meter_ = *cat.FindMeter(meters::kSubscribers);
  for (const MeterDef& m : cat.meters) {
    allowed_counters_.push_back(stats_.decisions.Child({m.name, "allowed", "none"}));
  }
  allowed_counters_.push_back(stats_.decisions.Child({"none", "allowed", "none"}));
  if (opts_.shared_ledger) blocking_pool_ = std::make_unique<TaskPool>(2, "quotum-blocking");
}

Engine::~Engine() { Stop(); }

// Builds the in-memory state from the store's start-up stream. Runs inside
// Start() with registry_mu_ held; the two stream groups may call it from two
// threads at once: the usage group changes a tenant's counters, overrides,
// traffic, groups and gauges, the other the key maps and a tenant's sessions.
// Both change a tenant's `used` and its leases, so each holds the tenant's
// lock; both only read the tenant registry, which is complete by then.
class Engine::Loader final : public SnapshotSink {
 public:
  Loader(Engine& e, absl::Time now) : e_(e), cat_(*e.opts_.catalog), now_(now) {}

  void Sizes(size_t tenants, size_t keys) override {
    e_.tenant_arena_.Reserve(tenants);
    e_.tenants_.reserve(tenants);
    e_.tenant_order_.reserve(tenants);
    e_.keys_by_hash_.reserve(keys);
    e_.keys_by_id_.reserve(keys);
  }

  absl::Status Tenant(TenantRecord& rec) override {
    const Plan* plan = cat_.FindPlan(rec.plan);
    if (!plan) {
      return absl::FailedPreconditionError(absl::StrCat(
          "tenant \"", rec.id, "\" is on plan \"", rec.plan, "\", which the config no longer has"));
    }
    TenantState* t = e_.tenant_arena_.New(std::move(rec.id));
    MutexLock lock(&t->mu);
    t->name = std::move(rec.name);
    e_.SetUpTenant(*t, *plan, rec.subscription_start, rec.created_at, now_);
    t->committed = true;
    e_.tenant_order_.push_back(t);
    e_.tenants_.insert(t);
    return absl::OkStatus();
  }

  void Override(LimitOverride& o) override {
    TenantState* t = e_.FindTenant(o.tenant_id);
    auto m = cat_.FindMeter(o.meter);
    if (!t || !m) return;
    MutexLock lock(&t->mu);
    if (t->overrides.empty()) t->overrides.assign(cat_.meter_count(), std::nullopt);
    t->overrides[*m] = o.limit;
  }

  // The tenants in id order, which every stream after them follows (see Cursor).
  void TenantsLoaded() override {
    e_.tenant_arena_.WaitForPages();
    by_id_ = e_.tenant_order_;
    auto id_less = [](const TenantState* a, const TenantState* b) { return a->id < b->id; };
    if (!std::is_sorted(by_id_.begin(), by_id_.end(), id_less)) {
      std::sort(by_id_.begin(), by_id_.end(), id_less);
    }
  }

  void Counter(CounterRow& c) override {
    TenantState* t = counters_.Find(*this, c.tenant_id);
    if (!t) return;
    MutexLock lock(&t->mu);
    if (auto m = CurrentPeriodCounter(cat_, *t, c.meter, c.period_start)) t->used[*m] = c.value;
  }

  void Reservation(ReservationRecord& r) override {
    TenantState* t = e_.FindTenant(r.tenant_id);
    auto m = cat_.FindMeter(r.meter);
    if (!t || !m || r.expires_at <= now_) return;
    MutexLock lock(&t->mu);
    t->Traffic().holds.Add(r.id, HeldUnits{*m, r.units, r.expires_at});
  }

  void Idempotency(IdempotencyRecord& r) override {
    TenantState* t = idempotency_.Find(*this, r.tenant_id);
    if (!t) return;
    MutexLock lock(&t->mu);
    std::string key = std::move(r.key);
    t->Traffic().idempotency[std::move(key)] = EntryOf(std::move(r));
  }

  // A tenant's first key is created with it, so key rows mostly come in tenant
  // order: try the tenant after the last one matched before hashing.
  void Key(ApiKeyRecord& k) override {
    TenantState* t = nullptr;
    if (key_cursor_ < e_.tenant_order_.size() && e_.tenant_order_[key_cursor_]->id == k.tenant_id) {
      t = e_.tenant_order_[key_cursor_++];
    } else {
      t = e_.FindTenant(k.tenant_id);
    }
    if (!t) return;
    e_.AddKeyLocked(ToKeyHash(k.hash), KeyEntry{std::move(k.key_id), t, k.revoked, true, {}});
  }

  void KeyRateLimits(KeyRateLimitsRecord& l) override {
    if (KeyEntry* e = e_.FindKeyByIdLocked(l.key_id)) e->limits = l.limits;
  }

  void Session(SessionRecord& s) override {
    TenantState* t = sessions_.Find(*this, s.tenant_id);
    if (!t) return;
    MutexLock lock(&t->mu);
    // A status the engine does not know (edited in the database) loads as failed.
    const absl::string_view status = SessionStatusLiteral(s.status);
    const bool working = status == "working";
    const std::string rec_id = s.id;
    t->Leases().sessions[std::move(s.id)] =
        SessionState{std::move(s.phone), status.empty() ? absl::string_view("failed") : status,
                     s.created_at,       s.updated_at,
                     s.first_working_at, s.last_heartbeat,
                     s.warmup_day,       s.warmup_count};
    if (s.tier_level != 0 || s.tier_since_ms != 0 || s.tier_qualified_ms != 0) {
      SessionTier& tier = t->Leases().sessions[rec_id].Tier();
      tier.level =
          TierLevel{static_cast<uint32_t>(s.tier_level), s.tier_since_ms, s.tier_qualified_ms};
    }
    if (working) {
      t->used[e_.sessions_meter_] += 1;
      t->Leases().next_lease_expiry =
          std::min(t->Leases().next_lease_expiry, s.last_heartbeat + e_.opts_.session_lease_ttl);
    }
  }

  void Group(GroupRecord& g) override {
    TenantState* t = groups_.Find(*this, g.tenant_id);
    if (!t) return;
    MutexLock lock(&t->mu);
    t->Leases().groups[std::move(g.id)] = GroupState{std::move(g.name), g.created_at};
    t->used[e_.groups_meter_] += 1;
  }

  // The lease-counted gauges come from their sessions and groups, never from
  // a gauge row (which the other group's sessions could race with).
  void Gauge(GaugeRecord& g) override {
    TenantState* t = gauges_.Find(*this, g.tenant_id);
    auto m = cat_.FindMeter(g.meter);
    if (!t || !m || *m == e_.sessions_meter_ || *m == e_.groups_meter_) return;
    MutexLock lock(&t->mu);
    t->used[*m] = g.value;
  }

 private:
  // Follows one stream along by_id_ (the tenants in id order, which is the
  // order of the SQLite store's streams): a string comparison instead of a
  // hash lookup with its cache misses (1 M tenants: FindTenant was a fifth of
  // start-up). Any tenant not found this way is looked up by hash, so the
  // result never depends on the order.
  class Cursor {
   public:
    TenantState* Find(const Loader& l, absl::string_view id) {
      const auto& order = l.by_id_;
      while (next_ < order.size() && absl::string_view(order[next_]->id) < id) ++next_;
      if (next_ < order.size() && order[next_]->id == id) return order[next_];
      return l.e_.FindTenant(id);
    }

   private:
    size_t next_ = 0;
  };

  Engine& e_;
  const Catalog& cat_;
  const absl::Time now_;
  std::vector<TenantState*> by_id_;  // set by TenantsLoaded, read-only after
  // Each group's own position (the two groups may run side by side).
  Cursor counters_, idempotency_, groups_, gauges_;  // usage
  size_t key_cursor_ = 0;                            // keys: next index into tenant_order_
  Cursor sessions_;                                  // keys and sessions
};

absl::Status Engine::Start() {
  if (absl::Status s = OpenJournals(); !s.ok()) return s;
  {
    MutexLock reg(&registry_mu_);
    const absl::Time now = clock_->Now();
    Loader loader(*this, now);
    if (absl::Status s = store_->Load(now - opts_.idempotency_ttl, loader); !s.ok()) {
      return s;
    }

    absl::StatusOr<std::vector<SubscriptionChange>> pending = store_->PendingPlanChanges();
    if (!pending.ok()) return pending.status();
    for (SubscriptionChange& c : *pending) {
      TenantState* t = FindTenant(c.tenant_id);
      if (!t || !opts_.catalog->FindPlan(c.to_plan)) continue;
      MutexLock lock(&t->mu);
      t->pending_plan = std::move(c);
    }
    absl::StatusOr<std::vector<AddonRecord>> addons = store_->Addons("", now);
    if (!addons.ok()) return addons.status();
    for (AddonRecord& a : *addons) {
      TenantState* t = FindTenant(a.tenant_id);
      if (!t) continue;
      MutexLock lock(&t->mu);
      t->addons.push_back(std::move(a));
    }
    absl::StatusOr<std::vector<TopupRecord>> topups = store_->Topups("", now);
    if (!topups.ok()) return topups.status();
    for (TopupRecord& r : *topups) {
      TenantState* t = FindTenant(r.tenant_id);
      if (!t) continue;
      MutexLock lock(&t->mu);
      t->topups.push_back(std::move(r));
    }
    if (!opts_.shared_ledger) {
      if (absl::Status s = LoadTierRecipients(now); !s.ok()) return s;
    }
    if (journals_) {
      for (const CommitBatch& part : journals_->replay()) TakeInReplayedRecords(part, now);
      journals_->HandOverReplay();  // folded by the writer's first round
    }
  }

  queue_.Start();
  if (opts_.shared_ledger) {
    if (!opts_.facts_stream) return absl::InvalidArgumentError("scale-out needs a facts stream");
    FactsDrainStore drained;
    drained.commit_alone = [this](CommitBatch b) { return CommitDrained(std::move(b)); };
    drained.tenant_ids = [this] { return store_->TenantIds(); };
    drained.lead_sweep = [this] {
      // Held for three sweeps: a leader that stops is replaced within that.
      return store_->HoldLease("facts-sweep", opts_.instance_name,
                               3 * opts_.facts_drain.sweep_every);
    };
    drained.reconcile = [this] { return ReconcileFailOpen(); };
    drain_ = std::make_unique<FactsDrain>(opts_.facts_stream, std::move(drained), opts_.facts_drain,
                                          &stats_);
    drain_->Start();
  }
  return absl::OkStatus();
}

void Engine::Stop() {
  if (blocking_pool_) blocking_pool_->Stop();  // before what its tasks use
  if (drain_) drain_->Stop();
  queue_.Stop();
  if (journals_) journals_->TruncateFolded();
}

absl::Status Engine::OpenJournals() {
  if (opts_.shared_ledger || opts_.journal.count == 0 || opts_.journal.dir.empty() ||
      !store_->KeepsJournalMarks()) {
    return absl::OkStatus();
  }
  JournalCounters counters{stats_.journal_writes.Child({"ok"}),
                           stats_.journal_writes.Child({"failed"}),
                           stats_.journal_records.Child({"acknowledged"})};
  absl::StatusOr<std::unique_ptr<JournalSet>> set =
      JournalSet::Open(opts_.journal, store_, &queue_, counters);
  if (!set.ok()) return set.status();
  journals_ = std::move(*set);
  stats_.journal_records.Add({"replayed"}, journals_->replayed());
  queue_.SetFoldedObserver(
      [set = journals_.get()](const std::vector<JournalMark>& marks) { set->OnFolded(marks); });
  return absl::OkStatus();
}

void Engine::TakeInReplayedRecords(const CommitBatch& replayed, absl::Time now) {
  for (const UsageDelta& u : replayed.usage) {
    TenantState* t = FindTenant(u.tenant_id);
    if (!t) continue;
    MutexLock lock(&t->mu);
    std::optional<MeterId> m = CurrentPeriodCounter(*opts_.catalog, *t, u.meter, u.period_start);
    if (!m) continue;
    uint64_t& used = t->used[*m];
    used = used > UINT64_MAX - u.quantity ? UINT64_MAX : used + u.quantity;
  }
  for (const IdempotencyRecord& r : replayed.idempotency) {
    TenantState* t = FindTenant(r.tenant_id);
    if (!t || r.created_at < now - opts_.idempotency_ttl) continue;
    MutexLock lock(&t->mu);
    t->Traffic().idempotency[r.key] = EntryOf(r);
  }
  for (const TopupDraw& d : replayed.topup_draws) {
    TenantState* t = FindTenant(d.tenant_id);
    if (!t) continue;
    MutexLock lock(&t->mu);
    for (TopupRecord& r : t->topups) {
      if (r.id == d.id) r.drawn = std::min(r.units, r.drawn + d.units);
    }
  }
}

void Engine::BindJournal(size_t index, Journal::Post post) {
  if (journals_ && index < journals_->size())
    journals_->at(index)->BindToThisThread(std::move(post));
}

void Engine::UnbindJournal() {
  if (Journal* j = Journal::OfThisThread()) j->Unbind();
}

void Engine::SetUpTenant(TenantState& t, const Plan& plan, absl::Time subscription_start,
                         absl::Time created_at, absl::Time now) const {
  const Catalog& cat = *opts_.catalog;
  t.plan = &plan;
  t.profile = cat.FindProfile(plan.rate_limit_profile);
  t.subscription_start = subscription_start;
  t.created_at = created_at;
  t.period = PeriodAt(subscription_start, plan.interval, now);
  t.used.assign(cat.meter_count(), 0);
}

UsageDelta Engine::ApiCallRow(const TenantState& t, absl::Time period_start, absl::Time now) {
  return UsageDelta{t.id, std::string(meters::kApiCalls), "", period_start, now, 1};
}

absl::Status Engine::Ready() const {
  for (auto& [name, status] : Dependencies()) {
    if (!status.ok())
      return absl::Status(status.code(), absl::StrCat(name, ": ", status.message()));
  }
  return absl::OkStatus();
}

std::vector<std::pair<std::string, absl::Status>> Engine::Dependencies() const {
  std::vector<std::pair<std::string, absl::Status>> out;
  out.emplace_back("store", store_->CheckWritable());
  if (opts_.shared_ledger) out.emplace_back("redis", opts_.shared_ledger->Ping());
  return out;
}

TenantState* Engine::FindTenant(absl::string_view id) const {
  // Called with or without registry_mu_ held by the caller's context:
  // callers outside Start() take a reader lock first.
  auto it = tenants_.find(id);
  return it == tenants_.end() ? nullptr : *it;
}

TenantState* Engine::FindTenantShared(absl::string_view id) const {
  ReaderMutexLock reg(&registry_mu_);
  return FindTenant(id);
}

void Engine::AddKeyLocked(const KeyHash& hash, KeyEntry entry) {
  KeyEntry& e = keys_by_hash_[hash];
  ForgetKeyIdLocked(e);  // the id this entry had, if any
  e = std::move(entry);
  keys_by_id_.erase(e.key_id);  // an older entry's claim on the id, as a map's assignment would
  keys_by_id_.insert(&e);
}

void Engine::EraseKeyLocked(const KeyHash& hash) {
  auto it = keys_by_hash_.find(hash);
  if (it == keys_by_hash_.end()) return;
  ForgetKeyIdLocked(it->second);
  keys_by_hash_.erase(it);
}

void Engine::ForgetKeyIdLocked(const KeyEntry& e) {
  if (e.key_id.empty()) return;  // a new entry (start-up: no probe)
  if (auto it = keys_by_id_.find(e.key_id); it != keys_by_id_.end() && *it == &e) {
    keys_by_id_.erase(it);
  }
}

Engine::KeyEntry* Engine::FindKeyLocked(const KeyHash& hash) {
  auto it = keys_by_hash_.find(hash);
  return it == keys_by_hash_.end() ? nullptr : &it->second;
}

Engine::KeyEntry* Engine::FindKeyByIdLocked(absl::string_view key_id) const {
  auto it = keys_by_id_.find(key_id);
  return it == keys_by_id_.end() ? nullptr : *it;
}

absl::StatusOr<Principal> Engine::Authenticate(absl::string_view secret, bool may_read_store,
                                               absl::string_view raw_hash_known) {
  if (secret.empty()) {
    return Error(absl::StatusCode::kUnauthenticated, "unauthorized",
                 "Missing API key: send it as \"Authorization: Bearer <key>\" or \"X-API-Key\".");
  }
  const std::string raw_hash =
      raw_hash_known.empty() ? HashSecret(secret) : std::string(raw_hash_known);
  const KeyHash hash = ToKeyHash(raw_hash);
  if (store_->Shared()) return AuthenticateShared(hash, raw_hash, may_read_store);
  ReaderMutexLock lock(&registry_mu_);
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
  if (!t.topups.empty()) {
    std::erase_if(t.topups, [&](const TopupRecord& r) { return r.expires_at <= now; });
  }
  if (t.period.Contains(now)) return;
  ApplyDuePlanChange(t, now);
  // Add-ons cancelled in the period that ended stop counting.
  std::erase_if(t.addons, [&](const AddonRecord& a) { return a.ends_at && *a.ends_at <= now; });
  BillingPeriod next = PeriodAt(t.subscription_start, t.plan->interval, now);
  if (next == t.period) return;
  t.period = next;
  const Catalog& cat = *opts_.catalog;
  for (size_t m = 0; m < cat.meter_count(); ++m) {
    if (cat.meters[m].kind == MeterKind::kCounter) t.used[m] = 0;
  }
}

std::optional<uint64_t> Engine::EffectiveLimit(const TenantState& t, MeterId m) const {
  return LimitOf(*t.plan, &t.overrides, m, opts_.catalog, &t.addons);
}

std::optional<uint64_t> Engine::LimitWithTopupsOf(const TenantState& t, MeterId m, uint64_t used,
                                                  absl::Time now) const {
  const TopupBalance b = TopupBalanceOf(t.topups, opts_.catalog->meters[m].name, now);
  return LimitWithTopups(EffectiveLimit(t, m), b.any, used, b.left);
}

TenantView Engine::ViewOf(const TenantState& t) const {
  return TenantView{t.id,         t.name,   t.plan->name, t.subscription_start,
                    t.created_at, t.period, t.overrides};
}

}  // namespace quotum::engine
