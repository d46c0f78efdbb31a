#include "quotum/store/redis/redis_connection.h"

#include <poll.h>

#include <boost/url/parse.hpp>
#include <charconv>
#include <utility>
#include <vector>

#include "quotum/core/string_views.h"

namespace quotum::store::redis {
namespace {

absl::Status BadUrl(std::string_view url, std::string_view why) {
  return absl::InvalidArgumentError(Cat("redis URL '", url, "': ", why));
}

// The decimal number `digits` if it is one within [lo, hi], else -1.
int NumberIn(std::string_view digits, int lo, int hi) {
  int value = -1;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) return -1;
  return value < lo || value > hi ? -1 : value;
}

// The db of a URL path: "" or "/" is 0, "/N" is N (0..65535).
absl::StatusOr<int> DbOfPath(std::string_view url, std::string_view path) {
  if (path.empty() || path == "/") return 0;
  const int db = path.starts_with("/") ? NumberIn(path.substr(1), 0, 65535) : -1;
  if (db < 0) return BadUrl(url, "the path must be /<db number>");
  return db;
}

// Server error prefixes meaning "cannot serve now, try later".
constexpr std::string_view kUnavailablePrefixes[] = {"LOADING", "BUSY", "MASTERDOWN", "READONLY",
                                                     "TRYAGAIN"};

}  // namespace

absl::StatusOr<RedisEndpoint> ParseRedisUrl(std::string_view url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return BadUrl(url, "not a URI");
  const auto& u = *parsed;
  if (u.scheme() != "redis") return BadUrl(url, "the scheme must be redis://");
  if (u.has_userinfo()) return BadUrl(url, "credentials are not supported");
  if (u.has_query() || u.has_fragment()) return BadUrl(url, "no query or fragment allowed");
  RedisEndpoint out;
  out.host = u.host_address();
  if (out.host.empty()) return BadUrl(url, "no host");
  if (u.has_port()) {
    out.port = NumberIn(u.port(), 1, 65535);
    if (out.port < 0) return BadUrl(url, "the port must be 1..65535");
  }
  auto db = DbOfPath(url, u.encoded_path());
  if (!db.ok()) return db.status();
  out.db = *db;
  return out;
}

std::string_view ReplyView::str() const {
  switch (r_->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      return std::string_view(r_->str, r_->len);
    default:
      return {};
  }
}

absl::Status ErrorReplyStatus(ReplyView reply) {
  if (!reply.is_error()) return absl::OkStatus();
  const std::string message = Cat("redis error reply: ", reply.str());
  for (std::string_view prefix : kUnavailablePrefixes) {
    if (reply.str().starts_with(prefix)) return absl::UnavailableError(message);
  }
  if (reply.str().starts_with("OOM")) return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}

absl::StatusOr<RedisConnection> RedisConnection::Connect(std::string_view host, int port,
                                                         absl::Duration connect_timeout,
                                                         absl::Duration command_timeout) {
  const std::string where = Cat(host, ":", port);
  redisContext* c =
      redisConnectWithTimeout(std::string(host).c_str(), port, absl::ToTimeval(connect_timeout));
  if (c == nullptr) return absl::UnavailableError("redis connect " + where + ": out of memory");
  RedisConnection conn(c, command_timeout, 0);
  if (c->err) return conn.TransportError("redis connect " + where);
  if (absl::Status s = conn.SetCommandTimeout(); !s.ok()) return s;
  return conn;
}

absl::StatusOr<RedisConnection> RedisConnection::Connect(const RedisEndpoint& endpoint,
                                                         absl::Duration connect_timeout,
                                                         absl::Duration command_timeout) {
  auto conn = Connect(endpoint.host, endpoint.port, connect_timeout, command_timeout);
  if (!conn.ok()) return conn.status();
  if (absl::Status s = conn->Select(endpoint.db); !s.ok()) return s;
  return conn;
}

RedisConnection::RedisConnection(redisContext* context, absl::Duration command_timeout, int db)
    : context_(context), command_timeout_(command_timeout), db_(db) {}

RedisConnection::RedisConnection(RedisConnection&& other) noexcept
    : context_(std::exchange(other.context_, nullptr)),
      command_timeout_(other.command_timeout_),
      db_(other.db_) {}

RedisConnection& RedisConnection::operator=(RedisConnection&& other) noexcept {
  if (this != &other) {
    if (context_ != nullptr) redisFree(context_);
    context_ = std::exchange(other.context_, nullptr);
    command_timeout_ = other.command_timeout_;
    db_ = other.db_;
  }
  return *this;
}

