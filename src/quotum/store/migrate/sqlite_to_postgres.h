#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace quotum::store::migrate {

/// Moves an embedded deployment's data (the SQLite store in a data dir) into
/// the PostgreSQL store of scale-out mode. Depends on both store adapters, and
/// neither of them depends on it.
struct SqliteToPostgresOptions {
  /// The embedded deployment's data dir, holding quotum.db.
  std::string data_dir;
  /// The target: "key=value ..." or a postgresql:// URL.
  std::string postgres_url;
  absl::Duration connect_timeout = absl::Seconds(5);
  /// How long to wait for a lock another SQLite connection holds before
  /// failing (kUnavailable, "locked").
  absl::Duration sqlite_busy_timeout = absl::Seconds(5);
  /// How long to wait for the PostgreSQL tables' locks (a server writing to
  /// them) before failing.
  absl::Duration postgres_lock_timeout = absl::Seconds(10);
  /// Rows sent per INSERT (array parameters); a statement is also sent once
  /// its values pass about 8 MiB.
  size_t rows_per_statement = 2000;
};

/// Rows of one table, the same in SQLite and in PostgreSQL after the copy.
struct TableCount {
  std::string table;
  int64_t rows = 0;
};

/// Copies every table of the SQLite store into PostgreSQL:
///  1. Opens `data_dir`/quotum.db read-only (it is never written) and reads
///     it in one read transaction: one consistent snapshot. Refused
///     (kNotFound / kFailedPrecondition, nothing written anywhere) when the
///     dir or the file is missing or is not this version's Quotum database;
///     kUnavailable when it stays locked past `sqlite_busy_timeout`.
///  2. Applies the PostgreSQL schema migrations (postgres/migrations.h), in
///     their own transaction, as `quotum migrate --postgres-url` does.
///  3. In one PostgreSQL transaction, with every Quotum table locked against
///     writers: refuses (kFailedPrecondition) when any of them already holds
///     a row; copies each table; checks that each table's row count in
///     PostgreSQL equals SQLite's; commits. Any failure rolls the whole copy
///     back: all or nothing.
/// Values are copied as stored (instants in Unix seconds in both schemas,
/// unsigned values bit-for-bit, key hashes byte-for-byte); tenants and keys
/// keep their creation order, events their ids. The server must be stopped:
/// what it commits after the snapshot is not copied.
/// Returns the row count of each table, in copy order.
absl::StatusOr<std::vector<TableCount>> CopySqliteToPostgres(
    const SqliteToPostgresOptions& options);

/// "tenants 12, api_keys 15, ...".
std::string FormatCounts(const std::vector<TableCount>& counts);

}  // namespace quotum::store::migrate
