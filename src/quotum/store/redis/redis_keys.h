// The names of a tenant's Redis keys. Every one starts with the tenant's hash
// tag "{tenant}", so all of a tenant's keys share one Redis Cluster slot and
// one script may touch any of them.
#pragma once

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "quotum/engine/check_program.h"
#include "quotum/ratelimit/rules.h"

namespace quotum::store::redis {

inline std::string TenantTag(absl::string_view tenant_id) {
  return absl::StrCat("{", tenant_id, "}");
}

/// The period counter of `meter`.
inline std::string CounterKey(absl::string_view tenant_id, absl::Time period_start,
                              absl::string_view meter) {
  return absl::StrCat("{", tenant_id, "}:u:", absl::ToUnixSeconds(period_start), ":", meter);
}

/// STRING: present once a failed message's charge was given back
/// (RedisLedger::GiveBack); holds why the message failed.
inline std::string GivenBackKey(absl::string_view tenant_id, absl::string_view message_id) {
  return absl::StrCat("{", tenant_id, "}:gb:", message_id);
}

/// Present once the tenant's counters (and, when "2", sessions and groups)
/// hold at least what the cold store has (RedisLedger::SetBaseline).
inline std::string BaselineKey(absl::string_view tenant_id) {
  return absl::StrCat("{", tenant_id, "}:baseline");
}

/// A rate check's limiter state: one per (category, window, subject).
inline std::string RateKey(absl::string_view tenant_id, const engine::RateCheck& r) {
  return absl::StrCat("{", tenant_id, "}:r:", ratelimit::CategoryName(r.category), ":",
                      r.rule.window_ns, ":", r.subject);
}

/// HASH of a meter's reservations: "sum" -> units held, and per reservation
/// id "<units>:<expires Unix ms>" (decide.lua).
inline std::string HoldsKey(absl::string_view tenant_id, absl::string_view meter) {
  return absl::StrCat("{", tenant_id, "}:h:", meter);
}

/// ZSET of a meter's reservation ids scored by expiry (Unix ms).
inline std::string HoldExpiriesKey(absl::string_view tenant_id, absl::string_view meter) {
  return absl::StrCat("{", tenant_id, "}:hx:", meter);
}

/// A session's messaging tier: the recipients it counts (a ZSET scored by
/// when each was last messaged) and its level (a HASH l, s, q).
inline std::string TierRecipientsKey(absl::string_view tenant_id, absl::string_view session) {
  return absl::StrCat("{", tenant_id, "}:tr:", session);
}
inline std::string TierLevelKey(absl::string_view tenant_id, absl::string_view session) {
  return absl::StrCat("{", tenant_id, "}:ts:", session);
}

/// HASH of what is drawn of a meter's top-ups: id -> units (decide.lua).
inline std::string TopupsKey(absl::string_view tenant_id, absl::string_view meter) {
  return absl::StrCat("{", tenant_id, "}:tu:", meter);
}

/// STRING: the messages a session sent on its warm-up day. A day is named by
/// its end, so a session made again under the same id starts a new ramp.
inline std::string WarmupKey(absl::string_view tenant_id, absl::Time day_end,
                             absl::string_view session) {
  return absl::StrCat("{", tenant_id, "}:w:", absl::ToUnixSeconds(day_end), ":", session);
}

/// HASH session id -> record (lease_codec.h).
inline std::string SessionsKey(absl::string_view tenant_id) {
  return absl::StrCat("{", tenant_id, "}:sessions");
}

/// ZSET working session id -> lease expiry (Unix ms).
inline std::string LeasesKey(absl::string_view tenant_id) {
  return absl::StrCat("{", tenant_id, "}:leases");
}

/// HASH group id -> record (lease_codec.h).
inline std::string GroupsKey(absl::string_view tenant_id) {
  return absl::StrCat("{", tenant_id, "}:groups");
}

/// HASH gauge meter -> value (subscribers).
inline std::string GaugesKey(absl::string_view tenant_id) {
  return absl::StrCat("{", tenant_id, "}:gauges");
}

}  // namespace quotum::store::redis
