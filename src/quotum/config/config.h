#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "quotum/core/catalog.h"
#include "quotum/ratelimit/rules.h"

namespace quotum::config {

enum class Durability {
  kProcess,  ///< commit reaches the OS before the response (survives kill -9)
  kFsync,    ///< each group commit is fsynced before its responses (survives power loss)
};

/// Where state lives beyond the embedded default ([storage]; see docs/scale-out.md).
struct Storage {
  /// redis://HOST[:PORT][/DB]: metering decisions run in this Redis, shared
  /// by every instance. Empty = embedded (in-memory decisions).
  std::string redis_url;
  /// A decision Redis has not answered within this is a 503.
  int redis_timeout_ms = 500;
  /// Redis connections per instance.
  int redis_pool_size = 8;
  /// While Redis is unavailable: false (default, "fail_closed") refuses
  /// metering with 503; true ("fail_open") admits it unchecked, records it
  /// in the cold store and reconciles it into Redis once Redis is back.
  bool fail_open = false;
  /// How often one instance sweeps every tenant's facts stream and
  /// reconciles fail-open charges (docs/scale-out.md).
  int facts_sweep_seconds = 10;
  /// postgresql://USER@HOST:PORT/DB: the cold store (tenants, keys, rollups,
  /// events) in PostgreSQL, shared by every instance. Empty = SQLite in data_dir.
  std::string postgres_url;
};

/// Webhook delivery ([webhooks]; docs/alerts.md).
struct Webhooks {
  /// Host names, IP literals or CIDRs a webhook may target although they are
  /// loopback or private (refused by default: a tenant must not reach the
  /// operator's internal network through Quotum).
  std::vector<std::string> allow_hosts;
  int max_per_tenant = 10;
  /// Attempts before a delivery is dead (an admin can send it again).
  int max_attempts = 8;
  /// The first retry waits up to this; each next one up to twice as long (1 h at most).
  int retry_base_ms = 1000;
  /// One attempt's whole time (connect included).
  int timeout_ms = 5000;
  /// How often the forecasts are checked for usage.forecast_exceeds_limit.
  int forecast_check_seconds = 600;
};

/// Alert e-mail through the operator's SMTP server ([email]; docs/alerts.md).
/// Tenants get e-mail by registering a webhook whose url is mailto:ADDRESS.
/// Who sends released messages ([delivery]; docs/api.md "Delivery").
struct Delivery {
  std::string provider = "log";  ///< "log" or "http"
  std::string url;               ///< http: the upstream (required)
  std::string token;             ///< http: sent as a Bearer token when set
  int timeout_ms = 10000;        ///< http: one attempt's whole time
  int max_attempts = 6;          ///< then the message is failed
  int retry_base_ms = 1000;      ///< the first retry waits up to this, then doubling
  int retry_cap_ms = 300000;     ///< no retry waits longer (unless Retry-After says so)
  /// Which failed messages get their charge back: "never", "refused" (the
  /// upstream refused them) or "always".
  std::string give_back = "never";
};

struct Email {
  std::string smtp_url;   ///< smtp://HOST[:PORT] or smtps://HOST[:PORT]; empty = off
  bool starttls = false;  ///< require STARTTLS on smtp://
  std::string user, password;
  std::string from;  ///< required when smtp_url is set
};

/// The nightly sync of the hot counters into the aggregates and the drift
/// report ([reconcile]; docs/reconcile.md).
struct Reconcile {
  /// When the sync runs: minutes after midnight UTC ("HH:MM" in the file).
  int at_minutes = 0;
  /// GET /admin/reconcile flags a drift above this percentage.
  int flag_percent = 5;
};

/// Everything `quotum serve` needs, validated. Immutable once loaded.
struct Config {
  std::string source_path;
  std::string listen = "127.0.0.1:8080";
  std::string data_dir = "./data";
  Durability durability = Durability::kProcess;
  /// Embedded mode with durability "process": each I/O thread acknowledges
  /// a metering decision once its effects are in that thread's journal file
  /// (journal-*.qj in data_dir), and the store takes them in the background.
  /// False (and in "fsync" mode): every decision waits for the store's group
  /// commit.
  bool journal = true;
  uint64_t max_body_bytes = 1 << 20;
  int io_threads = 2;
  /// Open connections at most; 0 derives it from the open-file limit
  /// (http::DefaultMaxConnections).
  int max_connections = 0;
  /// A keep-alive connection with no request for this long is closed.
  std::chrono::seconds idle_timeout{30};
  /// A request's line and headers must arrive within this long (from the
  /// connection's start, or from the request's first byte on a kept-alive one),
  /// and a body may not stall for longer.
  std::chrono::seconds header_timeout{10};
  /// On SIGTERM, how long requests already begun get to finish.
  std::chrono::seconds drain_timeout{10};
  /// How long an Idempotency-Key is remembered.
  absl::Duration idempotency_ttl = absl::Hours(24);
  /// How long after a billing period ends an event timestamped in it is
  /// still counted in it (a late event); 0 refuses every late event.
  absl::Duration late_event_grace = absl::Hours(1);
  /// Plan given to tenants created without one.
  std::string default_plan;
  /// A working session that sends no heartbeat for this long stops counting.
  absl::Duration session_lease_ttl = absl::Minutes(5);
  /// Algorithm, window and shadow flag per rate-limit category.
  ratelimit::RuleSet rate_rules = ratelimit::RuleSet::Defaults();
  Storage storage;
  Webhooks webhooks;
  Delivery delivery;
  Email email;
  Reconcile reconcile;
  Catalog catalog;
};

/// Reads and validates a TOML file. Errors name the file, the line and the key.
absl::StatusOr<std::shared_ptr<const Config>> LoadFile(const std::string& path);

/// Same as LoadFile, for text already in memory (`origin` names it in errors).
absl::StatusOr<std::shared_ptr<const Config>> LoadString(std::string_view text,
                                                         const std::string& origin);

}  // namespace quotum::config
