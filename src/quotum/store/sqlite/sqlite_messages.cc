// The SQLite store's messages: the sent-message log and the queue of
// messages waiting to be released (engine/store.h MessageRecord).
#include "absl/strings/str_cat.h"
#include "quotum/store/column_values.h"
#include "quotum/store/message_columns.h"
#include "quotum/store/sqlite/sqlite_store.h"

namespace quotum::store::sqlite {
namespace {

using store::kMessageColumns;

// The due messages' ids, each with its place in its session's queue.
constexpr char kDueRanked[] =
    "SELECT id,ROW_NUMBER() OVER (PARTITION BY tenant_id,session_id,status='released' "
    "ORDER BY due_at_ms,seq,id) AS place FROM messages "
    "WHERE status IN ('queued','releasing','released') AND due_at_ms<=?1 AND "
    "(status<>'releasing' OR updated_at_ms<?2)";

engine::MessageRecord MessageOf(const Stmt& r) { return store::MessageOfRow(r, r.Int(17) != 0); }

}  // namespace

absl::Status SqliteStore::WriteMessageTransitions(const engine::CommitBatch& b) {
  if (b.message_transitions.empty()) return absl::OkStatus();
  auto st = writer_->Prepare(
      "UPDATE messages SET status=?,reason=?,updated_at_ms=?,"
      "release_attempts=release_attempts+?,sent_at_ms=COALESCE(?,sent_at_ms),"
      "due_at_ms=COALESCE(?,due_at_ms),delivery_attempts=delivery_attempts+?,"
      "released_at_ms=COALESCE(?,released_at_ms) "
      "WHERE tenant_id=? AND id=? AND status=?");
  if (!st.ok()) return st.status();
  for (const engine::MessageTransition& t : b.message_transitions) {
    absl::Status s = st->Bind(1, t.to)
                         .Bind(2, t.reason)
                         .Bind(3, absl::ToUnixMillis(t.at))
                         .Bind(4, int64_t{t.count_attempt ? 1 : 0})
                         .Bind(5, OptMillis(t.sent_at))
                         .Bind(6, OptMillis(t.due_at))
                         .Bind(7, int64_t{t.count_delivery ? 1 : 0})
                         .Bind(8, OptMillis(t.released_at))
                         .Bind(9, t.tenant_id)
                         .Bind(10, t.id)
                         .Bind(11, t.from)
                         .Run();
    if (!s.ok()) return s;
    if (sqlite3_changes(writer_->raw()) == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("message ", t.id, " is not ", t.from, " any more"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<engine::MessageRecord>> SqliteStore::FindMessage(
    const std::string& tenant_id, const std::string& id) {
  MutexLock lock(&read_mu_);
  auto st = reader_->Prepare(absl::StrCat(kMessageColumns, "WHERE id=? AND tenant_id=?"));
  if (!st.ok()) return st.status();
  st->Bind(1, id).Bind(2, tenant_id);
  auto row = st->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::nullopt;
  return MessageOf(*st);
}

absl::StatusOr<std::vector<engine::MessageRecord>> SqliteStore::Messages(
    const std::string& tenant_id, const std::string& status,
    const std::optional<engine::MessageCursor>& after, size_t limit) {
  MutexLock lock(&read_mu_);
  auto st = reader_->Prepare(absl::StrCat(
      kMessageColumns,
      "WHERE tenant_id=?1 AND (?2='' OR status=?2) AND (?3 IS NULL OR (created_at,id)>(?3,?4)) "
      "ORDER BY created_at,id LIMIT ?5"));
  if (!st.ok()) return st.status();
  st->Bind(1, tenant_id).Bind(2, status);
  if (after) {
    st->Bind(3, absl::ToUnixSeconds(after->created_at)).Bind(4, after->id);
  } else {
    st->BindNull(3).BindNull(4);
  }
  st->Bind(5, static_cast<int64_t>(limit));
  std::vector<engine::MessageRecord> out;
  absl::Status s = st->ForEachRow([&](const Stmt& r) { out.push_back(MessageOf(r)); });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<engine::MessageRecord>> SqliteStore::DueMessages(
    absl::Time now, absl::Time stale, size_t per_session, size_t limit,
    const std::optional<engine::DuePosition>& after) {
  MutexLock lock(&read_mu_);
  auto st = reader_->Prepare(
      absl::StrCat(kMessageColumns, "JOIN (", kDueRanked, ") AS due USING(id) WHERE due.place<=?3 ",
                   "AND (?5 IS NULL OR (messages.due_at_ms,messages.seq,messages.id)>(?5,?6,?7)) ",
                   "ORDER BY messages.due_at_ms,messages.seq,messages.id LIMIT ?4"));
  if (!st.ok()) return st.status();
  st->Bind(1, absl::ToUnixMillis(now))
      .Bind(2, absl::ToUnixMillis(stale))
      .Bind(3, static_cast<int64_t>(per_session))
      .Bind(4, static_cast<int64_t>(limit))
      .Bind(5, after ? std::optional<int64_t>(absl::ToUnixMillis(after->due_at)) : std::nullopt)
      .Bind(6, static_cast<int64_t>(after ? after->seq : 0))
      .Bind(7, after ? after->id : std::string());
  std::vector<engine::MessageRecord> out;
  absl::Status s = st->ForEachRow([&](const Stmt& r) { out.push_back(MessageOf(r)); });
  if (!s.ok()) return s;
  return out;
}

absl::Status SqliteStore::RecentSends(absl::Time since,
                                      absl::FunctionRef<void(const engine::MessageRecord&)> each) {
  MutexLock lock(&read_mu_);
  auto st = reader_->Prepare(store::kRecentSendsSql);
  if (!st.ok()) return st.status();
  st->Bind(1, absl::ToUnixMillis(since));
  engine::MessageRecord m;
  return st->ForEachRow([&](const Stmt& r) {
    store::RecentSendOfRow(r, m);
    each(m);
  });
}

}  // namespace quotum::store::sqlite
