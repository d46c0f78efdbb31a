// Reservations (SPEC §2 "reserve -> commit/release"): ids, and the embedded
// ledger's held units. A reservation holds units of one counter meter against
// its limit until committed, released or expired; its id names the meter, so
// a commit or release can be compiled (and keyed in Redis) before any lookup.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "quotum/core/catalog.h"

namespace quotum::engine {

/// The shortest and longest a reservation may be held, and the default.
inline constexpr absl::Duration kMinReservationTtl = absl::Seconds(1);
inline constexpr absl::Duration kMaxReservationTtl = absl::Hours(24);
inline constexpr absl::Duration kDefaultReservationTtl = absl::Minutes(5);

/// "rsv_" + 24 hex digits + "_" + meter. With an idempotency key the digits
/// come from the tenant and the key, so a retried reserve names the same
/// reservation; without one they are random.
std::string ReservationIdFor(absl::string_view tenant_id, absl::string_view meter,
                             absl::string_view idempotency_key);

/// The meter a reservation id names; nullopt when `id` is not one.
std::optional<absl::string_view> MeterOfReservationId(absl::string_view id);

/// One reservation as the embedded ledger holds it.
struct HeldUnits {
  MeterId meter = 0;
  uint64_t units = 0;
  absl::Time expires_at;
};

/// A tenant's reservations in the embedded ledger, with the held sum per
/// meter kept alongside. Expired ones stay until GiveBackExpired.
class Holds {
 public:
  /// Units held on `m` (expired reservations included until given back).
  uint64_t HeldOn(MeterId m) const { return m < held_.size() ? held_[m] : 0; }
  /// The reservation `id`, or null.
  const HeldUnits* Find(absl::string_view id) const;
  /// Adds (or replaces) reservation `id`.
  void Add(const std::string& id, const HeldUnits& h);
  /// Removes reservation `id`; what it held, or nullopt if unknown.
  std::optional<HeldUnits> Remove(absl::string_view id);
  /// Removes every reservation expired at `now` (cheap when none is).
  void GiveBackExpired(absl::Time now);
  bool empty() const { return by_id_.empty(); }

 private:
  absl::flat_hash_map<std::string, HeldUnits> by_id_;
  std::vector<uint64_t> held_;  ///< per MeterId
  absl::Time next_expiry_ = absl::InfiniteFuture();
};

}  // namespace quotum::engine
