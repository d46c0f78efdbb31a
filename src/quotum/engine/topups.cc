// Engine: top-ups, one-off prepaid packs (SPEC §1 "top-up"). A top-up is
// charged its price once, in the subscription ledger; its units are used
// after the limit's (plan, add-ons, override), oldest expiry first, and
// outlive period resets until they lapse. The ledgers draw on them inside
// the decision (ledger.h LimitWithTopups, TopupDrawOf); this file sells and
// lists them.
#include <algorithm>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "quotum/core/ids.h"
#include "quotum/engine/alerts.h"
#include "quotum/engine/api_keys.h"
#include "quotum/engine/engine.h"
#include "quotum/engine/errors.h"
#include "quotum/engine/events.h"
#include "quotum/engine/packs.h"

namespace quotum::engine {
namespace {

/// The longest expiry a top-up may be sold with (ten years).
constexpr int64_t kMaxTopupDays = 3650;

/// The event the billing system hears of a top-up bought in.
EventRecord TopupEvent(const TopupRecord& r, const SubscriptionChange& line, absl::Time at) {
  const std::string type = "subscription.topup_added";
  const std::string expires =
      r.expires_at == absl::InfiniteFuture() ? "never" : FormatRfc3339(r.expires_at);
  return EventRecord{r.tenant_id,
                     type,
                     line.id,
                     absl::StrCat(r.units, " ", r.meter, " (", r.id, ", ", r.price_cents,
                                  " cents, expires ", expires, ")"),
                     at,
                     EventId({r.tenant_id, type, line.id}),
                     {{"change", line.id, false},
                      {"topup", r.id, false},
                      {"meter", r.meter, false},
                      {"units", absl::StrCat(r.units), true},
                      {"amount_cents", absl::StrCat(r.price_cents), true},
                      {"expires_at", expires, false}}};
}

/// `t` to the millisecond, as stores and the shared ledger keep instants.
absl::Time WholeMillis(absl::Time t) { return absl::FromUnixMillis(absl::ToUnixMillis(t)); }

/// Inserts `r` where `topups` keeps drawing order: oldest expiry first.
void InsertInDrawingOrder(std::vector<TopupRecord>& topups, const TopupRecord& r) {
  auto at = std::upper_bound(topups.begin(), topups.end(), r, [](const auto& a, const auto& b) {
    return std::tie(a.expires_at, a.id) < std::tie(b.expires_at, b.id);
  });
  topups.insert(at, r);
}

}  // namespace

void Engine::BuyTopup(const Principal& who, std::string meter, uint64_t quantity,
                      std::optional<int64_t> expires_in_days, Callback<TopupRecord> done) {
  absl::StatusOr<const AddonPack*> pack = FindPack(*opts_.catalog, opts_.catalog->topups,
                                                   {"top-ups", "no_topup_packs"}, meter, quantity);
  if (!pack.ok()) return done(pack.status());
  if (expires_in_days && (*expires_in_days < 1 || *expires_in_days > kMaxTopupDays)) {
    return done(Unprocessable(
        "invalid_expiry", absl::StrCat("\"expires_in_days\" runs from 1 to ", kMaxTopupDays, ".")));
  }
  TenantState& t = *who.tenant;
  if (absl::Status s = CheckLimited(t, meter); !s.ok()) return done(s);
  absl::StatusOr<FiredAlerts> fired = ReadFiredAlerts(t);
  if (!fired.ok()) return done(fired.status());
  absl::AnyInvocable<void()> after;
  {
    MutexLock lock(&t.mu);
    const absl::Time now = WholeMillis(clock_->Now());
    Touch(t, now);
    TopupRecord r{absl::StrCat("top_", RandomHex(8)),
                  t.id,
                  meter,
                  (*pack)->units,
                  0,
                  (*pack)->price_cents,
                  now};
    if (expires_in_days) r.expires_at = now + absl::Hours(24) * *expires_in_days;
    const SubscriptionChange line{absl::StrCat("chg_", RandomHex(8)),
                                  t.id,
                                  "tenant",
                                  t.plan->name,
                                  t.plan->name,
                                  "topup_added",
                                  r.price_cents,
                                  now,
                                  now,
                                  "applied"};
    // The alerts the bigger limit resolves; the top-up is drawn on only once
    // it is committed (a draw must find its row).
    InsertInDrawingOrder(t.topups, r);
    std::vector<AlertRecord> resolved = ResolvedLocked(t, *fired, now);
    std::erase_if(t.topups, [&](const TopupRecord& x) { return x.id == r.id; });
    CommitQueue::Done finish = [tp = &t, r, done = std::move(done)](const absl::Status& s) mutable {
      if (!s.ok()) return done(s);
      {
        MutexLock l(&tp->mu);
        InsertInDrawingOrder(tp->topups, r);
      }
      done(std::move(r));
    };
    finish = GuardLocalChangeLocked(t, std::move(finish));
    const bool queued = queue_.Enqueue(
        [&](CommitBatch& b) {
          b.topups.push_back(r);
          b.subscription_changes.push_back(line);
          b.events.push_back(TopupEvent(r, line, now));
          AppendResolved(resolved, b);
        },
        finish);
    if (!queued) after = FailLater(std::move(finish));
  }
  if (after) after();
}

absl::Status Engine::CheckLimited(TenantState& t, absl::string_view meter) {
  const MeterId m = *opts_.catalog->FindMeter(meter);
  MutexLock lock(&t.mu);
  if (EffectiveLimit(t, m)) return absl::OkStatus();
  return Unprocessable("unlimited_meter",
                       absl::StrCat("\"", meter, "\" is unlimited on your plan: a top-up of it ",
                                    "would never be used."));
}

absl::StatusOr<std::vector<TopupRecord>> Engine::ListTopups(const Principal& who) {
  TenantState& t = *who.tenant;
  std::vector<TopupRecord> out;
  {
    MutexLock lock(&t.mu);
    Touch(t, clock_->Now());
    out = t.topups;
  }
  if (opts_.shared_ledger) {
    if (absl::Status s = ReadSharedTopups(t.id, out); !s.ok()) return s;
  }
  return out;
}

absl::Status Engine::RefreshSharedTopups(TenantState& t) {
  std::vector<TopupRecord> copy;
  {
    MutexLock lock(&t.mu);
    copy = t.topups;
  }
  if (absl::Status s = ReadSharedTopups(t.id, copy); !s.ok()) return s;
  MutexLock lock(&t.mu);
  for (TopupRecord& r : t.topups) {
    for (const TopupRecord& fresh : copy) {
      if (fresh.id == r.id) r.drawn = fresh.drawn;
    }
  }
  return absl::OkStatus();
}

absl::Status Engine::ReadSharedTopups(absl::string_view tenant_id,
                                      std::vector<TopupRecord>& topups) {
  if (topups.empty()) return absl::OkStatus();
  std::vector<std::pair<std::string, std::string>> names;
  for (const TopupRecord& r : topups) names.emplace_back(r.meter, r.id);
  absl::StatusOr<std::vector<uint64_t>> drawn = opts_.shared_ledger->TopupsDrawn(tenant_id, names);
  if (!drawn.ok()) return StoreUnavailable("The top-up balances");
  for (size_t i = 0; i < topups.size(); ++i) {
    topups[i].drawn = std::min(topups[i].units, (*drawn)[i]);
  }
  return absl::OkStatus();
}

}  // namespace quotum::engine
