#include "quotum/store/migrate/sqlite_to_postgres.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <set>
#include <span>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/civil_time.h"
#include "quotum/base/status_macros.h"
#include "quotum/core/billing_period.h"
#include "quotum/store/postgres/migrations.h"
#include "quotum/store/postgres/pg_connection.h"
#include "quotum/store/sqlite/db.h"
#include "quotum/store/sqlite/sqlite_store.h"

namespace quotum::store::migrate {
namespace {

using postgres::PgArray;
using postgres::PgColumns;
using postgres::PgConnection;
using sqlite::Db;
using sqlite::Stmt;

// How a column travels. Both schemas store instants as Unix seconds and
// unsigned 64-bit values bit-for-bit in a signed 64-bit integer, so most
// columns are copied as they are; the differences are the key hash (BLOB ->
// BYTEA), idempotency.allowed (0/1 -> BOOLEAN) and usage_daily.day
// ('YYYY-MM-DD' TEXT -> DATE).
enum class Kind { kText, kInt, kBytes, kBool, kDate };

struct Column {
  const char* name;
  Kind kind;
};

// One table both schemas hold, under the same name and column names.
struct Table {
  const char* name;
  std::span<const Column> columns;
  // SQLite's read order: creation order (rowid) where PostgreSQL records it
  // in an identity column (tenants.seq, api_keys.seq); else "".
  const char* order_by;
  // true: the first column is PostgreSQL's GENERATED ALWAYS identity, copied
  // with OVERRIDING SYSTEM VALUE, and its sequence moved past the largest id.
  bool keeps_identity;
};

constexpr Column kTenants[] = {{"id", Kind::kText},
                               {"name", Kind::kText},
                               {"plan", Kind::kText},
                               {"subscription_start", Kind::kInt},
                               {"created_at", Kind::kInt}};
constexpr Column kApiKeys[] = {{"key_id", Kind::kText},
                               {"tenant_id", Kind::kText},
                               {"hash", Kind::kBytes},
                               {"created_at", Kind::kInt},
                               {"revoked_at", Kind::kInt}};
constexpr Column kTenantLimits[] = {
    {"tenant_id", Kind::kText}, {"meter", Kind::kText}, {"limit_value", Kind::kInt}};
constexpr Column kCounters[] = {{"tenant_id", Kind::kText},
                                {"meter", Kind::kText},
                                {"period_start", Kind::kInt},
                                {"value", Kind::kInt}};
constexpr Column kUsageAggregates[] = {{"tenant_id", Kind::kText},   {"meter", Kind::kText},
                                       {"period_start", Kind::kInt}, {"period_end", Kind::kInt},
                                       {"value", Kind::kInt},        {"limit_value", Kind::kInt},
                                       {"plan", Kind::kText},        {"closed_at", Kind::kInt}};
constexpr Column kUsageHourly[] = {{"tenant_id", Kind::kText},
                                   {"meter", Kind::kText},
                                   {"channel", Kind::kText},
                                   {"hour", Kind::kInt},
                                   {"value", Kind::kInt}};
constexpr Column kUsageDaily[] = {{"tenant_id", Kind::kText},
                                  {"day", Kind::kDate},
                                  {"meter", Kind::kText},
                                  {"channel", Kind::kText},
                                  {"value", Kind::kInt}};
constexpr Column kIdempotency[] = {
    {"tenant_id", Kind::kText}, {"key", Kind::kText},         {"fingerprint", Kind::kInt},
    {"created_at", Kind::kInt}, {"allowed", Kind::kBool},     {"requested", Kind::kInt},
    {"consumed", Kind::kInt},   {"remaining", Kind::kInt},    {"limit_value", Kind::kInt},
    {"overage", Kind::kInt},    {"period_start", Kind::kInt}, {"reset_at", Kind::kInt},
    {"meter", Kind::kText},     {"reason", Kind::kInt},       {"extra", Kind::kText}};
constexpr Column kReservations[] = {{"tenant_id", Kind::kText},    {"id", Kind::kText},
                                    {"meter", Kind::kText},        {"units", Kind::kInt},
                                    {"created_at_ms", Kind::kInt}, {"expires_at_ms", Kind::kInt}};
constexpr Column kSessions[] = {{"tenant_id", Kind::kText},       {"id", Kind::kText},
                                {"phone", Kind::kText},           {"status", Kind::kText},
                                {"created_at", Kind::kInt},       {"updated_at", Kind::kInt},
                                {"first_working_at", Kind::kInt}, {"last_heartbeat", Kind::kInt},
                                {"warmup_day", Kind::kInt},       {"warmup_count", Kind::kInt},
                                {"tier_level", Kind::kInt},       {"tier_since_ms", Kind::kInt},
                                {"tier_qualified_ms", Kind::kInt}};
constexpr Column kGroups[] = {{"tenant_id", Kind::kText},
                              {"id", Kind::kText},
                              {"name", Kind::kText},
                              {"created_at", Kind::kInt}};
constexpr Column kKeyRateLimits[] = {{"key_id", Kind::kText},
                                     {"general", Kind::kInt},
                                     {"messages", Kind::kInt},
                                     {"sessions", Kind::kInt}};
constexpr Column kGauges[] = {
    {"tenant_id", Kind::kText}, {"meter", Kind::kText}, {"value", Kind::kInt}};
constexpr Column kEvents[] = {{"id", Kind::kInt},      {"tenant_id", Kind::kText},
                              {"type", Kind::kText},   {"subject", Kind::kText},
                              {"detail", Kind::kText}, {"at", Kind::kInt}};
constexpr Column kMessages[] = {{"id", Kind::kText},
                                {"tenant_id", Kind::kText},
                                {"channel", Kind::kText},
                                {"recipient", Kind::kText},
                                {"body", Kind::kText},
                                {"status", Kind::kText},
                                {"created_at", Kind::kInt},
                                {"session_id", Kind::kText},
                                {"type", Kind::kText},
                                {"send_at_ms", Kind::kInt},
                                {"due_at_ms", Kind::kInt},
                                {"seq", Kind::kInt},
                                {"reason", Kind::kText},
                                {"release_attempts", Kind::kInt},
                                {"released_at_ms", Kind::kInt},
                                {"sent_at_ms", Kind::kInt},
                                {"updated_at_ms", Kind::kInt},
                                {"paced", Kind::kBool},
                                {"delivery_attempts", Kind::kInt}};
constexpr Column kSubscriptionChanges[] = {
    {"seq", Kind::kInt},          {"id", Kind::kText},          {"tenant_id", Kind::kText},
    {"actor", Kind::kText},       {"from_plan", Kind::kText},   {"to_plan", Kind::kText},
    {"kind", Kind::kText},        {"amount_cents", Kind::kInt}, {"requested_at", Kind::kInt},
    {"effective_at", Kind::kInt}, {"state", Kind::kText}};
constexpr Column kAddons[] = {{"seq", Kind::kInt},        {"id", Kind::kText},
                              {"tenant_id", Kind::kText}, {"meter", Kind::kText},
                              {"units", Kind::kInt},      {"price_cents", Kind::kInt},
                              {"started_at", Kind::kInt}, {"ends_at", Kind::kInt}};
constexpr Column kTopups[] = {{"id", Kind::kText},          {"tenant_id", Kind::kText},
                              {"meter", Kind::kText},       {"units", Kind::kInt},
                              {"drawn", Kind::kInt},        {"price_cents", Kind::kInt},
                              {"bought_at_ms", Kind::kInt}, {"expires_at_ms", Kind::kInt}};
constexpr Column kAlerts[] = {
    {"tenant_id", Kind::kText},  {"meter", Kind::kText},     {"period_start", Kind::kInt},
    {"threshold", Kind::kInt},   {"period_end", Kind::kInt}, {"value", Kind::kInt},
    {"limit_value", Kind::kInt}, {"at", Kind::kInt},         {"resolved_at", Kind::kInt}};
constexpr Column kOutbox[] = {
    {"seq", Kind::kInt},     {"id", Kind::kText},      {"tenant_id", Kind::kText},
    {"type", Kind::kText},   {"subject", Kind::kText}, {"detail", Kind::kText},
    {"fields", Kind::kText}, {"at", Kind::kInt},       {"relayed", Kind::kBool}};
constexpr Column kWebhooks[] = {{"seq", Kind::kInt},        {"id", Kind::kText},
                                {"tenant_id", Kind::kText}, {"url", Kind::kText},
                                {"events", Kind::kText},    {"secret", Kind::kText},
                                {"created_at", Kind::kInt}, {"deleted_at", Kind::kInt}};
constexpr Column kDeliveries[] = {
    {"seq", Kind::kInt},         {"id", Kind::kText},         {"webhook_id", Kind::kText},
    {"tenant_id", Kind::kText},  {"event_id", Kind::kText},   {"state", Kind::kText},
    {"attempts", Kind::kInt},    {"budget_from", Kind::kInt}, {"next_at_ms", Kind::kInt},
    {"last_status", Kind::kInt}, {"last_error", Kind::kText}, {"created_at", Kind::kInt},
    {"finished_at", Kind::kInt}};
constexpr Column kDeliveryAttempts[] = {{"delivery_id", Kind::kText}, {"attempt", Kind::kInt},
                                        {"at", Kind::kInt},           {"status", Kind::kInt},
                                        {"error", Kind::kText},       {"took_ms", Kind::kInt}};

// Every table of store/sqlite/schema.h, in copy order (tenants before the
// keys that reference them). Not copied: SQLite's own sqlite_sequence (the
// events identity's sequence takes its place) and PostgreSQL's
// schema_migrations (written by the migrations).
constexpr Table kTables[] = {
    {"tenants", kTenants, "rowid", false},
    {"api_keys", kApiKeys, "rowid", false},
    {"tenant_limits", kTenantLimits, "", false},
    {"counters", kCounters, "", false},
    {"usage_aggregates", kUsageAggregates, "", false},
    {"usage_hourly", kUsageHourly, "", false},
    {"usage_daily", kUsageDaily, "", false},
    {"idempotency", kIdempotency, "", false},
    {"sessions", kSessions, "", false},
    {"groups_monitored", kGroups, "", false},
    {"key_rate_limits", kKeyRateLimits, "", false},
    {"gauges", kGauges, "", false},
    {"reservations", kReservations, "", false},
    {"events", kEvents, "id", true},
    {"messages", kMessages, "", false},
    {"subscription_changes", kSubscriptionChanges, "seq", true},
    {"addons", kAddons, "seq", true},
    {"topups", kTopups, "", false},
    {"alerts", kAlerts, "", false},
    {"outbox", kOutbox, "seq", true},
    {"webhooks", kWebhooks, "seq", true},
    {"deliveries", kDeliveries, "seq", true},
    {"delivery_attempts", kDeliveryAttempts, "", false},
};

// Values buffered before an INSERT is sent, whatever the row count.
constexpr size_t kMaxStatementBytes = 8 << 20;

const char* ArrayType(Kind kind) {
  switch (kind) {
    case Kind::kText:
      return "text[]";
    case Kind::kInt:
      return "bigint[]";
    case Kind::kBytes:
      return "bytea[]";
    case Kind::kBool:
      return "boolean[]";
    case Kind::kDate:
      return "date[]";
  }
  return "text[]";
}

// The SQLite storage class a column's non-NULL values must have.
int StorageClass(Kind kind) {
  switch (kind) {
    case Kind::kInt:
    case Kind::kBool:
      return SQLITE_INTEGER;
    case Kind::kBytes:
      return SQLITE_BLOB;
    case Kind::kText:
    case Kind::kDate:
      return SQLITE_TEXT;
  }
  return SQLITE_TEXT;
}

const char* StorageClassName(int storage_class) {
  switch (storage_class) {
    case SQLITE_INTEGER:
      return "an integer";
    case SQLITE_FLOAT:
      return "a real";
    case SQLITE_TEXT:
      return "text";
    case SQLITE_BLOB:
      return "a blob";
  }
  return "NULL";
}

// The table's column names, quoted, comma-separated.
std::string ColumnList(const Table& t) {
  return absl::StrJoin(t.columns, ",", [](std::string* out, const Column& c) {
    absl::StrAppend(out, "\"", c.name, "\"");
  });
}

std::string SelectSql(const Table& t) {
  std::string sql = absl::StrCat("SELECT ", ColumnList(t), " FROM \"", t.name, "\"");
  if (*t.order_by) absl::StrAppend(&sql, " ORDER BY ", t.order_by);
  return sql;
}

// One statement inserts a chunk of rows carried in array parameters, in
// their order (WITH ORDINALITY), so identity columns follow SQLite's order.
std::string InsertSql(const Table& t) {
  const std::string cols = ColumnList(t);
  std::string arrays;
  for (size_t i = 0; i < t.columns.size(); ++i) {
    absl::StrAppend(&arrays, i ? "," : "", "$", i + 1, "::", ArrayType(t.columns[i].kind));
  }
  return absl::StrCat("INSERT INTO \"", t.name, "\"(", cols, ")",
                      t.keeps_identity ? " OVERRIDING SYSTEM VALUE" : "", " SELECT ", cols,
                      " FROM unnest(", arrays, ") WITH ORDINALITY AS r(", cols,
                      ",ord) ORDER BY ord");
}

// The SQLite side: the file, opened read-only, inside one read transaction.
struct Source {
  std::string path;
  std::unique_ptr<Db> db;
};

// `s` (a failed call on `src`) with what it means to the operator: a lock held
// past the busy timeout (a server still running on the file), a file that is
// no SQLite database.
absl::Status SourceError(const Source& src, const absl::Status& s) {
  const int code = sqlite3_errcode(src.db->raw()) & 0xff;
  if (code == SQLITE_BUSY || code == SQLITE_LOCKED) {
    return absl::UnavailableError(
        absl::StrCat(src.path, " is locked: stop the quotum server that uses it, then migrate (",
                     s.message(), ")"));
  }
  if (code == SQLITE_NOTADB) {
    return absl::FailedPreconditionError(absl::StrCat(src.path, " is not a SQLite database"));
  }
  return absl::Status(s.code(), absl::StrCat(src.path, ": ", s.message()));
}

// Refuses a database without every table of this version's schema.
absl::Status CheckSourceTables(Source& src) {
  auto st = src.db->Prepare("SELECT name FROM sqlite_master WHERE type='table'");
  if (!st.ok()) return SourceError(src, st.status());
  std::set<std::string> names;
  absl::Status s = st->ForEachRow([&](const Stmt& r) { names.insert(r.Text(0)); });
  if (!s.ok()) return SourceError(src, s);
  if (!names.contains("tenants")) {
    return absl::FailedPreconditionError(
        absl::StrCat(src.path, " is not a Quotum database (it has no tenants table)"));
  }
  for (const Table& t : kTables) {
    if (names.contains(t.name)) continue;
    return absl::FailedPreconditionError(absl::StrCat(
        src.path, " has no ", t.name, " table (an older Quotum's database): start this quotum's ",
        "`serve` on it once, which adds the missing tables, stop it, and migrate again"));
  }
  return absl::OkStatus();
}

// Refuses a data dir whose journals (engine/journal.h) hold records: an
// embedded server killed before it folded them into quotum.db. Its next
// start replays them; a clean stop leaves the journals empty.
absl::Status CheckJournalsFolded(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with("journal-") || !name.ends_with(".qj")) continue;
    if (entry.file_size(ec) > 0 && !ec) {
      return absl::FailedPreconditionError(absl::StrCat(
          dir, " holds journal records that ", sqlite::kDatabaseFileName, " lacks (", name,
          "): start this quotum's `serve` on it once, which folds them in, stop it, and migrate "
          "again"));
    }
  }
  return absl::OkStatus();
}