RedisConnection::~RedisConnection() {
  if (context_ != nullptr) redisFree(context_);
}

bool RedisConnection::broken() const { return context_ == nullptr || context_->err != 0; }

absl::Status RedisConnection::TransportError(std::string_view what) const {
  const char* detail = context_ == nullptr ? "no connection" : context_->errstr;
  return absl::UnavailableError(Cat(what, ": ", detail));
}

absl::Status RedisConnection::SetCommandTimeout() {
  if (redisSetTimeout(context_, absl::ToTimeval(command_timeout_)) != REDIS_OK)
    return TransportError("redis set command timeout");
  return absl::OkStatus();
}

absl::Status RedisConnection::Select(int db) {
  db_ = db;
  if (db == 0) return absl::OkStatus();
  const std::string number = std::to_string(db);
  auto reply = Command({"SELECT", number});
  if (!reply.ok()) return reply.status();
  return ErrorReplyStatus(**reply);
}

absl::Status RedisConnection::Reconnect() {
  if (context_ == nullptr) return TransportError("redis reconnect");
  if (redisReconnect(context_) != REDIS_OK) return TransportError("redis reconnect");
  if (absl::Status s = SetCommandTimeout(); !s.ok()) return s;
  return Select(db_);
}

absl::StatusOr<RedisReply> RedisConnection::Command(std::span<const std::string_view> argv) {
  if (broken()) return TransportError("redis command on a broken connection");
  std::vector<const char*> data;
  std::vector<size_t> sizes;
  data.reserve(argv.size());
  sizes.reserve(argv.size());
  for (std::string_view arg : argv) {
    data.push_back(arg.data());
    sizes.push_back(arg.size());
  }
  void* raw = redisCommandArgv(context_, static_cast<int>(argv.size()), data.data(), sizes.data());
  if (raw == nullptr) {
    return TransportError(Cat("redis ", argv.empty() ? "" : argv[0]));
  }
  return RedisReply(static_cast<redisReply*>(raw));
}

absl::StatusOr<std::string> RedisConnection::LoadScript(std::string_view body) {
  auto reply = Command({"SCRIPT", "LOAD", body});
  if (!reply.ok()) return reply.status();
  if (absl::Status s = ErrorReplyStatus(**reply); !s.ok()) return s;
  if ((*reply)->type() != REDIS_REPLY_STRING)
    return absl::InternalError("redis SCRIPT LOAD: the reply is not a string");
  return std::string((*reply)->str());
}

bool RedisConnection::Stale() const {
  if (broken()) return true;
  pollfd p{context_->fd, POLLIN | POLLRDHUP, 0};
  return poll(&p, 1, 0) != 0;
}

absl::StatusOr<std::vector<RedisReply>> RedisConnection::Pipeline(
    std::span<const std::vector<std::string_view>> commands) {
  if (broken()) return TransportError("redis pipeline on a broken connection");
  std::vector<const char*> data;
  std::vector<size_t> sizes;
  for (const std::vector<std::string_view>& argv : commands) {
    data.clear();
    sizes.clear();
    for (std::string_view arg : argv) {
      data.push_back(arg.data());
      sizes.push_back(arg.size());
    }
    if (redisAppendCommandArgv(context_, static_cast<int>(argv.size()), data.data(),
                               sizes.data()) != REDIS_OK) {
      return TransportError("redis pipeline append");
    }
  }
  std::vector<RedisReply> replies;
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) {
      return TransportError("redis pipeline reply");
    }
    replies.emplace_back(static_cast<redisReply*>(raw));
  }
  return replies;
}

absl::StatusOr<RedisReply> RedisConnection::EvalSha(std::string_view sha, std::string_view body,
                                                    std::span<const std::string_view> keys,
                                                    std::span<const std::string_view> args) {
  const std::string numkeys = std::to_string(keys.size());
  std::vector<std::string_view> argv = {"EVALSHA", sha, numkeys};
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  auto reply = Command(argv);
  if (!reply.ok() || !(*reply)->is_error() || !(*reply)->str().starts_with("NOSCRIPT"))
    return reply;
  auto loaded = LoadScript(body);
  if (!loaded.ok()) return loaded.status();
  if (*loaded != sha) {
    return absl::InternalError(
        Cat("redis EVALSHA: the script body hashes to ", *loaded, ", not ", sha));
  }
  return Command(argv);
}

}  // namespace quotum::store::redis
