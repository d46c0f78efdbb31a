// The messages table's columns as both cold stores read them (SQLite and
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

}  // namespace quotum::store
