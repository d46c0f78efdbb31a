#include "quotum/store/postgres/pg_connection.h"

#include <poll.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace quotum::store::postgres {
namespace {

// libpq's messages end in a newline and may continue on tab-indented lines.
std::string OneLine(absl::string_view message) {
  std::string s = absl::StrReplaceAll(message, {{"\n\t", " "}, {"\n", " "}});
  absl::StripTrailingAsciiWhitespace(&s);
  return s;
}

// True when libpq would read `conninfo` as key=value pairs or a URL (rather
// than as a bare database name).
bool LooksLikeConninfo(const std::string& conninfo) {
  return conninfo.find('=') != std::string::npos || absl::StartsWith(conninfo, "postgresql://") ||
         absl::StartsWith(conninfo, "postgres://");
}

absl::Status CheckConninfoSyntax(const std::string& conninfo) {
  if (!LooksLikeConninfo(conninfo)) return absl::OkStatus();
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  if (options) {
    PQconninfoFree(options);
    return absl::OkStatus();
  }
  std::string message = error ? OneLine(error) : "out of memory";
  PQfreemem(error);
  return absl::InvalidArgumentError(absl::StrCat("postgres: bad connection string: ", message));
}

// Text parameters travel as C strings, and PostgreSQL text cannot hold a NUL
// byte anyway: refuse one rather than send a truncated value.
absl::Status CheckNoNul(const PgParams& params) {
  for (const auto& p : params) {
    if (p && p->find('\0') != std::string::npos) {
      return absl::InvalidArgumentError("postgres: text with a NUL byte cannot be stored");
    }
  }
  return absl::OkStatus();
}

// The C strings libpq wants for text parameters (nullptr = NULL).
std::vector<const char*> ParamPointers(const PgParams& params) {
  std::vector<const char*> out;
  out.reserve(params.size());
  for (const auto& p : params) out.push_back(p ? p->c_str() : nullptr);
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return 0;
}

}  // namespace

PgParam IntParam(int64_t v) { return absl::StrCat(v); }

std::string PgRow::Text(int col) const {
  return std::string(PQgetvalue(r_, row_, col), PQgetlength(r_, row_, col));
}

int64_t PgRow::Int(int col) const {
  int64_t v = 0;
  if (!IsNull(col)) (void)absl::SimpleAtoi(PQgetvalue(r_, row_, col), &v);
  return v;
}

bool PgRow::Bool(int col) const { return PQgetvalue(r_, row_, col)[0] == 't'; }

std::string PgRow::Bytea(int col) const {
  absl::string_view hex(PQgetvalue(r_, row_, col), PQgetlength(r_, row_, col));
  if (absl::StartsWith(hex, "\\x")) hex.remove_prefix(2);
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<char>(HexValue(hex[2 * i]) << 4 | HexValue(hex[2 * i + 1]));
  }
  return out;
}

int64_t PgResult::affected() const {
  int64_t n = 0;
  (void)absl::SimpleAtoi(PQcmdTuples(r_.get()), &n);
  return n;
}

absl::StatusCode CodeForSqlState(absl::string_view state) {
  using absl::StatusCode;
  if (absl::StartsWith(state, "08") || absl::StartsWith(state, "53") || state == "57P01" ||
      state == "57P02" || state == "57P03" || state == "25006") {
    return StatusCode::kUnavailable;
  }
  if (state == "40001" || state == "40P01") return StatusCode::kAborted;
  if (absl::StartsWith(state, "23")) return StatusCode::kFailedPrecondition;
  if (state == "57014") return StatusCode::kDeadlineExceeded;
  return StatusCode::kInternal;
}

