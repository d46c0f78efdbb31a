#pragma once

#include "absl/status/status.h"
#include "quotum/engine/store.h"
#include "quotum/store/postgres/pg_connection.h"

namespace quotum::store::postgres {

/// Writes every record of `batch` on `conn`, inside the caller's transaction,
/// with the effect of applying the records in order as the SQLite store does:
/// tenants, keys, revocations, overrides (nullopt deletes), usage (summed per
/// counter, hour and day row, then added to the stored values), idempotency
/// records, messages, session upserts then deletions, group inserts then
/// deletions, key rate limits, gauges, events. One statement per kind, its
/// rows carried in array parameters. Stops at the first error, which the
/// caller answers with a ROLLBACK.
absl::Status WriteBatch(PgConnection& conn, const engine::CommitBatch& batch);

}  // namespace quotum::store::postgres
