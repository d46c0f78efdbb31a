#include "quotum/core/plan_change.h"

#include <algorithm>

namespace quotum {
namespace {

int64_t Listed(int64_t price) { return price < 0 ? 0 : price; }

// Contract prices rank above every listed one.
int64_t Rank(int64_t price) { return price < 0 ? INT64_MAX : price; }

}  // namespace

absl::string_view PlanChangeKindName(PlanChangeKind k) {
  switch (k) {
    case PlanChangeKind::kUpgrade:
      return "upgrade";
    case PlanChangeKind::kDowngrade:
      return "downgrade";
    case PlanChangeKind::kSame:
      return "same";
  }
  return "";
}

PlanChangeKind KindOfChange(const Plan& from, const Plan& to) {
  if (from.name == to.name) return PlanChangeKind::kSame;
  return Rank(to.price_cents) < Rank(from.price_cents) ? PlanChangeKind::kDowngrade
                                                       : PlanChangeKind::kUpgrade;
}

int64_t ProrationCents(int64_t old_price_cents, int64_t new_price_cents,
                       const BillingPeriod& period, absl::Time now) {
  const int64_t length = absl::ToInt64Seconds(period.end - period.start);
  if (length <= 0) return 0;
  const int64_t remaining = std::clamp<int64_t>(absl::ToInt64Seconds(period.end - now), 0, length);
  const __int128 diff = static_cast<__int128>(Listed(new_price_cents)) - Listed(old_price_cents);
  return static_cast<int64_t>(diff * remaining / length);  // C++ division truncates toward zero
}

}  // namespace quotum