// Opens `dir`/quotum.db read-only and starts the read transaction every
// table is read in.
absl::StatusOr<Source> OpenSource(const std::string& dir, absl::Duration busy_timeout) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat(dir, " is not a directory"));
  }
  RETURN_IF_ERROR(CheckJournalsFolded(dir));
  Source src{absl::StrCat(dir, "/", sqlite::kDatabaseFileName), nullptr};
  if (!std::filesystem::is_regular_file(src.path, ec)) {
    return absl::NotFoundError(
        absl::StrCat(dir, " holds no Quotum database (no ", sqlite::kDatabaseFileName, ")"));
  }
  auto db = Db::OpenReadOnly(src.path, busy_timeout);
  if (!db.ok()) return db.status();
  src.db = std::move(*db);
  if (absl::Status s = src.db->Exec("BEGIN"); !s.ok()) return SourceError(src, s);
  RETURN_IF_ERROR(CheckSourceTables(src));
  return src;
}

absl::StatusOr<int64_t> CountSource(Source& src, const Table& t) {
  auto st = src.db->Prepare(absl::StrCat("SELECT COUNT(*) FROM \"", t.name, "\""));
  if (!st.ok()) return SourceError(src, st.status());
  auto row = st->Step();
  if (!row.ok()) return SourceError(src, row.status());
  return st->Int(0);
}

