// The messages and sessions tables' columns as both cold stores read them (SQLite and
// PostgreSQL share the schema: store/sqlite/schema.h, postgres migration 11).
#pragma once

#include <cstdint>
#include <optional>

#include "absl/time/time.h"
#include "quotum/engine/store.h"

namespace quotum::store {

/// SELECT of every column MessageOfRow reads, in its order, ending in a space.
inline constexpr char kMessageColumns[] =
    "SELECT id,tenant_id,channel,recipient,body,status,created_at,session_id,type,send_at_ms,"
    "due_at_ms,seq,reason,release_attempts,released_at_ms,sent_at_ms,updated_at_ms,paced,"
    "delivery_attempts FROM messages ";

/// A row of kMessageColumns as a record. `Row` has Text(col), Int(col) and
/// IsNull(col) (sqlite::Stmt, postgres::PgRow); `paced` is column 17 read
/// as the store keeps booleans.
template <typename Row>
engine::MessageRecord MessageOfRow(const Row& r, bool paced) {
  auto millis = [&](int col) -> std::optional<absl::Time> {
    if (r.IsNull(col)) return std::nullopt;
    return absl::FromUnixMillis(r.Int(col));
  };
  engine::MessageRecord m;
  m.id = r.Text(0);
  m.tenant_id = r.Text(1);
  m.channel = r.Text(2);
  m.to = r.Text(3);
  m.text = r.Text(4);
  m.status = r.Text(5);
  m.created_at = absl::FromUnixSeconds(r.Int(6));
  m.session_id = r.Text(7);
  m.type = r.Text(8);
  m.send_at = millis(9);
  m.due_at = millis(10);
  m.seq = static_cast<uint32_t>(r.Int(11));
  m.reason = r.Text(12);
  m.release_attempts = static_cast<uint32_t>(r.Int(13));
  m.released_at = millis(14);
  m.sent_at = millis(15);
  m.updated_at = absl::FromUnixMillis(r.Int(16));
  m.paced = paced;
  m.delivery_attempts = static_cast<uint32_t>(r.Int(18));
  return m;
}

/// The messages sent through a session and released after ?1 / $1 (Unix
/// ms), oldest release first: what RecentSendOfRow reads.
inline constexpr char kRecentSendsSql[] =
    "SELECT tenant_id,session_id,recipient,channel,type,released_at_ms FROM messages "
    "WHERE released_at_ms>$1 AND session_id<>'' ORDER BY released_at_ms";

/// A row of kRecentSendsSql into `m` (Store::RecentSends' fields only).
template <typename Row>
void RecentSendOfRow(const Row& r, engine::MessageRecord& m) {
  m.tenant_id = r.Text(0);
  m.session_id = r.Text(1);
  m.to = r.Text(2);
  m.channel = r.Text(3);
  m.type = r.Text(4);
  m.released_at = absl::FromUnixMillis(r.Int(5));
}

/// SELECT of every sessions column SessionOfRow reads, in its order.
inline constexpr char kSessionColumns[] =
    "SELECT tenant_id,id,phone,status,created_at,updated_at,first_working_at,last_heartbeat,"
    "warmup_day,warmup_count,tier_level,tier_since_ms,tier_qualified_ms";

/// A row of kSessionColumns as a record (instants in seconds but the tier's).
template <typename Row>
engine::SessionRecord SessionOfRow(const Row& r) {
  engine::SessionRecord s;
  s.tenant_id = r.Text(0);
  s.id = r.Text(1);
  s.phone = r.Text(2);
  s.status = r.Text(3);
  s.created_at = absl::FromUnixSeconds(r.Int(4));
  s.updated_at = absl::FromUnixSeconds(r.Int(5));
  if (!r.IsNull(6)) s.first_working_at = absl::FromUnixSeconds(r.Int(6));
  s.last_heartbeat = absl::FromUnixSeconds(r.Int(7));
  s.warmup_day = r.Int(8);
  s.warmup_count = static_cast<uint64_t>(r.Int(9));
  s.tier_level = r.Int(10);
  s.tier_since_ms = r.Int(11);
  s.tier_qualified_ms = r.Int(12);
  return s;
}

}  // namespace quotum::store
