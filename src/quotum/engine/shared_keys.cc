// Engine: API keys read through a cold store that several instances share.
// Each instance keeps its start-up snapshot of tenants and keys in memory;
// a key it does not know, or has not had confirmed for a second, is read
// from the store again, so what another instance made, revoked or changed
// reaches this one within a second.
#include "quotum/engine/engine.h"
#include "quotum/engine/errors.h"

namespace quotum::engine {
namespace {

/// How long a key confirmed by the shared store is trusted without asking again.
constexpr absl::Duration kKeyRecheck = absl::Seconds(1);
/// From this age on, a key in use is read again in the background, so that
/// its check is renewed before it lapses.
constexpr absl::Duration kKeyRefreshAhead = absl::Milliseconds(750);
/// PlanKeyLookup sends a key this close to its lapse to the store read, so
/// that Authenticate, called inline right after it, does not find the check
/// lapsed and read the store on an I/O thread.
constexpr absl::Duration kInlineSlack = absl::Milliseconds(50);

absl::Status InvalidKey() {
  return Error(absl::StatusCode::kUnauthenticated, "unauthorized", "Invalid or revoked API key.");
}

// `t` once it is committed (a tenant still being created is not), else null.
TenantState* IfCommitted(TenantState* t) {
  if (t == nullptr) return nullptr;
  MutexLock lock(&t->mu);
  return t->committed ? t : nullptr;
}

}  // namespace

absl::StatusOr<Principal> Engine::AuthenticateShared(const KeyHash& hash,
                                                     const std::string& raw_hash,
                                                     bool may_read_store) {
  const absl::Time now = clock_->Now();
  std::optional<Principal> cached;
  {
    ReaderMutexLock lock(&registry_mu_);
    auto it = keys_by_hash_.find(hash);
    if (it != keys_by_hash_.end() && it->second.committed) {
      const KeyEntry& e = it->second;
      if (now - e.checked_at < kKeyRecheck || !may_read_store) {
        if (e.revoked) return InvalidKey();
        return Principal{e.tenant, e.key_id, e.limits};
      }
      if (!e.revoked) cached = Principal{e.tenant, e.key_id, e.limits};
    }
  }
  return ReadKeyFromStore(hash, raw_hash, cached);
}

absl::StatusOr<Principal> Engine::ReadKeyFromStore(const KeyHash& hash, const std::string& raw_hash,
                                                   const std::optional<Principal>& cached) {
  const StoreRead read = BeginStoreRead();
  absl::StatusOr<std::optional<KeySnapshot>> snap = store_->FindKey(raw_hash);
  if (!snap.ok()) {
    // The store is away: keep serving the keys this instance knows.
    if (cached) return *cached;
    return StoreUnavailable("The key store");
  }
  if (!*snap) return InvalidKey();
  MutexLock lock(&registry_mu_);
  if (TenantState* t = FindTenant((*snap)->tenant.id); t == nullptr) {
    if (AdoptTenant(**snap, read) == nullptr) return InvalidKey();
  } else {
    AdoptTenant(**snap, read);
  }
  const KeyEntry& e = AdoptKey(**snap, hash, read.now);
  if (e.revoked) return InvalidKey();
  return Principal{e.tenant, e.key_id, e.limits};
}

Engine::KeyLookup Engine::PlanKeyLookup(absl::string_view secret, std::string* raw_hash) {
  if (!store_->Shared() || secret.empty()) return KeyLookup::kInMemory;
  std::string taken = HashSecret(secret);
  const KeyHash hash = ToKeyHash(taken);
  if (raw_hash != nullptr) *raw_hash = std::move(taken);
  absl::Duration age;
  {
    ReaderMutexLock lock(&registry_mu_);
    auto it = keys_by_hash_.find(hash);
    if (it == keys_by_hash_.end() || !it->second.committed) return KeyLookup::kReadsStore;
    age = clock_->Now() - absl::Time(it->second.checked_at);
  }
  if (age >= kKeyRecheck - kInlineSlack) return KeyLookup::kReadsStore;
  if (age < kKeyRefreshAhead) return KeyLookup::kInMemory;
  MutexLock lock(&key_refresh_mu_);
  return key_refreshes_.insert(hash).second ? KeyLookup::kInMemoryRefreshDue : KeyLookup::kInMemory;
}

void Engine::RefreshKey(absl::string_view secret) {
  const std::string raw_hash = HashSecret(secret);
  const KeyHash hash = ToKeyHash(raw_hash);
  (void)ReadKeyFromStore(hash, raw_hash, std::nullopt);  // the outcome is in the entry
  MutexLock lock(&key_refresh_mu_);
  key_refreshes_.erase(hash);
}

Engine::KeyEntry& Engine::AdoptKey(const KeySnapshot& snap, const KeyHash& hash, absl::Time now) {
  KeyEntry* e = FindKeyLocked(hash);
  if (e != nullptr && e->committed && absl::Time(e->checked_at) > now) return *e;
  if (e == nullptr) {
    AddKeyLocked(hash, KeyEntry{snap.key.key_id, FindTenant(snap.tenant.id), false, true, {}});
    e = FindKeyLocked(hash);
  }
  e->revoked = snap.key.revoked;
  e->limits = snap.limits;
  e->committed = true;
  e->checked_at = now;
  return *e;
}

absl::Status Engine::AdoptKeyById(const std::string& key_id) {
  if (!store_->Shared()) return absl::OkStatus();
  // Taken before the read, as in ReadKeyFromStore: AdoptKey keeps whichever
  // read began last.
  const StoreRead read = BeginStoreRead();
  absl::StatusOr<std::optional<KeySnapshot>> snap = store_->FindKeyById(key_id);
  if (!snap.ok()) return StoreUnavailable("The key store");
  if (!*snap) return absl::OkStatus();  // unknown: the caller's lookup says so
  MutexLock lock(&registry_mu_);
  if (AdoptTenant(**snap, read) == nullptr) return absl::OkStatus();  // a plan this config lacks
  AdoptKey(**snap, ToKeyHash((*snap)->key.hash), read.now);
  return absl::OkStatus();
}

absl::Status Engine::AdoptEveryTenant() {
  if (!store_->Shared()) return absl::OkStatus();
  const StoreRead read = BeginStoreRead();
  absl::StatusOr<std::vector<KeySnapshot>> snaps = store_->AllTenants();
  if (!snaps.ok()) return snaps.status();
  for (const KeySnapshot& snap : *snaps) {
    // One tenant per hold of the registry: requests go on between them.
    MutexLock lock(&registry_mu_);
    AdoptTenant(snap, read);  // nullptr: a plan this config lacks; left out
  }
  return absl::OkStatus();
}

absl::StatusOr<TenantState*> Engine::FindOrAdoptTenant(absl::string_view id) {
  TenantState* t = FindTenantShared(id);
  if (t == nullptr && store_->Shared()) {
    const StoreRead read = BeginStoreRead();  // before the read, as for keys
    absl::StatusOr<std::optional<KeySnapshot>> snap = store_->FindTenant(std::string(id));
    if (!snap.ok()) return StoreUnavailable("The tenant");
    if (*snap) {
      MutexLock lock(&registry_mu_);
      t = AdoptTenant(**snap, read);
    }
  }
  return IfCommitted(t);
}

absl::StatusOr<TenantState*> Engine::ReadTenantFromStore(absl::string_view id) {
  const StoreRead read = BeginStoreRead();
  absl::StatusOr<std::optional<KeySnapshot>> snap = store_->FindTenant(std::string(id));
  if (!snap.ok()) {
    // The store is away: a tenant this instance holds is shown as last seen.
    TenantState* known = FindTenantShared(id);
    if (known == nullptr) return StoreUnavailable("The tenant");
    return IfCommitted(known);
  }
  if (!*snap) return nullptr;
  TenantState* t = nullptr;
  {
    MutexLock lock(&registry_mu_);
    t = AdoptTenant(**snap, read);
  }
  return IfCommitted(t);  // null too for a plan this config lacks
}

Engine::StoreRead Engine::BeginStoreRead() const {
  return StoreRead{clock_->Now(), local_changes_settled_.load()};
}

TenantState* Engine::AdoptTenant(const KeySnapshot& snap, const StoreRead& read) {
  const Catalog& cat = *opts_.catalog;
  const Plan* plan = cat.FindPlan(snap.tenant.plan);
  if (plan == nullptr) return nullptr;
  TenantState* t = FindTenant(snap.tenant.id);
  if (t == nullptr) {
    t = tenant_arena_.New(snap.tenant.id);
    MutexLock lock(&t->mu);
    SetUpTenant(*t, *plan, snap.tenant.subscription_start, snap.tenant.created_at, read.now);
    t->committed = true;
    tenants_.insert(t);
    tenant_order_.push_back(t);
  }
  MutexLock lock(&t->mu);
  if (t->traffic && (t->traffic->local_changes_in_flight > 0 ||
                     read.changes_settled < t->traffic->local_change_settled)) {
    return t;  // the snapshot may predate a change made here
  }
  t->name = snap.tenant.name;
  t->plan = plan;
  t->profile = cat.FindProfile(plan->rate_limit_profile);
  t->pending_plan = snap.pending_plan;
  t->addons = snap.addons;
  t->topups = snap.topups;
  t->overrides.clear();
  for (const LimitOverride& o : snap.overrides) {
    auto m = cat.FindMeter(o.meter);
    if (!m) continue;
    if (t->overrides.empty()) t->overrides.assign(cat.meter_count(), std::nullopt);
    t->overrides[*m] = o.limit;
  }
  return t;
}

CommitQueue::Done Engine::GuardLocalChangeLocked(TenantState& t, CommitQueue::Done finish) {
  ++t.Traffic().local_changes_in_flight;
  return [this, tp = &t, finish = std::move(finish)](const absl::Status& s) mutable {
    finish(s);  // a failed change is undone before reads may apply again
    MutexLock lock(&tp->mu);
    TenantTraffic& traffic = tp->Traffic();
    --traffic.local_changes_in_flight;
    traffic.local_change_settled = ++local_changes_settled_;
  };
}

}  // namespace quotum::engine