// Appends column `col` of `row` to `out`; refuses a value whose SQLite
// storage class is not the column's (SQLite's columns are loosely typed:
// copying it would change it). `bytes` counts what text and blobs add.
absl::Status AppendValue(const Stmt& row, int col, const Table& t, PgArray& out, size_t& bytes) {
  const Column& c = t.columns[static_cast<size_t>(col)];
  if (row.Type(col) == SQLITE_NULL) {
    out.AddNull();  // PostgreSQL's NOT NULL constraints refuse it where SQLite's would have
    return absl::OkStatus();
  }
  if (row.Type(col) != StorageClass(c.kind)) {
    return absl::FailedPreconditionError(
        absl::StrCat("column ", c.name, " holds ", StorageClassName(row.Type(col)), " where ",
                     StorageClassName(StorageClass(c.kind)), " belongs"));
  }
  switch (c.kind) {
    case Kind::kInt:
      out.AddInt(row.Int(col));
      break;
    case Kind::kBool:
      out.AddBool(row.Int(col) != 0);  // as the SQLite store reads it
      break;
    case Kind::kBytes: {
      const std::string blob = row.Blob(col);
      bytes += 2 * blob.size();
      out.AddBytea(blob);
      break;
    }
    case Kind::kText:
    case Kind::kDate: {
      const std::string text = row.Text(col);
      absl::CivilDay day;
      if (c.kind == Kind::kDate && !(absl::ParseCivilTime(text, &day) && FormatDate(day) == text)) {
        // PostgreSQL would read other spellings, and give them back as YYYY-MM-DD.
        return absl::FailedPreconditionError(
            absl::StrCat("column ", c.name, " holds \"", text, "\", not a YYYY-MM-DD day"));
      }
      bytes += text.size();
      out.AddText(text);
      break;
    }
  }
  return absl::OkStatus();
}

