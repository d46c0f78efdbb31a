// How both cold stores (SQLite and PostgreSQL, which share their schema) keep
// values in columns: instants as Unix seconds, or Unix milliseconds in the
// columns named *_ms; unsigned 64-bit counters bit-for-bit in a signed 64-bit
// integer column.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/time/time.h"

namespace quotum::store {

inline int64_t Secs(absl::Time t) { return absl::ToUnixSeconds(t); }
inline absl::Time FromSecs(int64_t s) { return absl::FromUnixSeconds(s); }
inline int64_t AsStored(uint64_t v) { return static_cast<int64_t>(v); }
inline uint64_t AsUnsigned(int64_t v) { return static_cast<uint64_t>(v); }

/// An optional instant as its column value (NULL when absent).
inline std::optional<int64_t> OptSecs(const std::optional<absl::Time>& t) {
  if (!t) return std::nullopt;
  return Secs(*t);
}
inline std::optional<int64_t> OptMillis(const std::optional<absl::Time>& t) {
  if (!t) return std::nullopt;
  return absl::ToUnixMillis(*t);
}

/// Column `col` of `r` (Unix seconds, or NULL) as an instant. `Row` has
/// IsNull(col) and Int(col) (sqlite::Stmt, postgres::PgRow).
template <typename Row>
std::optional<absl::Time> OptTime(const Row& r, int col) {
  if (r.IsNull(col)) return std::nullopt;
  return FromSecs(r.Int(col));
}

/// `secs` rounded down to a multiple of `unit` (also before 1970).
inline int64_t FloorTo(int64_t secs, int64_t unit) { return secs - ((secs % unit) + unit) % unit; }

}  // namespace quotum::store
