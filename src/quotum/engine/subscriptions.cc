// Engine: plan changes and add-ons (the subscription ledger). An upgrade applies at once
// and is charged pro rata for the rest of the period; a downgrade waits for
// the period's end (Touch applies it at the rollover); the period's counters
// are never reset by a change. Admins move a tenant at once, to any plan.
// Each change is committed (the ledger line, the tenant's plan, an event)
// before it is answered; a failed commit takes the change back.
#include "absl/strings/str_cat.h"
#include "quotum/core/ids.h"
#include "quotum/core/plan_change.h"
#include "quotum/engine/alerts.h"
#include "quotum/engine/engine.h"
#include "quotum/engine/errors.h"
#include "quotum/engine/events.h"
#include "quotum/engine/packs.h"

namespace quotum::engine {
namespace {

absl::Status AddonNotFound(absl::string_view id) {
  return Error(absl::StatusCode::kNotFound, "addon_not_found",
               absl::StrCat("No add-on \"", id, "\"."));
}

absl::Status NoPendingChange() {
  return Error(absl::StatusCode::kNotFound, "no_pending_change",
               "There is no pending plan change to cancel.");
}

// The event the billing system hears of a change in.
EventRecord EventOf(const SubscriptionChange& c, absl::Time at) {
  const std::string type = c.kind == "addon_added"       ? "subscription.addon_added"
                           : c.kind == "addon_cancelled" ? "subscription.addon_cancelled"
                           : c.state == "pending"        ? "subscription.change_scheduled"
                           : c.state == "cancelled"      ? "subscription.change_cancelled"
                                                         : "subscription.changed";
  return EventRecord{
      c.tenant_id,
      type,
      c.id,
      absl::StrCat(c.from_plan, " -> ", c.to_plan, " (", c.kind, ", ", c.amount_cents,
                   " cents, by ", c.actor, ", effective ", FormatRfc3339(c.effective_at), ")"),
      at,
      EventId({c.tenant_id, type, c.id}),
      {{"change", c.id, false},
       {"from_plan", c.from_plan, false},
       {"to_plan", c.to_plan, false},
       {"kind", c.kind, false},
       {"amount_cents", absl::StrCat(c.amount_cents), true},
       {"actor", c.actor, false},
       {"effective_at", FormatRfc3339(c.effective_at), false}}};
}

}  // namespace

absl::StatusOr<PlanChangeQuote> Engine::QuoteLocked(const TenantState& t, absl::string_view plan,
                                                    bool admin, absl::Time now) const {
  const Plan* to = opts_.catalog->FindPlan(plan);
  if (!to) return Unprocessable("unknown_plan", absl::StrCat("Unknown plan \"", plan, "\"."));
  const Plan* from = t.plan;
  if (!admin && (to->price_cents < 0 || from->price_cents < 0)) {
    return Error(absl::StatusCode::kPermissionDenied, "plan_not_selectable",
                 absl::StrCat("\"", (to->price_cents < 0 ? to : from)->name,
                              "\" is priced by contract: an administrator changes it."));
  }
  if (!(to->interval.unit == from->interval.unit && to->interval.days == from->interval.days &&
        to->interval.calendar == from->interval.calendar)) {
    return Unprocessable("interval_mismatch",
                         absl::StrCat("\"", to->name, "\" bills on another interval than \"",
                                      from->name, "\"; a change keeps the billing period."));
  }
  PlanChangeQuote q{KindOfChange(*from, *to), from, to, now, 0};
  if (q.kind == PlanChangeKind::kDowngrade && !admin) {
    q.effective_at = t.period.end;
  } else if (q.kind != PlanChangeKind::kSame) {
    q.proration_cents = ProrationCents(from->price_cents, to->price_cents, t.period, now);
  }
  return q;
}

absl::StatusOr<PlanChangeQuote> Engine::PreviewPlanChange(const Principal& who,
                                                          absl::string_view plan) {
  TenantState& t = *who.tenant;
  MutexLock lock(&t.mu);
  const absl::Time now = clock_->Now();
  Touch(t, now);
  return QuoteLocked(t, plan, false, now);
}

void Engine::ChangePlan(const Principal& who, std::string plan, Callback<SubscriptionChange> done) {
  ApplyPlanChange(*who.tenant, plan, "tenant", std::move(done));
}

void Engine::AdminChangePlan(absl::string_view tenant_id, std::string plan,
                             Callback<SubscriptionChange> done) {
  TenantState* t = nullptr;
  {
    ReaderMutexLock reg(&registry_mu_);
    t = FindTenant(tenant_id);
  }
  if (!t) {
    return done(TenantNotFound(tenant_id));
  }
  ApplyPlanChange(*t, plan, "admin", std::move(done));
}

void Engine::ApplyPlanChange(TenantState& t, absl::string_view plan, absl::string_view actor,
                             Callback<SubscriptionChange> done) {
  absl::StatusOr<FiredAlerts> fired = ReadFiredAlerts(t);
  if (!fired.ok()) return done(fired.status());
  absl::AnyInvocable<void()> after;
  {
    MutexLock lock(&t.mu);
    const absl::Time now = clock_->Now();
    Touch(t, now);
    absl::StatusOr<PlanChangeQuote> q = QuoteLocked(t, plan, actor == "admin", now);
    if (q.ok() && q->kind == PlanChangeKind::kSame) {
      q = Unprocessable("same_plan", absl::StrCat("The subscription is on \"", plan,
                                                  "\" already (a pending change is cancelled "
                                                  "with DELETE /api/v2/subscription/pending)."));
    }
    if (!q.ok() || !t.committed) {
      absl::Status s = q.ok() ? TenantNotFound(t.id) : q.status();
      after = [done = std::move(done), s]() mutable { done(s); };
    } else {
      SubscriptionChange c{absl::StrCat("chg_", RandomHex(8)),
                           t.id,
                           std::string(actor),
                           q->from->name,
                           q->to->name,
                           std::string(PlanChangeKindName(q->kind)),
                           q->proration_cents,
                           now,
                           q->effective_at,
                           q->effective_at > now ? "pending" : "applied"};
      after = CommitPlanChangeLocked(t, std::move(c), now, *fired, std::move(done));
    }
  }
  if (after) after();
}

absl::AnyInvocable<void()> Engine::CommitPlanChangeLocked(TenantState& t, SubscriptionChange c,
                                                          absl::Time now, const FiredAlerts& fired,
                                                          Callback<SubscriptionChange> done) {
  const Plan* before = t.plan;
  std::optional<SubscriptionChange> pending_before = t.pending_plan;
  std::vector<SubscriptionChange> rows;
  if (t.pending_plan) {
    // A new change replaces a pending one.
    SubscriptionChange cancelled = *t.pending_plan;
    cancelled.state = "cancelled";
    rows.push_back(std::move(cancelled));
  }
  rows.push_back(c);
  std::vector<AlertRecord> resolved;
  if (c.state == "applied") {
    SetPlanLocked(t, *opts_.catalog->FindPlan(c.to_plan));
    t.pending_plan.reset();
    resolved = ResolvedLocked(t, fired, now);
  } else {
    t.pending_plan = c;
  }
  CommitQueue::Done finish = [this, tp = &t, before, pending_before = std::move(pending_before), c,
                              done = std::move(done)](const absl::Status& s) mutable {
    if (!s.ok()) {
      {
        MutexLock l(&tp->mu);
        SetPlanLocked(*tp, *before);
        tp->pending_plan = pending_before;
      }
      return done(s);
    }
    done(c);
  };
  finish = GuardLocalChangeLocked(t, std::move(finish));
  const bool queued = queue_.Enqueue(
      [&](CommitBatch& b) {
        for (const SubscriptionChange& r : rows) {
          b.subscription_changes.push_back(r);
          b.events.push_back(EventOf(r, now));
        }
        AppendResolved(resolved, b);
      },
      finish);
  if (queued) return nullptr;
  return [finish = std::move(finish)]() mutable { finish(ShuttingDown()); };
}

void Engine::SetPlanLocked(TenantState& t, const Plan& plan) const {
  t.plan = &plan;
  t.profile = opts_.catalog->FindProfile(plan.rate_limit_profile);
}

void Engine::CancelPendingPlan(const Principal& who, Callback<SubscriptionChange> done) {
  TenantState& t = *who.tenant;
  absl::AnyInvocable<void()> after;
  {
    MutexLock lock(&t.mu);
    const absl::Time now = clock_->Now();
    Touch(t, now);
    if (!t.pending_plan) {
      after = [done = std::move(done)]() mutable { done(NoPendingChange()); };
    } else {
      SubscriptionChange cancelled = *t.pending_plan;
      cancelled.state = "cancelled";
      const SubscriptionChange before = *t.pending_plan;
      t.pending_plan.reset();
      CommitQueue::Done finish = [tp = &t, before, cancelled,
                                  done = std::move(done)](const absl::Status& s) mutable {
        if (!s.ok()) {
          {
            MutexLock l(&tp->mu);
            if (!tp->pending_plan) tp->pending_plan = before;
          }
          return done(s);
        }
        done(cancelled);
      };
      finish = GuardLocalChangeLocked(t, std::move(finish));
      const bool queued = queue_.Enqueue(
          [&](CommitBatch& b) {
            b.subscription_changes.push_back(cancelled);
            b.events.push_back(EventOf(cancelled, now));
          },
          finish);
      if (!queued) after = [finish = std::move(finish)]() mutable { finish(ShuttingDown()); };
    }
  }
  if (after) after();
}

void Engine::ApplyDuePlanChange(TenantState& t, absl::Time now) {
  if (!t.pending_plan || now < t.pending_plan->effective_at) return;
  SubscriptionChange c = *t.pending_plan;
  t.pending_plan.reset();
  const Plan* plan = opts_.catalog->FindPlan(c.to_plan);
  if (!plan) return;  // the plan left the catalog: the change cannot apply
  SetPlanLocked(t, *plan);
  c.state = "applied";
  // Best effort, like lease expiry: every instance that applies it writes the
  // same row (by id), so a lost commit is written again on the next start.
  // Guarded all the same: a read of the store that predates the commit would
  // put the old plan and its pending change back, and the period has already
  // moved on, so nothing would apply it again before the next period's end.
  CommitQueue::Done ignore = GuardLocalChangeLocked(t, [](const absl::Status&) {});
  const bool queued = queue_.Enqueue(
      [&](CommitBatch& b) {
        b.subscription_changes.push_back(c);
        b.events.push_back(EventOf(c, c.effective_at));
      },
      ignore);
  if (!queued) --t.Traffic().local_changes_in_flight;  // shutting down: no commit settles it
}

absl::StatusOr<SubscriptionView> Engine::Subscription(const Principal& who) {
  TenantState& t = *who.tenant;
  SubscriptionView v;
  {
    MutexLock lock(&t.mu);
    Touch(t, clock_->Now());
    v.tenant = ViewOf(t);
    v.plan = t.plan;
    v.pending = t.pending_plan;
  }
  absl::StatusOr<std::vector<SubscriptionChange>> changes = store_->SubscriptionChanges(t.id);
  if (!changes.ok()) return StoreUnavailable("The subscription ledger");
  v.changes = std::move(*changes);
  return v;
}

// ---- Add-ons: recurring packs that follow the base cycle.

void Engine::BuyAddon(const Principal& who, std::string meter, uint64_t quantity,
                      Callback<BoughtAddon> done) {
  absl::StatusOr<const AddonPack*> found = FindPack(
      *opts_.catalog, opts_.catalog->addons, {"add-on packs", "no_addon_packs"}, meter, quantity);
  if (!found.ok()) return done(found.status());
  const AddonPack* pack = *found;
  TenantState& t = *who.tenant;
  absl::StatusOr<FiredAlerts> fired = ReadFiredAlerts(t);
  if (!fired.ok()) return done(fired.status());
  absl::AnyInvocable<void()> after;
  {
    MutexLock lock(&t.mu);
    const absl::Time now = clock_->Now();
    Touch(t, now);
    AddonRecord a{absl::StrCat("addon_", RandomHex(8)),
                  t.id,
                  meter,
                  pack->units,
                  pack->price_cents,
                  now,
                  std::nullopt};
    const int64_t charge = ProrationCents(0, pack->price_cents, t.period, now);
    SubscriptionChange line{absl::StrCat("chg_", RandomHex(8)),
                            t.id,
                            "tenant",
                            t.plan->name,
                            t.plan->name,
                            "addon_added",
                            charge,
                            now,
                            now,
                            "applied"};
    t.addons.push_back(a);
    auto undo = [this, tp = &t, id = a.id] {
      MutexLock l(&tp->mu);
      std::erase_if(tp->addons, [&](const AddonRecord& x) { return x.id == id; });
    };
    after =
        CommitAddonLocked<BoughtAddon>(t, a, line, ResolvedLocked(t, *fired, now),
                                       BoughtAddon{a, charge}, std::move(undo), std::move(done));
  }
  if (after) after();
}

void Engine::CancelAddon(const Principal& who, std::string id, Callback<AddonRecord> done) {
  TenantState& t = *who.tenant;
  absl::AnyInvocable<void()> after;
  {
    MutexLock lock(&t.mu);
    const absl::Time now = clock_->Now();
    Touch(t, now);
    auto it = std::find_if(t.addons.begin(), t.addons.end(),
                           [&](const AddonRecord& a) { return a.id == id; });
    if (it == t.addons.end()) {
      after = [done = std::move(done), id]() mutable { done(AddonNotFound(id)); };
    } else if (it->ends_at) {
      after = [done = std::move(done), id]() mutable {
        done(Error(absl::StatusCode::kAlreadyExists, "addon_cancelled",
                   absl::StrCat("Add-on \"", id, "\" ends at the period's end already.")));
      };
    } else {
      it->ends_at = t.period.end;
      const AddonRecord a = *it;
      SubscriptionChange line{absl::StrCat("chg_", RandomHex(8)),
                              t.id,
                              "tenant",
                              t.plan->name,
                              t.plan->name,
                              "addon_cancelled",
                              0,
                              now,
                              t.period.end,
                              "applied"};
      auto undo = [this, tp = &t, id] {
        MutexLock l(&tp->mu);
        for (AddonRecord& x : tp->addons) {
          if (x.id == id) x.ends_at.reset();
        }
      };
      after = CommitAddonLocked<AddonRecord>(t, a, line, {}, a, std::move(undo), std::move(done));
    }
  }
  if (after) after();
}

template <typename T>
absl::AnyInvocable<void()> Engine::CommitAddonLocked(TenantState& t, const AddonRecord& addon,
                                                     const SubscriptionChange& line,
                                                     std::vector<AlertRecord> resolved, T answer,
                                                     absl::AnyInvocable<void()> undo,
                                                     Callback<T> done) {
  CommitQueue::Done finish = [answer = std::move(answer), undo = std::move(undo),
                              done = std::move(done)](const absl::Status& s) mutable {
    if (!s.ok()) {
      undo();
      return done(s);
    }
    done(std::move(answer));
  };
  finish = GuardLocalChangeLocked(t, std::move(finish));
  const absl::Time now = clock_->Now();
  const bool queued = queue_.Enqueue(
      [&](CommitBatch& b) {
        b.addons.push_back(addon);
        b.subscription_changes.push_back(line);
        EventRecord e = EventOf(line, now);
        absl::StrAppend(&e.detail, ": ", addon.units, " ", addon.meter, " (", addon.id, ")");
        e.fields.push_back({"addon", addon.id, false});
        e.fields.push_back({"meter", addon.meter, false});
        e.fields.push_back({"units", absl::StrCat(addon.units), true});
        b.events.push_back(std::move(e));
        AppendResolved(resolved, b);
      },
      finish);
  if (queued) return nullptr;
  return [finish = std::move(finish)]() mutable { finish(ShuttingDown()); };
}

std::vector<AddonRecord> Engine::ListAddons(const Principal& who) {
  TenantState& t = *who.tenant;
  MutexLock lock(&t.mu);
  Touch(t, clock_->Now());
  return t.addons;
}

}  // namespace quotum::engine