// Copies the rows of `t` from `src` to `conn`, a chunk per INSERT; returns
// how many.
absl::StatusOr<int64_t> CopyRows(Source& src, PgConnection& conn, const Table& t,
                                 size_t rows_per_statement) {
  auto st = src.db->Prepare(SelectSql(t));
  if (!st.ok()) return SourceError(src, st.status());
  const std::string insert = InsertSql(t);
  const std::string name = absl::StrCat("import_", t.name);
  PgColumns cols(t.columns.size());
  size_t rows = 0, bytes = 0;
  int64_t copied = 0;
  auto flush = [&]() -> absl::Status {
    if (rows == 0) return absl::OkStatus();
    RETURN_IF_ERROR(conn.ExecPrepared(name, insert, cols.Params()).status());
    copied += static_cast<int64_t>(rows);
    cols = PgColumns(t.columns.size());
    rows = bytes = 0;
    return absl::OkStatus();
  };
  for (;;) {
    auto more = st->Step();
    if (!more.ok()) return SourceError(src, more.status());
    if (!*more) break;
    for (int i = 0; i < static_cast<int>(t.columns.size()); ++i) {
      RETURN_IF_ERROR(AppendValue(*st, i, t, cols[static_cast<size_t>(i)], bytes));
    }
    if (++rows >= rows_per_statement || bytes >= kMaxStatementBytes) RETURN_IF_ERROR(flush());
  }
  RETURN_IF_ERROR(flush());
  return copied;
}

