#include "quotum/engine/reservations.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "quotum/engine/api_keys.h"

namespace quotum::engine {
namespace {

constexpr absl::string_view kPrefix = "rsv_";
constexpr size_t kDigits = 24;

}  // namespace

std::string ReservationIdFor(absl::string_view tenant_id, absl::string_view meter,
                             absl::string_view idempotency_key) {
  const std::string digits =
      idempotency_key.empty()
          ? RandomHex(kDigits / 2)
          : absl::BytesToHexString(
                HashSecret(absl::StrCat(tenant_id, "\n", idempotency_key)).substr(0, kDigits / 2));
  return absl::StrCat(kPrefix, digits, "_", meter);
}

std::optional<absl::string_view> MeterOfReservationId(absl::string_view id) {
  if (!absl::StartsWith(id, kPrefix) || id.size() < kPrefix.size() + kDigits + 2) {
    return std::nullopt;
  }
  const absl::string_view digits = id.substr(kPrefix.size(), kDigits);
  const bool hex = std::all_of(digits.begin(), digits.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
  if (!hex || id[kPrefix.size() + kDigits] != '_') return std::nullopt;
  return id.substr(kPrefix.size() + kDigits + 1);
}

const HeldUnits* Holds::Find(absl::string_view id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &it->second;
}

void Holds::Add(const std::string& id, const HeldUnits& h) {
  Remove(id);
  if (held_.size() <= h.meter) held_.resize(h.meter + 1, 0);
  held_[h.meter] += h.units;
  next_expiry_ = std::min(next_expiry_, h.expires_at);
  by_id_.emplace(id, h);
}

std::optional<HeldUnits> Holds::Remove(absl::string_view id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return std::nullopt;
  const HeldUnits h = it->second;
  held_[h.meter] -= std::min(held_[h.meter], h.units);
  by_id_.erase(it);
  return h;
}

void Holds::GiveBackExpired(absl::Time now) {
  if (now < next_expiry_) return;
  next_expiry_ = absl::InfiniteFuture();
  for (auto it = by_id_.begin(); it != by_id_.end();) {
    if (it->second.expires_at <= now) {
      held_[it->second.meter] -= std::min(held_[it->second.meter], it->second.units);
      by_id_.erase(it++);
    } else {
      next_expiry_ = std::min(next_expiry_, it->second.expires_at);
      ++it;
    }
  }
}

}  // namespace quotum::engine
