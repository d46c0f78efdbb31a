// The PostgreSQL store's message reads: the sent-message log and the queue
// of messages waiting to be released (engine/store.h MessageRecord). Writes
// go with every other record in Commit (pg_commit.cc).
#include "absl/strings/str_cat.h"
#include "quotum/store/message_columns.h"
#include "quotum/store/postgres/pg_store.h"

namespace quotum::store::postgres {
namespace {

using store::kMessageColumns;

engine::MessageRecord MessageOf(const PgRow& r) { return store::MessageOfRow(r, r.Bool(17)); }

}  // namespace

absl::StatusOr<std::vector<engine::MessageRecord>> PgStore::MessageRows(
    const std::string& sql, std::vector<PgParam> params) {
  std::vector<engine::MessageRecord> out;
  absl::Status s = Read([&](PgConnection& conn) {
    out.clear();
    auto r = conn.Exec(sql, params);
    if (!r.ok()) return r.status();
    for (int i = 0; i < r->rows(); ++i) out.push_back(MessageOf(r->row(i)));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::optional<engine::MessageRecord>> PgStore::FindMessage(
    const std::string& tenant_id, const std::string& id) {
  auto rows = MessageRows(absl::StrCat(kMessageColumns, "WHERE id=$1 AND tenant_id=$2"),
                          {TextParam(id), TextParam(tenant_id)});
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::nullopt;
  return std::move(rows->front());
}

absl::StatusOr<std::vector<engine::MessageRecord>> PgStore::Messages(
    const std::string& tenant_id, const std::string& status,
    const std::optional<engine::MessageCursor>& after, size_t limit) {
  PgParam at, id;
  if (after) {
    at = IntParam(absl::ToUnixSeconds(after->created_at));
    id = TextParam(after->id);
  }
  return MessageRows(
      absl::StrCat(kMessageColumns,
                   "WHERE tenant_id=$1 AND ($2='' OR status=$2) AND "
                   "($3::bigint IS NULL OR (created_at,id)>($3::bigint,$4::text)) "
                   "ORDER BY created_at,id LIMIT $5"),
      {TextParam(tenant_id), TextParam(status), at, id, IntParam(static_cast<int64_t>(limit))});
}

absl::StatusOr<std::vector<engine::MessageRecord>> PgStore::DueMessages(
    absl::Time now, absl::Time stale, size_t per_session, size_t limit,
    const std::optional<engine::DuePosition>& after) {
  PgParam due, seq, id;
  if (after) {
    due = IntParam(absl::ToUnixMillis(after->due_at));
    seq = IntParam(after->seq);
    id = TextParam(after->id);
  }
  return MessageRows(
      absl::StrCat(
          kMessageColumns,
          "JOIN (SELECT id AS due_id,ROW_NUMBER() OVER (PARTITION BY "
          "tenant_id,session_id,status='released' "
          "ORDER BY due_at_ms,seq,id) AS place FROM messages "
          "WHERE status IN ('queued','releasing','released') AND due_at_ms<=$1 AND "
          "(status<>'releasing' OR updated_at_ms<$2)) AS due ON due.due_id=messages.id "
          "WHERE due.place<=$3 AND ($5::bigint IS NULL OR "
          "(messages.due_at_ms,messages.seq,messages.id)>($5::bigint,$6::bigint,$7::text)) "
          "ORDER BY messages.due_at_ms,messages.seq,messages.id LIMIT $4"),
      {IntParam(absl::ToUnixMillis(now)), IntParam(absl::ToUnixMillis(stale)),
       IntParam(static_cast<int64_t>(per_session)), IntParam(static_cast<int64_t>(limit)), due, seq,
       id});
}

absl::Status PgStore::RecentSends(absl::Time since,
                                  absl::FunctionRef<void(const engine::MessageRecord&)> each) {
  return Read([&](PgConnection& conn) {
    engine::MessageRecord m;
    return conn.ForEachRow(store::kRecentSendsSql, {IntParam(absl::ToUnixMillis(since))},
                           [&](const PgRow& r) -> absl::Status {
                             store::RecentSendOfRow(r, m);
                             each(m);
                             return absl::OkStatus();
                           });
  });
}

}  // namespace quotum::store::postgres
