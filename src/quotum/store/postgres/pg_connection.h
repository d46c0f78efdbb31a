#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace quotum::store::postgres {

/// One query parameter, sent in text format; nullopt is SQL NULL. A NUL byte
/// in a parameter is refused (kInvalidArgument): PostgreSQL text has none.
using PgParam = std::optional<std::string>;
using PgParams = std::vector<PgParam>;

/// A parameter in PostgreSQL's text format.
inline PgParam TextParam(absl::string_view v) { return std::string(v); }
PgParam IntParam(int64_t v);

/// One row of a result (valid while the result lives). Columns count from 0;
/// results are in text format.
class PgRow {
 public:
  PgRow(const PGresult* result, int row) : r_(result), row_(row) {}
  bool IsNull(int col) const { return PQgetisnull(r_, row_, col) != 0; }
  std::string Text(int col) const;
  /// A BIGINT/INTEGER/SMALLINT column; 0 for NULL.
  int64_t Int(int col) const;
  /// A BOOLEAN column ('t' or 'f').
  bool Bool(int col) const;
  /// A BYTEA column (decoded from its hex text form).
  std::string Bytea(int col) const;

 private:
  const PGresult* r_;
  int row_;
};

/// Owns one PGresult (PQclear when destroyed). Move-only.
class PgResult {
 public:
  explicit PgResult(PGresult* r) : r_(r) {}
  int rows() const { return PQntuples(r_.get()); }
  PgRow row(int i) const { return PgRow(r_.get(), i); }
  /// Rows affected by an INSERT/UPDATE/DELETE.
  int64_t affected() const;
  const PGresult* get() const { return r_.get(); }

 private:
  struct Clear {
    void operator()(PGresult* r) const { PQclear(r); }
  };
  std::unique_ptr<PGresult, Clear> r_;
};

/// One synchronous libpq connection (RAII over PGconn). Not thread-safe: give
/// each thread its own, or guard it.
///
/// Errors: a lost or unreachable server is kUnavailable with libpq's message
/// (so is a server shutting down, starting up, read-only or out of
/// connections: worth retrying later); see CodeForSqlState for SQL errors.
class PgConnection {
 public:
  /// Connects to `conninfo`: "key=value ..." or a postgresql:// URL. Values in
  /// `conninfo` win over `connect_timeout` and application_name "quotum".
  static absl::StatusOr<std::unique_ptr<PgConnection>> Connect(const std::string& conninfo,
                                                               absl::Duration connect_timeout);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  /// Runs one statement (no parameters: several statements separated by ';'
  /// are allowed) and returns its result.
  absl::StatusOr<PgResult> Exec(absl::string_view sql);
  /// Runs one statement with $1.. bound to `params`.
  absl::StatusOr<PgResult> Exec(absl::string_view sql, const PgParams& params);
  /// Runs `sql` as the prepared statement `name`, preparing it on first use
  /// on this connection (and again after a reconnect).
  absl::StatusOr<PgResult> ExecPrepared(const std::string& name, absl::string_view sql,
                                        const PgParams& params);
  /// Streams the rows of one query to `row` (single-row mode: memory stays
  /// flat however many rows). A non-OK status from `row` stops the stream and
  /// is returned.
  absl::Status ForEachRow(absl::string_view sql, const PgParams& params,
                          absl::FunctionRef<absl::Status(const PgRow&)> row);

  /// True when the connection is known to be lost.
  bool broken() const { return PQstatus(conn_) == CONNECTION_BAD; }
  /// Notices a connection the server has closed while it sat idle (a restart,
  /// an administrator's kill) without a round trip, and reconnects it.
  /// kUnavailable when the server cannot be reached.
  absl::Status EnsureLive();
  /// Re-opens the connection with the same parameters.
  absl::Status Reconnect();

 private:
  explicit PgConnection(PGconn* conn) : conn_(conn) {}
  /// The status of a failed `what` on this connection.
  absl::Status Error(absl::string_view what, const PGresult* result) const;
  /// Takes the result of a synchronous call: OK for COMMAND_OK / TUPLES_OK.
  absl::StatusOr<PgResult> Take(PGresult* r, absl::string_view what);

  PGconn* conn_;
  absl::flat_hash_set<std::string> prepared_;
};

/// Lower-case hex of `bytes` behind "\x": PostgreSQL's BYTEA text form.
std::string ByteaHex(absl::string_view bytes);

/// Adds a text-format array literal ('{...}') element by element, for
/// `unnest($1::text[], ...)` parameters that carry many rows in one statement.
class PgArray {
 public:
  void AddText(absl::string_view text);
  void AddInt(int64_t v);
  void AddOptionalInt(const std::optional<int64_t>& v);
  void AddBool(bool v) { AddRaw(v ? "t" : "f"); }
  /// Adds a BYTEA element (hex form).
  void AddBytea(absl::string_view bytes) { AddText(ByteaHex(bytes)); }
  void AddNull() { AddRaw("NULL"); }
  /// The literal, e.g. {"a","b\"c",NULL}.
  PgParam Literal() const { return "{" + body_ + "}"; }

 private:
  void AddRaw(absl::string_view element);
  std::string body_;
};

/// The rows of one statement, column by column: one PgArray per column, each
/// sent as one array parameter ($1 = column 0, ...).
class PgColumns {
 public:
  explicit PgColumns(size_t n) : cols_(n) {}
  PgArray& operator[](size_t i) { return cols_[i]; }
  PgParams Params() const {
    PgParams out;
    for (const auto& c : cols_) out.push_back(c.Literal());
    return out;
  }

 private:
  std::vector<PgArray> cols_;
};

/// The status code of a failed statement's SQLSTATE: kUnavailable for
/// connection, shutdown, resource and read-only errors, kAborted for a
/// serialization failure or deadlock, kFailedPrecondition for a violated
/// constraint, kDeadlineExceeded for a cancelled statement, else kInternal.
absl::StatusCode CodeForSqlState(absl::string_view sqlstate);

}  // namespace quotum::store::postgres
