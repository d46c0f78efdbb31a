#pragma once

#include <hiredis/hiredis.h>

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace quotum::store::redis {

/// Where a Redis server is: parsed from "redis://host[:port][/db]".
struct RedisEndpoint {
  std::string host;
  int port = 6379;
  int db = 0;
};

/// Parses "redis://host[:port][/db]": port defaults to 6379, db to 0; an IPv6
/// host is written in brackets. kInvalidArgument (naming the URL) for another
/// scheme (rediss:// is not supported), credentials, a query or a bad port/db.
absl::StatusOr<RedisEndpoint> ParseRedisUrl(std::string_view url);

/// Where and how patiently to connect: what every Redis client here shares.
struct RedisClientOptions {
  RedisEndpoint endpoint;
  absl::Duration connect_timeout = absl::Seconds(1);
  /// A command not answered within this fails with kUnavailable.
  absl::Duration command_timeout = absl::Milliseconds(500);
};

/// A non-owning view of one reply (or of an element of an array reply); valid
/// while the owning RedisReply lives.
class ReplyView {
 public:
  explicit ReplyView(const redisReply* reply) : r_(reply) {}

  /// REDIS_REPLY_STRING, _ARRAY, _INTEGER, _NIL, _STATUS or _ERROR.
  int type() const { return r_->type; }
  bool is_error() const { return r_->type == REDIS_REPLY_ERROR; }
  bool is_nil() const { return r_->type == REDIS_REPLY_NIL; }
  /// The bytes of a string, status or error reply; empty for other types.
  std::string_view str() const;
  /// The value of an integer reply; 0 for other types.
  long long integer() const { return r_->type == REDIS_REPLY_INTEGER ? r_->integer : 0; }
  /// The number of elements of an array reply; 0 for other types.
  size_t size() const { return r_->type == REDIS_REPLY_ARRAY ? r_->elements : 0; }
  /// Element i (< size()) of an array reply.
  ReplyView operator[](size_t i) const { return ReplyView(r_->element[i]); }

 private:
  const redisReply* r_;
};

/// Owns one hiredis reply (freeReplyObject when destroyed). Move-only; reads
/// go through the view: reply->str(), reply->is_error(), (*reply)[0], ...
class RedisReply {
 public:
  /// Takes ownership of `reply` (non-null).
  explicit RedisReply(redisReply* reply) : reply_(reply), view_(reply) {}

  const ReplyView& view() const { return view_; }
  const ReplyView& operator*() const { return view_; }
  const ReplyView* operator->() const { return &view_; }

 private:
  struct Free {
    void operator()(redisReply* r) const { freeReplyObject(r); }
  };
  std::unique_ptr<redisReply, Free> reply_;
  ReplyView view_;  // of *reply_, whose address a move keeps
};

/// The status for a server error reply: OK when `reply` is not an error;
/// kUnavailable for LOADING, BUSY, MASTERDOWN, READONLY and TRYAGAIN (the
/// server cannot serve now), kResourceExhausted for OOM, else kInternal. The
/// message holds the server's text.
absl::Status ErrorReplyStatus(ReplyView reply);

/// One synchronous hiredis connection (RAII over redisContext). Not
/// thread-safe: give each thread its own, or guard it.
///
/// Errors: a transport failure (connect, I/O, timeout, protocol) is a
/// kUnavailable status with hiredis' errstr, and leaves the connection
/// broken() until Reconnect(). A server error reply (-ERR ..., a script
/// error) is NOT a status: Command and EvalSha return it as a reply with
/// is_error(); ErrorReplyStatus converts it when the caller wants a status.
class RedisConnection {
 public:
  /// Connects within `connect_timeout`; each later command fails with
  /// kUnavailable when the server does not answer within `command_timeout`.
  static absl::StatusOr<RedisConnection> Connect(std::string_view host, int port,
                                                 absl::Duration connect_timeout,
                                                 absl::Duration command_timeout);
  /// As above, then SELECTs the endpoint's db when it is not 0.
  static absl::StatusOr<RedisConnection> Connect(const RedisEndpoint& endpoint,
                                                 absl::Duration connect_timeout,
                                                 absl::Duration command_timeout);
  static absl::StatusOr<RedisConnection> Connect(const RedisClientOptions& o) {
    return Connect(o.endpoint, o.connect_timeout, o.command_timeout);
  }

  RedisConnection(RedisConnection&& other) noexcept;
  RedisConnection& operator=(RedisConnection&& other) noexcept;
  ~RedisConnection();

  /// Sends one command (binary-safe arguments) and waits for its reply.
  absl::StatusOr<RedisReply> Command(std::span<const std::string_view> argv);
  absl::StatusOr<RedisReply> Command(std::initializer_list<std::string_view> argv) {
    return Command(std::span<const std::string_view>(argv.begin(), argv.size()));
  }

  /// Sends every command of `commands` in one write, then reads their replies
  /// in order (pipelining): one round trip for the lot. A transport failure
  /// fails the whole call (the connection is then broken()); error replies
  /// are replies, as in Command.
  absl::StatusOr<std::vector<RedisReply>> Pipeline(
      std::span<const std::vector<std::string_view>> commands);

  /// SCRIPT LOAD: caches `body` on the server and returns its SHA1 (40 hex).
  absl::StatusOr<std::string> LoadScript(std::string_view body);

  /// EVALSHA sha numkeys keys... args...; on a NOSCRIPT error reply (the
  /// server restarted or flushed its script cache) it loads `body` once and
  /// retries. kInternal when `body` does not hash to `sha`.
  absl::StatusOr<RedisReply> EvalSha(std::string_view sha, std::string_view body,
                                     std::span<const std::string_view> keys,
                                     std::span<const std::string_view> args);

  /// True after a transport failure; every command then fails until Reconnect().
  bool broken() const;
  /// True when an idle connection can no longer carry a command: broken, or
  /// the server has closed it (or sent something unasked) since the last
  /// reply. One non-blocking poll(); check before reusing a pooled connection,
  /// because a command sent on a closed one may or may not have run.
  bool Stale() const;
  /// Re-opens the connection to the same server (and SELECTs the db again).
  absl::Status Reconnect();

 private:
  RedisConnection(redisContext* context, absl::Duration command_timeout, int db);
  /// The kUnavailable status for the context's current error, prefixed by `what`.
  absl::Status TransportError(std::string_view what) const;
  absl::Status SetCommandTimeout();
  absl::Status Select(int db);

  redisContext* context_ = nullptr;
  absl::Duration command_timeout_;
  int db_ = 0;
};

}  // namespace quotum::store::redis