// Moves the identity sequence of `t`'s first column past the largest id
// copied, so that the rows PostgreSQL numbers later follow them.
absl::Status AdvanceIdentity(PgConnection& conn, const Table& t) {
  const char* id = t.columns[0].name;
  return conn
      .Exec(absl::StrCat("SELECT setval(pg_get_serial_sequence('", t.name, "','", id, "'),MAX(\"",
                         id, "\")) FROM \"", t.name, "\" HAVING COUNT(*)>0"))
      .status();
}

// Copies one table; errors name it.
absl::StatusOr<int64_t> CopyTable(Source& src, PgConnection& conn, const Table& t,
                                  size_t rows_per_statement) {
  auto copied = CopyRows(src, conn, t, rows_per_statement);
  absl::Status s = copied.status();
  if (s.ok() && t.keeps_identity) s = AdvanceIdentity(conn, t);
  if (!s.ok()) return absl::Status(s.code(), absl::StrCat("copying ", t.name, ": ", s.message()));
  return copied;
}

// Keeps every writer (a quotum server on this database) out of the Quotum
// tables until the transaction ends; fails after `timeout` rather than wait
// for one that holds them.
absl::Status LockTarget(PgConnection& conn, absl::Duration timeout) {
  RETURN_IF_ERROR(conn.Exec(absl::StrCat("SET LOCAL lock_timeout = ",
                                         std::max<int64_t>(1, absl::ToInt64Milliseconds(timeout))))
                      .status());
  std::string tables = absl::StrJoin(kTables, ",", [](std::string* out, const Table& t) {
    absl::StrAppend(out, "\"", t.name, "\"");
  });
  auto locked = conn.Exec(absl::StrCat("LOCK TABLE ", tables, " IN EXCLUSIVE MODE"));
  if (locked.ok()) return absl::OkStatus();
  return absl::Status(locked.status().code(),
                      absl::StrCat("the Quotum tables in PostgreSQL are in use (is a quotum server "
                                   "running on this database?): ",
                                   locked.status().message()));
}

