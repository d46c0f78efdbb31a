#pragma once

// The engine::Store port's records as comparable tuples, and a SnapshotSink
// that keeps the whole start-up stream: for tests that compare what stores
// answer.

#include <algorithm>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "quotum/base/mutex.h"
#include "quotum/engine/decision_codec.h"
#include "quotum/engine/store.h"

namespace quotum::contract {

// Text that trips naive quoting: SQL and array-literal quotes, separators,
// backslashes, braces, the word NULL, non-ASCII.
inline const std::string kOddText = "He said \"hi\", {x} 'y' \\ NULL; Zo\xc3\xab \xe2\x98\x83";

/// A 32-byte key hash with the bytes that trip naive quoting or C strings.
inline std::string KeyHash(char seed) {
  std::string h(32, seed);
  h[0] = '\0';
  h[1] = '\xff';
  h[2] = '"';
  h[3] = '\\';
  h[4] = ',';
  return h;
}

// ---- Records as comparable tuples.

inline auto Fields(const engine::TenantRecord& r) {
  return std::make_tuple(r.id, r.name, r.plan, r.subscription_start, r.created_at);
}
inline auto Fields(const engine::ApiKeyRecord& r) {
  return std::make_tuple(r.key_id, r.tenant_id, r.hash, r.created_at, r.revoked);
}
inline auto Fields(const engine::LimitOverride& r) {
  return std::make_tuple(r.tenant_id, r.meter, r.limit);
}
inline auto Fields(const engine::CounterRow& r) {
  return std::make_tuple(r.tenant_id, r.meter, r.period_start, r.value);
}
inline auto Fields(const engine::Decision& d) {
  return std::make_tuple(d.allowed, d.requested, d.consumed, d.remaining, d.limit, d.overage,
                         d.period_start, d.reset_at, d.meter, static_cast<int>(d.reason),
                         engine::EncodeDecisionExtras(d));
}
inline auto Fields(const engine::IdempotencyRecord& r) {
  return std::make_tuple(r.tenant_id, r.key, r.fingerprint, r.created_at, Fields(r.decision));
}
inline auto Fields(const engine::SessionRecord& r) {
  return std::make_tuple(r.tenant_id, r.id, r.phone, r.status, r.created_at, r.updated_at,
                         r.first_working_at, r.last_heartbeat, r.warmup_day, r.warmup_count);
}
inline auto Fields(const engine::GroupRecord& r) {
  return std::make_tuple(r.tenant_id, r.id, r.name, r.created_at);
}
inline auto Fields(const engine::KeyRateLimitsRecord& r) {
  return std::make_tuple(r.key_id, r.limits.general, r.limits.messages, r.limits.sessions);
}
inline auto Fields(const engine::GaugeRecord& r) {
  return std::make_tuple(r.tenant_id, r.meter, r.value);
}
inline auto Fields(const engine::ReservationRecord& r) {
  return std::make_tuple(r.tenant_id, r.id, r.meter, r.units, r.created_at, r.expires_at);
}
inline auto Fields(const engine::EventField& f) {
  return std::make_tuple(f.name, f.value, f.number);
}
inline auto Fields(const engine::EventRecord& r) {
  std::vector<std::tuple<std::string, std::string, bool>> fields;
  for (const auto& f : r.fields) fields.push_back(Fields(f));
  return std::make_tuple(r.tenant_id, r.type, r.subject, r.detail, r.at, r.id, fields);
}
inline auto Fields(const engine::AlertRecord& r) {
  return std::make_tuple(r.tenant_id, r.meter, r.period_start, r.period_end, r.threshold, r.value,
                         r.limit, r.at, r.resolved_at);
}
inline auto Fields(const engine::MessageRecord& r) {
  return std::make_tuple(r.id, r.tenant_id, r.channel, r.to, r.text, r.status, r.created_at);
}

template <typename T>
auto AllFields(const std::vector<T>& rows) {
  std::vector<decltype(Fields(rows.front()))> out;
  for (const auto& r : rows) out.push_back(Fields(r));
  return out;
}
// The same, sorted: for streams whose order the contract leaves open.
template <typename T>
auto SortedFields(const std::vector<T>& rows) {
  auto out = AllFields(rows);
  std::sort(out.begin(), out.end());
  return out;
}

/// Keeps the whole start-up stream, and the order the record kinds came in:
/// the tenants' part and each of the two groups a store may send side by side.
class RecordingSink final : public engine::SnapshotSink {
 public:
  RecordingSink() = default;
  RecordingSink(const RecordingSink& o) { *this = o; }
  RecordingSink& operator=(const RecordingSink& o) {
    order = o.order;
    usage_order = o.usage_order;
    keys_order = o.keys_order;
    sizes = o.sizes;
    tenants = o.tenants;
    keys = o.keys;
    overrides = o.overrides;
    counters = o.counters;
    idempotency = o.idempotency;
    sessions = o.sessions;
    groups = o.groups;
    key_rate_limits = o.key_rate_limits;
    reservations = o.reservations;
    gauges = o.gauges;
    return *this;
  }
  void TenantsLoaded() override { Note("tenants_loaded"); }
  void Sizes(size_t t, size_t k) override {
    Note("sizes");
    sizes = {t, k};
  }
  absl::Status Tenant(engine::TenantRecord& r) override {
    Note("tenants");
    tenants.push_back(r);
    return absl::OkStatus();
  }
  void Key(engine::ApiKeyRecord& r) override {
    Note("keys");
    keys.push_back(r);
  }
  void Override(engine::LimitOverride& r) override {
    Note("overrides");
    overrides.push_back(r);
  }
  void Counter(engine::CounterRow& r) override {
    Note("counters");
    counters.push_back(r);
  }
  void Idempotency(engine::IdempotencyRecord& r) override {
    Note("idempotency");
    idempotency.push_back(r);
  }
  void Session(engine::SessionRecord& r) override {
    Note("sessions");
    sessions.push_back(r);
  }
  void Group(engine::GroupRecord& r) override {
    Note("groups");
    groups.push_back(r);
  }
  void KeyRateLimits(engine::KeyRateLimitsRecord& r) override {
    Note("key_rate_limits");
    key_rate_limits.push_back(r);
  }
  void Gauge(engine::GaugeRecord& r) override {
    Note("gauges");
    gauges.push_back(r);
  }
  void Reservation(engine::ReservationRecord& r) override {
    Note("reservations");
    reservations.push_back(r);
  }

