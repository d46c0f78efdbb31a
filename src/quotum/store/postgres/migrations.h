#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "quotum/store/postgres/pg_connection.h"

namespace quotum::store::postgres {

/// One step of the PostgreSQL schema. Versions count up from 1 without gaps;
/// a migration that has shipped is never edited: a change is a new migration.
struct Migration {
  int version;
  const char* description;
  const char* sql;
};

/// Every migration this build knows, in version order (migrations.cc).
std::span<const Migration> Migrations();
/// The version of the last migration: the schema this build reads and writes.
int LatestSchemaVersion();

/// The key of the transaction-scoped advisory lock every migration run holds
/// ("quotum" in ASCII, then 01), so that instances starting together apply
/// each migration exactly once.
inline constexpr int64_t kMigrationLockKey = 0x71756f74756d01;

struct MigrationResult {
  int from_version = 0;  ///< 0: the database had no Quotum schema
  int to_version = 0;
};

/// Brings the database of `conninfo` ("key=value ..." or a postgresql:// URL)
/// up to LatestSchemaVersion(): one transaction under
/// pg_advisory_xact_lock(kMigrationLockKey) applies the missing migrations
/// and records each in schema_migrations(version, description, applied_at).
/// kFailedPrecondition when the database is at a newer version than this
/// build knows (a newer Quotum migrated it); nothing is changed then. For a
/// `quotum migrate --postgres-url URL` command and for PgStore::Open.
absl::StatusOr<MigrationResult> Migrate(const std::string& conninfo,
                                        absl::Duration connect_timeout = absl::Seconds(5));
/// The same on an open connection (outside any transaction).
absl::StatusOr<MigrationResult> Migrate(PgConnection& conn);

}  // namespace quotum::store::postgres