// Refuses a target that holds any row already: the move is into an empty
// database only, so nothing is merged or overwritten.
absl::Status RefuseNonEmptyTarget(PgConnection& conn) {
  std::vector<std::string> holding;
  for (const Table& t : kTables) {
    auto r = conn.Exec(absl::StrCat("SELECT EXISTS(SELECT 1 FROM \"", t.name, "\")"));
    if (!r.ok()) return r.status();
    if (r->row(0).Bool(0)) holding.push_back(t.name);
  }
  if (holding.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "the PostgreSQL database already holds Quotum data (in ", absl::StrJoin(holding, ", "),
      "): migrating is only into an empty database; nothing was copied"));
}

// Checks, before COMMIT, that every table holds in PostgreSQL exactly the
// rows it holds in SQLite (and that were copied); returns the counts.
absl::StatusOr<std::vector<TableCount>> VerifyCounts(Source& src, PgConnection& conn,
                                                     const std::vector<int64_t>& copied) {
  std::vector<TableCount> counts;
  for (size_t i = 0; i < std::size(kTables); ++i) {
    const Table& t = kTables[i];
    auto in_sqlite = CountSource(src, t);
    if (!in_sqlite.ok()) return in_sqlite.status();
    auto r = conn.Exec(absl::StrCat("SELECT COUNT(*) FROM \"", t.name, "\""));
    if (!r.ok()) return r.status();
    const int64_t in_postgres = r->row(0).Int(0);
    if (in_postgres != *in_sqlite || copied[i] != *in_sqlite) {
      return absl::DataLossError(absl::StrCat(t.name, ": SQLite holds ", *in_sqlite, " rows, ",
                                              copied[i], " were copied and PostgreSQL holds ",
                                              in_postgres, "; nothing was committed"));
    }
    counts.push_back({t.name, in_postgres});
  }
  return counts;
}

// The body of the PostgreSQL transaction.
absl::StatusOr<std::vector<TableCount>> CopyAll(Source& src, PgConnection& conn,
                                                const SqliteToPostgresOptions& o) {
  RETURN_IF_ERROR(LockTarget(conn, o.postgres_lock_timeout));
  RETURN_IF_ERROR(RefuseNonEmptyTarget(conn));
  std::vector<int64_t> copied;
  for (const Table& t : kTables) {
    auto n = CopyTable(src, conn, t, std::max<size_t>(1, o.rows_per_statement));
    if (!n.ok()) return n.status();
    copied.push_back(*n);
  }
  return VerifyCounts(src, conn, copied);
}

}  // namespace

absl::StatusOr<std::vector<TableCount>> CopySqliteToPostgres(const SqliteToPostgresOptions& o) {
  auto src = OpenSource(o.data_dir, o.sqlite_busy_timeout);
  if (!src.ok()) return src.status();
  auto conn = PgConnection::Connect(o.postgres_url, o.connect_timeout);
  if (!conn.ok()) return conn.status();
  PgConnection& pg = **conn;
  if (auto migrated = postgres::Migrate(pg); !migrated.ok()) return migrated.status();
  RETURN_IF_ERROR(pg.Exec("BEGIN ISOLATION LEVEL READ COMMITTED").status());
  auto counts = CopyAll(*src, pg, o);
  if (counts.ok()) {
    // A connection lost during COMMIT leaves the outcome unknown: the
    // kUnavailable error says so, and a second run is refused if it did
    // commit.
    if (auto r = pg.Exec("COMMIT"); !r.ok()) return r.status();
  } else if (!pg.broken()) {
    (void)pg.Exec("ROLLBACK");
  }
  return counts;
}

std::string FormatCounts(const std::vector<TableCount>& counts) {
  return absl::StrJoin(counts, ", ", [](std::string* out, const TableCount& c) {
    absl::StrAppend(out, c.table, " ", c.rows);
  });
}

}  // namespace quotum::store::migrate