  /// Record kinds, consecutive repeats folded: sizes, tenants, tenants_loaded.
  std::vector<std::string> order;
  /// overrides, counters, idempotency, groups, gauges, reservations
  std::vector<std::string> usage_order;
  std::vector<std::string> keys_order;  ///< keys, sessions, key_rate_limits
  std::pair<size_t, size_t> sizes;
  std::vector<engine::TenantRecord> tenants;
  std::vector<engine::ApiKeyRecord> keys;
  std::vector<engine::LimitOverride> overrides;
  std::vector<engine::CounterRow> counters;
  std::vector<engine::IdempotencyRecord> idempotency;
  std::vector<engine::SessionRecord> sessions;
  std::vector<engine::GroupRecord> groups;
  std::vector<engine::KeyRateLimitsRecord> key_rate_limits;
  std::vector<engine::ReservationRecord> reservations;
  std::vector<engine::GaugeRecord> gauges;

 private:
  // Called from either group's thread: the lock keeps the record lists whole.
  void Note(const char* kind) {
    MutexLock lock(&mu_);
    const absl::string_view k = kind;
    std::vector<std::string>& list = k == "overrides" || k == "counters" || k == "idempotency" ||
                                             k == "groups" || k == "gauges" || k == "reservations"
                                         ? usage_order
                                     : k == "keys" || k == "sessions" || k == "key_rate_limits"
                                         ? keys_order
                                         : order;
    if (list.empty() || list.back() != kind) list.push_back(kind);
  }
  Mutex mu_;
};

}  // namespace quotum::contract