absl::StatusOr<std::unique_ptr<PgConnection>> PgConnection::Connect(
    const std::string& conninfo, absl::Duration connect_timeout) {
  if (absl::Status s = CheckConninfoSyntax(conninfo); !s.ok()) return s;
  // Keywords are applied in order, so everything `conninfo` (expanded from
  // "dbname") sets wins over the defaults before it.
  const std::string timeout =
      absl::StrCat(std::max<int64_t>(1, absl::ToInt64Seconds(connect_timeout)));
  const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {timeout.c_str(), "quotum", conninfo.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (!conn) return absl::ResourceExhaustedError("postgres: out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = OneLine(PQerrorMessage(conn));
    PQfinish(conn);
    return absl::UnavailableError(absl::StrCat("postgres: cannot connect: ", message));
  }
  // Notices ("relation already exists, skipping") are not errors: drop them
  // rather than let libpq print them on stderr.
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<PgConnection>(new PgConnection(conn));
}

PgConnection::~PgConnection() { PQfinish(conn_); }

absl::Status PgConnection::Error(absl::string_view what, const PGresult* result) const {
  std::string message = result ? PQresultErrorMessage(result) : "";
  if (message.empty()) message = PQerrorMessage(conn_);
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  absl::StatusCode code = absl::StatusCode::kInternal;
  if (broken()) {
    code = absl::StatusCode::kUnavailable;
  } else if (state) {
    code = CodeForSqlState(state);
  }
  return absl::Status(code, absl::StrCat("postgres: ", what, ": ", OneLine(message)));
}

absl::StatusOr<PgResult> PgConnection::Take(PGresult* raw, absl::string_view what) {
  PgResult r(raw);
  const ExecStatusType st = raw ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
  return Error(what, raw);
}

absl::StatusOr<PgResult> PgConnection::Exec(absl::string_view sql) {
  const std::string text(sql);
  return Take(PQexec(conn_, text.c_str()), sql.substr(0, 60));
}

absl::StatusOr<PgResult> PgConnection::Exec(absl::string_view sql, const PgParams& params) {
  if (absl::Status s = CheckNoNul(params); !s.ok()) return s;
  const std::string text(sql);
  auto values = ParamPointers(params);
  return Take(PQexecParams(conn_, text.c_str(), static_cast<int>(values.size()), nullptr,
                           values.data(), nullptr, nullptr, 0),
              sql.substr(0, 60));
}

absl::StatusOr<PgResult> PgConnection::ExecPrepared(const std::string& name, absl::string_view sql,
                                                    const PgParams& params) {
  if (absl::Status s = CheckNoNul(params); !s.ok()) return s;
  auto values = ParamPointers(params);
  if (!prepared_.contains(name)) {
    const std::string text(sql);
    auto prepared =
        Take(PQprepare(conn_, name.c_str(), text.c_str(), static_cast<int>(values.size()), nullptr),
             absl::StrCat("prepare ", name));
    if (!prepared.ok()) return prepared.status();
    prepared_.insert(name);
  }
  return Take(PQexecPrepared(conn_, name.c_str(), static_cast<int>(values.size()), values.data(),
                             nullptr, nullptr, 0),
              name);
}

absl::Status PgConnection::ForEachRow(absl::string_view sql, const PgParams& params,
                                      absl::FunctionRef<absl::Status(const PgRow&)> row) {
  if (absl::Status s = CheckNoNul(params); !s.ok()) return s;
  const std::string text(sql);
  const absl::string_view what = sql.substr(0, 60);
  auto values = ParamPointers(params);
  if (!PQsendQueryParams(conn_, text.c_str(), static_cast<int>(values.size()), nullptr,
                         values.data(), nullptr, nullptr, 0)) {
    return Error(what, nullptr);
  }
  const bool single = PQsetSingleRowMode(conn_) == 1;
  // Every result is read, also after a failure, so that the connection is
  // ready for the next statement.
  absl::Status status = single ? absl::OkStatus() : absl::InternalError("no single-row mode");
  while (PGresult* raw = PQgetResult(conn_)) {
    PgResult r(raw);
    const ExecStatusType st = PQresultStatus(raw);
    if (!status.ok()) continue;
    if (st == PGRES_SINGLE_TUPLE) {
      status = row(PgRow(raw, 0));
    } else if (st != PGRES_TUPLES_OK) {
      status = Error(what, raw);
    }
  }
  return status;
}

absl::Status PgConnection::EnsureLive() {
  // A server that went away left an EOF (often after a FATAL message) on the
  // idle socket: reading it marks the connection bad.
  for (int i = 0; i < 3 && !broken(); ++i) {
    pollfd p{PQsocket(conn_), POLLIN, 0};
    if (p.fd < 0 || poll(&p, 1, 0) <= 0) break;
    if (!PQconsumeInput(conn_)) break;
  }
  if (broken()) return Reconnect();
  if (PQtransactionStatus(conn_) != PQTRANS_IDLE) {
    // A transaction left open by an earlier failure.
    if (auto r = Exec("ROLLBACK"); !r.ok()) return Reconnect();
  }
  return absl::OkStatus();
}

absl::Status PgConnection::Reconnect() {
  prepared_.clear();
  PQreset(conn_);
  if (PQstatus(conn_) != CONNECTION_OK) {
    return absl::UnavailableError(
        absl::StrCat("postgres: cannot reconnect: ", OneLine(PQerrorMessage(conn_))));
  }
  return absl::OkStatus();
}

void PgArray::AddRaw(absl::string_view element) {
  if (!body_.empty()) body_ += ',';
  absl::StrAppend(&body_, element);
}

void PgArray::AddText(absl::string_view text) {
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  quoted += '"';
  AddRaw(quoted);
}

void PgArray::AddInt(int64_t v) { AddRaw(absl::StrCat(v)); }

void PgArray::AddOptionalInt(const std::optional<int64_t>& v) {
  if (v) {
    AddInt(*v);
  } else {
    AddNull();
  }
}

std::string ByteaHex(absl::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "\\x";
  out.reserve(2 + 2 * bytes.size());
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

}  // namespace quotum::store::postgres
