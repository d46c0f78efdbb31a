#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace quotum::store::sqlite {

/// One prepared statement. Bind indexes start at 1, column indexes at 0.
/// Not thread-safe (belongs to one connection).
class Stmt {
 public:
  Stmt() = default;
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  Stmt(Stmt&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  Stmt& operator=(Stmt&& o) noexcept;
  ~Stmt();

  Stmt& Bind(int i, absl::string_view v);
  Stmt& Bind(int i, int64_t v);
  Stmt& BindBlob(int i, absl::string_view v);
  Stmt& BindNull(int i);
  Stmt& Bind(int i, std::optional<int64_t> v) { return v ? Bind(i, *v) : BindNull(i); }

  /// Steps once: true when a row is available, false when done.
  absl::StatusOr<bool> Step();
  /// Steps to completion, then resets for reuse.
  absl::Status Run();
  /// Calls `row` for every result row, then resets; stops at the first error.
  absl::Status ForEachRow(absl::FunctionRef<void(const Stmt&)> row);
  void Reset();

  int64_t Int(int col) const { return sqlite3_column_int64(s_, col); }
  /// The storage class of a column's value: SQLITE_INTEGER, SQLITE_TEXT, SQLITE_BLOB, ...
  int Type(int col) const { return sqlite3_column_type(s_, col); }
  bool IsNull(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  std::string Text(int col) const;
  std::string Blob(int col) const;

 private:
  sqlite3_stmt* s_ = nullptr;
};

/// One SQLite connection. Not thread-safe; guard it or give each thread its own.
class Db {
 public:
  /// Opens `path` for reading and writing, creating it if missing; waits up to
  /// 5 s for another connection's lock.
  static absl::StatusOr<std::unique_ptr<Db>> Open(const std::string& path);
  /// Opens an existing database read-only (never creates it); waits up to
  /// `busy_timeout` for another connection's lock, then fails with SQLITE_BUSY.
  static absl::StatusOr<std::unique_ptr<Db>> OpenReadOnly(const std::string& path,
                                                          absl::Duration busy_timeout);
  ~Db();

  absl::Status Exec(absl::string_view sql);
  absl::StatusOr<Stmt> Prepare(absl::string_view sql);
  sqlite3* raw() const { return db_; }
  std::string LastError() const { return sqlite3_errmsg(db_); }

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  static absl::StatusOr<std::unique_ptr<Db>> OpenWith(const std::string& path, int flags,
                                                      absl::Duration busy_timeout);
  sqlite3* db_;
};

}  // namespace quotum::store::sqlite
