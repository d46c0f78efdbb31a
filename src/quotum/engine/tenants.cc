// Engine: tenants, API keys and limit overrides (admin use cases).
#include "absl/strings/str_cat.h"
#include "quotum/core/ids.h"
#include "quotum/engine/alerts.h"
#include "quotum/engine/engine.h"
#include "quotum/engine/errors.h"

namespace quotum::engine {

namespace {

// The spec's own fields; the plan and the start are checked against the catalog and clock.
absl::Status CheckTenantFields(const TenantSpec& spec) {
  if (!IsValidId(spec.id)) {
    return BadRequest("invalid_tenant_id",
                      "Tenant id must be 1-64 characters of letters, digits, '_', '-' or '.'.");
  }
  if (spec.name.size() > 200) {
    return BadRequest("invalid_name", "Tenant name must be at most 200 characters.");
  }
  return absl::OkStatus();
}

absl::Status TenantExists(absl::string_view id) {
  return Error(absl::StatusCode::kAlreadyExists, "tenant_exists",
               absl::StrCat("Tenant \"", id, "\" already exists."));
}

}  // namespace

absl::Status Engine::CheckSubscriptionStart(const TenantSpec& spec, absl::Time now) const {
  if (!spec.subscription_start) return absl::OkStatus();
  if (*spec.subscription_start <= now + opts_.max_clock_skew &&
      *spec.subscription_start >= absl::UnixEpoch()) {
    return absl::OkStatus();
  }
  return Unprocessable(
      "invalid_subscription_start",
      "subscription_start must lie between 1970-01-01 and now: usage is counted from it, and "
      "future-dated subscriptions are not supported.");
}

void Engine::CreateTenant(TenantSpec spec, Callback<CreatedTenant> done) {
  const Catalog& cat = *opts_.catalog;
  if (absl::Status s = CheckTenantFields(spec); !s.ok()) return done(s);
  if (spec.plan.empty()) spec.plan = opts_.default_plan;
  const Plan* plan = cat.FindPlan(spec.plan);
  if (!plan) {
    return done(Unprocessable("unknown_plan", absl::StrCat("Unknown plan \"", spec.plan, "\".")));
  }
  const absl::Time now = clock_->Now();
  if (absl::Status s = CheckSubscriptionStart(spec, now); !s.ok()) return done(s);
  // Whole seconds: periods are stored and reported with second precision.
  const absl::Time start =
      absl::FromUnixSeconds(absl::ToUnixSeconds(spec.subscription_start.value_or(now)));
  if (store_->Shared()) {
    // Another instance may have made it: this one's memory cannot say.
    absl::StatusOr<std::optional<KeySnapshot>> known = store_->FindTenant(spec.id);
    if (!known.ok()) return done(StoreUnavailable("The tenants"));
    if (*known) return done(TenantExists(spec.id));
  }
  MintedKey key = MintApiKey();

  TenantState* t = nullptr;
  TenantView view;
  {
    MutexLock reg(&registry_mu_);
    if (tenants_.contains(spec.id)) return done(TenantExists(spec.id));
    t = tenant_arena_.New(spec.id);
    {
      MutexLock lock(&t->mu);
      t->name = spec.name.empty() ? spec.id : spec.name;
      SetUpTenant(*t, *plan, start, absl::FromUnixSeconds(absl::ToUnixSeconds(now)), now);
      view = ViewOf(*t);
    }
    tenants_.insert(t);
    tenant_order_.push_back(t);
    AddKeyLocked(ToKeyHash(key.hash), KeyEntry{key.key_id, t, false, false, {}});
  }
  TenantRecord rec{view.id, view.name, view.plan, view.subscription_start, view.created_at};
  ApiKeyRecord key_rec{key.key_id, view.id, key.hash, view.created_at, false};
  const bool shared = store_->Shared();
  CommitQueue::Done finish = [this, t, view, key, shared,
                              done = std::move(done)](absl::Status s) mutable {
    // Committed alone (below), a new tenant and a key with fresh random ids
    // can break only one constraint: the tenant's id, made meanwhile by
    // another instance.
    if (shared && s.code() == absl::StatusCode::kFailedPrecondition) s = TenantExists(view.id);
    if (!s.ok()) {
      MutexLock reg(&registry_mu_);
      EraseKeyLocked(ToKeyHash(key.hash));
      std::erase(tenant_order_, t);
      // Another thread may have just looked `t` up by id: the arena keeps it alive.
      tenants_.erase(view.id);
      return done(s);
    }
    {
      MutexLock reg(&registry_mu_);
      if (KeyEntry* e = FindKeyLocked(ToKeyHash(key.hash))) e->committed = true;
    }
    {
      MutexLock lock(&t->mu);
      t->committed = true;
    }
    done(CreatedTenant{view, key});
  };
  CommitNewTenant(std::move(rec), std::move(key_rec), finish);
}

void Engine::CommitNewTenant(TenantRecord rec, ApiKeyRecord key, CommitQueue::Done& finish) {
  if (store_->Shared()) {
    // Alone: two instances may make the same tenant at once, and the refused
    // one must answer 409 without failing the other requests of a group.
    CommitBatch b;
    b.tenants.push_back(std::move(rec));
    b.keys.push_back(std::move(key));
    if (!queue_.CommitAlone(std::move(b), finish)) finish(ShuttingDown());
    return;
  }
  if (!queue_.Enqueue(
          [&](CommitBatch& b) {
            b.tenants.push_back(std::move(rec));
            b.keys.push_back(std::move(key));
          },
          finish)) {
    finish(ShuttingDown());
  }
}

absl::StatusOr<std::vector<TenantView>> Engine::ListTenants() {
  if (absl::Status s = AdoptEveryTenant(); !s.ok()) return StoreUnavailable("The tenants");
  std::vector<TenantState*> order;
  {
    ReaderMutexLock reg(&registry_mu_);
    order = tenant_order_;
  }
  std::vector<TenantView> out;
  out.reserve(order.size());
  const absl::Time now = clock_->Now();
  for (TenantState* t : order) {
    MutexLock lock(&t->mu);
    if (!t->committed) continue;
    Touch(*t, now);
    out.push_back(ViewOf(*t));
  }
  return out;
}

absl::StatusOr<TenantView> Engine::GetTenant(absl::string_view id) {
  // Shared store: read again, so that a plan or limits changed through
  // another instance show at once.
  absl::StatusOr<TenantState*> t =
      store_->Shared() ? ReadTenantFromStore(id) : FindOrAdoptTenant(id);
  if (!t.ok()) return t.status();
  if (*t == nullptr) return TenantNotFound(id);
  MutexLock lock(&(*t)->mu);
  Touch(**t, clock_->Now());
  return ViewOf(**t);
}

absl::StatusOr<Principal> Engine::ActAsTenant(absl::string_view id) {
  absl::StatusOr<TenantState*> t = FindOrAdoptTenant(id);
  if (!t.ok()) return t.status();
  if (*t == nullptr) return TenantNotFound(id);
  Principal who;
  who.tenant = *t;
  return who;
}

void Engine::CreateKey(absl::string_view tenant_id, Callback<MintedKey> done) {
  auto view = GetTenant(tenant_id);
  if (!view.ok()) return done(view.status());
  MintedKey key = MintApiKey();
  {
    MutexLock reg(&registry_mu_);
    AddKeyLocked(ToKeyHash(key.hash),
                 KeyEntry{key.key_id, FindTenant(tenant_id), false, false, {}});
  }
  ApiKeyRecord rec{key.key_id, view->id, key.hash,
                   absl::FromUnixSeconds(absl::ToUnixSeconds(clock_->Now())), false};
  CommitQueue::Done finish = [this, key, done = std::move(done)](const absl::Status& s) mutable {
    {
      MutexLock reg(&registry_mu_);
      if (!s.ok()) {
        EraseKeyLocked(ToKeyHash(key.hash));
      } else if (KeyEntry* e = FindKeyLocked(ToKeyHash(key.hash))) {
        e->committed = true;
      }
    }
    if (!s.ok()) return done(s);
    done(key);
  };
  if (!queue_.Enqueue([&](CommitBatch& b) { b.keys.push_back(rec); }, finish)) {
    finish(ShuttingDown());
  }
}

void Engine::RevokeKey(absl::string_view key_id, Callback<std::string> done) {
  std::string id(key_id);
  if (absl::Status s = AdoptKeyById(id); !s.ok()) return done(s);
  {
    MutexLock reg(&registry_mu_);
    KeyEntry* e = FindKeyByIdLocked(id);
    if (!e || !e->committed) {
      return done(Error(absl::StatusCode::kNotFound, "key_not_found",
                        absl::StrCat("No API key \"", id, "\".")));
    }
    if (e->revoked) return done(id);  // revoking twice is a no-op
    e->revoked = true;                // refused from now on; restored if the commit fails
  }
  CommitQueue::Done finish = [this, id, done = std::move(done)](const absl::Status& s) mutable {
    if (!s.ok()) {
      {
        MutexLock reg(&registry_mu_);
        if (KeyEntry* e = FindKeyByIdLocked(id)) e->revoked = false;
      }
      return done(s);
    }
    done(id);
  };
  if (!queue_.Enqueue([&](CommitBatch& b) { b.revoked_key_ids.push_back(id); }, finish)) {
    finish(ShuttingDown());
  }
}

void Engine::SetLimits(absl::string_view tenant_id,
                       std::vector<std::pair<std::string, std::optional<uint64_t>>> limits,
                       Callback<TenantView> done) {
  const Catalog& cat = *opts_.catalog;
  std::vector<std::pair<MeterId, std::optional<uint64_t>>> resolved;
  for (auto& [name, value] : limits) {
    auto m = cat.FindMeter(name);
    if (!m)
      return done(Unprocessable("unknown_meter", absl::StrCat("Unknown meter \"", name, "\".")));
    if (!cat.meters[*m].limitable) {
      return done(
          Unprocessable("meter_not_limitable",
                        absl::StrCat("\"", name, "\" is tracked only and cannot be limited.")));
    }
    resolved.emplace_back(*m, value);
  }
  absl::StatusOr<TenantState*> found = FindOrAdoptTenant(tenant_id);
  if (!found.ok()) return done(found.status());
  TenantState* t = *found;
  if (!t) return done(TenantNotFound(tenant_id));
  absl::StatusOr<FiredAlerts> fired = ReadFiredAlerts(*t);
  if (!fired.ok()) return done(fired.status());
  absl::AnyInvocable<void()> after;
  {
    MutexLock lock(&t->mu);
    if (!t->committed) {
      return done(TenantNotFound(tenant_id));
    }
    auto previous = t->overrides;
    if (t->overrides.empty()) t->overrides.assign(cat.meter_count(), std::nullopt);
    for (auto& [m, v] : resolved) t->overrides[m] = v;
    const std::vector<AlertRecord> no_longer = ResolvedLocked(*t, *fired, clock_->Now());
    TenantView view = ViewOf(*t);
    CommitQueue::Done finish = [t, previous = std::move(previous), view,
                                done = std::move(done)](const absl::Status& s) mutable {
      if (!s.ok()) {
        {
          MutexLock l(&t->mu);
          t->overrides = previous;
        }
        return done(s);
      }
      done(view);
    };
    finish = GuardLocalChangeLocked(*t, std::move(finish));
    bool queued = queue_.Enqueue(
        [&](CommitBatch& b) {
          for (auto& [name, value] : limits) b.overrides.push_back({t->id, name, value});
          AppendResolved(no_longer, b);
        },
        finish);
    if (!queued) after = [finish = std::move(finish)]() mutable { finish(ShuttingDown()); };
  }
  if (after) after();
}

absl::StatusOr<KeyLimitsView> Engine::GetKeyRateLimits(absl::string_view key_id) {
  if (absl::Status s = AdoptKeyById(std::string(key_id)); !s.ok()) return s;
  KeyRateLimits custom;
  TenantState* t = nullptr;
  {
    ReaderMutexLock reg(&registry_mu_);
    const KeyEntry* e = FindKeyByIdLocked(key_id);
    if (!e || !e->committed || e->revoked) {
      return Error(absl::StatusCode::kNotFound, "key_not_found",
                   absl::StrCat("No active API key \"", key_id, "\"."));
    }
    custom = e->limits;
    t = e->tenant;
  }
  MutexLock lock(&t->mu);
  const RateLimitProfile& p = *t->profile;
  return KeyLimitsView{std::string(key_id),
                       t->id,
                       p.name,
                       custom.general.value_or(p.general),
                       custom.messages.value_or(p.messages),
                       custom.sessions.value_or(p.sessions),
                       custom};
}

void Engine::SetKeyRateLimits(absl::string_view key_id, KeyRateLimits patch,
                              Callback<KeyLimitsView> done) {
  const std::string id(key_id);
  if (absl::Status s = AdoptKeyById(id); !s.ok()) return done(s);
  KeyRateLimits before, after;
  {
    MutexLock reg(&registry_mu_);
    KeyEntry* e = FindKeyByIdLocked(id);
    if (!e || !e->committed || e->revoked) {
      return done(Error(absl::StatusCode::kNotFound, "key_not_found",
                        absl::StrCat("No active API key \"", id, "\".")));
    }
    before = e->limits;
    after = before;
    if (patch.general) after.general = patch.general;
    if (patch.messages) after.messages = patch.messages;
    if (patch.sessions) after.sessions = patch.sessions;
    e->limits = after;  // effective for the next authentication
  }
  CommitQueue::Done finish = [this, id, before, after,
                              done = std::move(done)](const absl::Status& s) mutable {
    if (!s.ok()) {
      {
        MutexLock reg(&registry_mu_);
        KeyEntry* e = FindKeyByIdLocked(id);
        if (e && e->limits == after) e->limits = before;
      }
      return done(s);
    }
    done(GetKeyRateLimits(id));
  };
  if (!queue_.Enqueue([&](CommitBatch& b) { b.key_rate_limits.push_back({id, after}); }, finish)) {
    finish(ShuttingDown());
  }
}

}  // namespace quotum::engine
