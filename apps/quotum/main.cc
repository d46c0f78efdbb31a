// quotum: the composition root. Reads config, picks the store, wires the
// engine to the HTTP API, and runs until SIGTERM/SIGINT.
#include <signal.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#ifdef QUOTUM_WITH_TCMALLOC
#include <gperftools/malloc_extension_c.h>
#endif
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "huge_page_heap.h"
#include "quotum/config/config.h"
#include "quotum/core/clock.h"
#include "quotum/core/string_views.h"
#include "quotum/engine/api_keys.h"
#include "quotum/engine/engine.h"
#include "quotum/engine/message_releaser.h"
#include "quotum/http/api.h"
#include "quotum/http/fd_limit.h"
#include "quotum/http/server.h"
#include "quotum/notify/curl_transport.h"
#include "quotum/notify/http_provider.h"
#include "quotum/report/usage_statement.h"
#include "quotum/store/migrate/sqlite_to_postgres.h"
#include "quotum/store/postgres/migrations.h"
#include "quotum/store/postgres/pg_store.h"
#include "quotum/store/redis/redis_facts_stream.h"
#include "quotum/store/redis/redis_ledger.h"
#include "quotum/store/sqlite/sqlite_store.h"

namespace {

struct ServeFlags {
  std::string config;
  std::string listen;
  std::string data_dir;
  std::string admin_key;
  std::string redis_url;
  std::string postgres_url;
};

// The start-up snapshot is transient: give its pages back to the OS.
void ReleaseStartupMemory() {
#ifdef QUOTUM_WITH_TCMALLOC
  MallocExtension_ReleaseFreeMemory();
#endif
}

int Fail(std::string_view message) {
  std::cerr << "quotum: " << message << std::endl;
  return 2;
}

// "HOST:PORT" or "[V6]:PORT".
bool SplitHostPort(const std::string& s, std::string* host, uint16_t* port) {
  size_t colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  *host = s.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']')
    *host = host->substr(1, host->size() - 2);
  uint32_t p = 0;
  if (!absl::SimpleAtoi(s.substr(colon + 1), &p) || p > 65535 || host->empty()) return false;
  *port = static_cast<uint16_t>(p);
  return true;
}

// The admin key: flag, then QUOTUM_ADMIN_KEY, then <data_dir>/admin.key
// (generated once, mode 0600).
std::string ResolveAdminKey(const ServeFlags& f, const std::string& data_dir) {
  if (!f.admin_key.empty()) return f.admin_key;
  if (const char* env = std::getenv("QUOTUM_ADMIN_KEY"); env && *env) return env;
  std::string path = data_dir + "/admin.key";
  std::ifstream in(path);
  std::string key;
  if (in && std::getline(in, key) && !key.empty()) return key;
  key = absl::StrCat("qa_", quotum::engine::RandomHex(24));
  {
    std::ofstream out(path, std::ios::trunc);
    out << key << "\n";
  }
  chmod(path.c_str(), 0600);
  std::cerr << "quotum: no admin key given; generated one in " << path << std::endl;
  return key;
}

// Scale-out mode: the shared ledger on the configured Redis; null (and OK)
// in embedded mode.
absl::StatusOr<std::unique_ptr<quotum::store::redis::RedisLedger>> OpenSharedLedger(
    const quotum::config::Config& cfg) {
  if (cfg.storage.redis_url.empty()) return nullptr;
  auto endpoint = quotum::store::redis::ParseRedisUrl(cfg.storage.redis_url);
  if (!endpoint.ok()) return endpoint.status();
  quotum::store::redis::RedisLedgerOptions o;
  o.client.endpoint = *endpoint;
  o.client.command_timeout = absl::Milliseconds(cfg.storage.redis_timeout_ms);
  o.pool_size = static_cast<size_t>(cfg.storage.redis_pool_size);
  o.idempotency_ttl = cfg.idempotency_ttl;
  auto ledger = quotum::store::redis::RedisLedger::Connect(o);
  if (!ledger.ok()) {
    return absl::Status(ledger.status().code(),
                        absl::StrCat("cannot reach Redis at ", cfg.storage.redis_url, ": ",
                                     ledger.status().message()));
  }
  std::cerr << "quotum: scale-out mode, decisions in Redis at " << cfg.storage.redis_url
            << std::endl;
  return ledger;
}

// The cold store: PostgreSQL when a URL is configured (migrated at open,
// under an advisory lock), else the embedded SQLite file in data_dir.
absl::StatusOr<std::unique_ptr<quotum::engine::Store>> OpenColdStore(
    const quotum::config::Config& cfg) {
  if (!cfg.storage.postgres_url.empty()) {
    auto pg = quotum::store::postgres::PgStore::Open({cfg.storage.postgres_url});
    if (!pg.ok()) return pg.status();
    std::cerr << "quotum: cold store in PostgreSQL" << std::endl;
    return std::unique_ptr<quotum::engine::Store>(std::move(*pg));
  }
  auto sqlite = quotum::store::sqlite::SqliteStore::Open(
      {cfg.data_dir + "/" + quotum::store::sqlite::kDatabaseFileName,
       cfg.durability == quotum::config::Durability::kFsync});
  if (!sqlite.ok()) return sqlite.status();
  return std::unique_ptr<quotum::engine::Store>(std::move(*sqlite));
}

struct MigrateFlags {
  std::string postgres_url;
  std::string from_sqlite;  ///< an embedded deployment's data dir, or ""
};

// `quotum migrate`: the PostgreSQL schema; with --from-sqlite, also the data
// of an embedded deployment (store/migrate/sqlite_to_postgres.h).
// The engine's options that come from the config alone.
quotum::engine::EngineOptions EngineOptionsOf(const quotum::config::Config& cfg) {
  quotum::engine::EngineOptions o;
  o.catalog = &cfg.catalog;
  o.idempotency_ttl = cfg.idempotency_ttl;
  o.late_event_grace = cfg.late_event_grace;
  o.default_plan = cfg.default_plan;
  o.rate_rules = cfg.rate_rules;
  o.session_lease_ttl = cfg.session_lease_ttl;
  o.fail_open = cfg.storage.fail_open;
  o.facts_drain.sweep_every = absl::Seconds(cfg.storage.facts_sweep_seconds);
  o.max_webhooks_per_tenant = static_cast<size_t>(cfg.webhooks.max_per_tenant);
  o.forecast_every = absl::Seconds(cfg.webhooks.forecast_check_seconds);
  o.reconcile_flag_percent = cfg.reconcile.flag_percent;
  o.delivery_policy = {cfg.delivery.max_attempts, absl::Milliseconds(cfg.delivery.retry_base_ms),
                       absl::Milliseconds(cfg.delivery.retry_cap_ms),
                       cfg.delivery.give_back == "always" ? quotum::engine::GiveBackPolicy::kAlways
                       : cfg.delivery.give_back == "refused"
                           ? quotum::engine::GiveBackPolicy::kRefused
                           : quotum::engine::GiveBackPolicy::kNever};
  return o;
}

// [delivery]: the http provider, or null for the log provider.
std::unique_ptr<quotum::engine::DeliveryProvider> DeliveryProviderOf(
    const quotum::config::Config& cfg) {
  if (cfg.delivery.provider != "http") return nullptr;
  quotum::notify::HttpProviderOptions o;
  o.url = cfg.delivery.url;
  o.token = cfg.delivery.token;
  o.timeout = absl::Milliseconds(cfg.delivery.timeout_ms);
  return std::make_unique<quotum::notify::HttpProvider>(o);
}

int RunMigrate(const MigrateFlags& flags) {
  if (flags.from_sqlite.empty()) {
    auto done = quotum::store::postgres::Migrate(flags.postgres_url);
    if (!done.ok()) return Fail(quotum::ToStd(done.status().message()));
    std::cout << "schema version " << done->from_version << " -> " << done->to_version << std::endl;
    return 0;
  }
  quotum::store::migrate::SqliteToPostgresOptions options;
  options.data_dir = flags.from_sqlite;
  options.postgres_url = flags.postgres_url;
  auto counts = quotum::store::migrate::CopySqliteToPostgres(options);
  if (!counts.ok()) return Fail(quotum::ToStd(counts.status().message()));
  std::cout << "copied " << flags.from_sqlite
            << " into PostgreSQL: " << quotum::store::migrate::FormatCounts(*counts) << std::endl;
  return 0;
}

// The HTTP server's limits from `cfg`, the open-file limit raised first.
void FillServerOptions(const quotum::config::Config& cfg, quotum::http::ServerOptions& o) {
  o.threads = cfg.io_threads;
  o.max_body_bytes = cfg.max_body_bytes;
  const quotum::http::FileLimit files = quotum::http::RaiseOpenFileLimit();
  o.max_connections = cfg.max_connections > 0 ? cfg.max_connections
                                              : quotum::http::DefaultMaxConnections(files.soft);
  o.idle_timeout = cfg.idle_timeout;
  o.header_timeout = cfg.header_timeout;
  std::cerr << "quotum: open-file limit " << files.soft_before << " -> " << files.soft << " (hard "
            << files.hard << "); max_connections " << o.max_connections << std::endl;
}

quotum::notify::SendOptions WebhookSendOptions(const quotum::config::Config& cfg) {
  quotum::notify::SendOptions o;
  o.timeout = absl::Milliseconds(cfg.webhooks.timeout_ms);
  o.connect_timeout = std::min(o.connect_timeout, o.timeout);
  o.policy.allow_hosts = cfg.webhooks.allow_hosts;
  return o;
}

quotum::engine::RelayOptions RelayOptionsOf(const quotum::config::Config& cfg,
                                            const std::string& instance_name) {
  quotum::engine::RelayOptions o;
  o.max_attempts = cfg.webhooks.max_attempts;
  o.retry_base = absl::Milliseconds(cfg.webhooks.retry_base_ms);
  o.instance_name = instance_name;
  o.reconcile_at = absl::Minutes(cfg.reconcile.at_minutes);
  return o;
}

// Scale-out: this instance's reader of the facts stream; null embedded.
std::unique_ptr<quotum::store::redis::RedisFactsStream> FactsStreamOf(
    const quotum::store::redis::RedisLedger* ledger, const std::string& instance_name) {
  if (!ledger) return nullptr;
  return std::make_unique<quotum::store::redis::RedisFactsStream>(ledger->client_options(),
                                                                  instance_name);
}

quotum::engine::ReleaserOptions ReleaserOptionsOf(const quotum::config::Config& cfg,
                                                  const std::string& instance_name,
                                                  bool scale_out) {
  quotum::engine::ReleaserOptions o;
  o.instance_name = instance_name;
  // Scale-out, the queue's lease outlasts one hand-off (the http provider's
  // timeout); embedded, one process holds the data directory anyway.
  o.lease_ttl =
      scale_out ? absl::Milliseconds(cfg.delivery.timeout_ms) + absl::Seconds(5) : absl::Seconds(5);
  return o;
}

// Embedded mode with `journal = true` and durability "process": one journal
// per I/O thread in the data dir (engine/journal.h). None in scale-out, and
// none in "fsync" mode: an I/O thread waiting on its own fdatasync reads no
// requests meanwhile, and measured 0.8x the group commit's rate
// (docs/performance.md, "Journals").
quotum::engine::JournalOptions JournalOptionsOf(const quotum::config::Config& cfg, bool scale_out) {
  quotum::engine::JournalOptions o;
  if (!cfg.journal || scale_out || cfg.durability == quotum::config::Durability::kFsync) return o;
  o.dir = cfg.data_dir;
  o.count = static_cast<size_t>(cfg.io_threads);
  return o;
}

// Each I/O thread binds its journal as it starts, and flushes it as it ends.
void BindJournalsToIoThreads(quotum::engine::Engine& engine, quotum::http::ServerOptions& o) {
  o.on_thread_start = [&engine](int index, quotum::engine::Journal::Post post) {
    engine.BindJournal(static_cast<size_t>(index), std::move(post));
  };
  o.on_thread_exit = [&engine] { engine.UnbindJournal(); };
}

// SIGTERM and SIGINT, blocked in the calling thread: Serve takes them
// synchronously (sigwait). Called before any thread starts, so every thread
// inherits the mask, and a signal sent before Serve waits stays pending
// instead of killing the process from a thread that does not block it.
sigset_t BlockShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

// The config file with the command line's overrides.
absl::StatusOr<std::shared_ptr<quotum::config::Config>> ServeConfig(const ServeFlags& flags) {
  auto loaded = quotum::config::LoadFile(flags.config);
  if (!loaded.ok()) return loaded.status();
  auto cfg = std::make_shared<quotum::config::Config>(**loaded);
  if (!flags.listen.empty()) cfg->listen = flags.listen;
  if (!flags.data_dir.empty()) cfg->data_dir = flags.data_dir;
  if (!flags.redis_url.empty()) cfg->storage.redis_url = flags.redis_url;
  if (!flags.postgres_url.empty()) cfg->storage.postgres_url = flags.postgres_url;
  return cfg;
}

// Checks the webhook policy, creates the data dir and resolves the admin key.
absl::StatusOr<std::string> PrepareServe(const ServeFlags& flags,
                                         const quotum::config::Config& cfg) {
  if (absl::Status s = quotum::notify::CheckTargetPolicy({cfg.webhooks.allow_hosts}); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(cfg.source_path, ": [webhooks] allow_hosts: ", s.message()));
  }
  std::error_code ec;
  std::filesystem::create_directories(cfg.data_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create data dir ", cfg.data_dir, ": ", ec.message()));
  }
  return ResolveAdminKey(flags, cfg.data_dir);
}

int Serve(const ServeFlags& flags) {
  sigset_t set = BlockShutdownSignals();
  // A file-size limit (RLIMIT_FSIZE) makes a write fail with EFBIG, which the
  // journal and the store answer like a full disk, instead of killing us.
  signal(SIGXFSZ, SIG_IGN);
  auto loaded = ServeConfig(flags);
  if (!loaded.ok()) return Fail(quotum::ToStd(loaded.status().message()));
  std::shared_ptr<quotum::config::Config> cfg = *std::move(loaded);

  quotum::http::ServerOptions server_opts;
  if (!SplitHostPort(cfg->listen, &server_opts.host, &server_opts.port)) {
    return Fail(absl::StrCat("--listen \"", cfg->listen, "\" must be HOST:PORT"));
  }
  FillServerOptions(*cfg, server_opts);

  absl::StatusOr<std::string> admin_key = PrepareServe(flags, *cfg);
  if (!admin_key.ok()) return Fail(quotum::ToStd(admin_key.status().message()));
  auto store = OpenColdStore(*cfg);
  if (!store.ok()) return Fail(quotum::ToStd(store.status().message()));

  auto shared_ledger = OpenSharedLedger(*cfg);
  if (!shared_ledger.ok()) return Fail(quotum::ToStd(shared_ledger.status().message()));

  const std::string instance_name = quotum::store::redis::RedisFactsStream::UniqueConsumerName();
  auto facts_stream = FactsStreamOf(shared_ledger->get(), instance_name);

  quotum::SystemClock clock;
  quotum::engine::EngineOptions eopts = EngineOptionsOf(*cfg);
  eopts.shared_ledger = shared_ledger->get();
  eopts.facts_stream = facts_stream.get();
  eopts.instance_name = instance_name;
  std::unique_ptr<quotum::engine::DeliveryProvider> provider = DeliveryProviderOf(*cfg);
  eopts.delivery = provider.get();
  eopts.journal = JournalOptionsOf(*cfg, /*scale_out=*/*shared_ledger != nullptr);
  quotum::engine::Engine engine(eopts, store->get(), &clock);
  if (absl::Status s = engine.Start(); !s.ok()) return Fail(quotum::ToStd(s.message()));
  ReleaseStartupMemory();
  quotum::notify::CurlTransport transport(
      WebhookSendOptions(*cfg),
      quotum::notify::SmtpOptions{cfg->email.smtp_url, cfg->email.starttls, cfg->email.user,
                                  cfg->email.password, cfg->email.from});
  quotum::engine::OutboxRelay relay(store->get(), &engine, &transport, &clock,
                                    RelayOptionsOf(*cfg, instance_name));
  relay.Start();
  quotum::engine::MessageReleaser releaser(
      store->get(), &engine, &clock,
      ReleaserOptionsOf(*cfg, instance_name, /*scale_out=*/*shared_ledger != nullptr));
  releaser.Start();

  quotum::http::Api api(&engine,
                        {*admin_key, cfg->webhooks.allow_hosts, !cfg->email.smtp_url.empty()});
  BindJournalsToIoThreads(engine, server_opts);
  quotum::http::Server server(
      server_opts, [&api](const quotum::http::Request& req, quotum::http::Respond respond) {
        api.Handle(req, std::move(respond));
      });
  auto bound = server.Listen();
  if (!bound.ok()) return Fail(quotum::ToStd(bound.status().message()));

  server.Run();
  std::cout << "listening on " << *bound << std::endl;

  int sig = 0;
  sigwait(&set, &sig);
  std::cerr << "quotum: signal " << sig << ", draining" << std::endl;
  api.BeginDrain();
  server.Shutdown(cfg->drain_timeout);
  api.StopPools();  // a read still running past the drain ends before the engine stops
  releaser.Stop();
  relay.Stop();
  engine.Stop();
  quotum::report::ReleaseStatementCaches();
  std::cerr << "quotum: stopped cleanly" << std::endl;
  return 0;
}

std::string_view AccessName(quotum::http::Access a) {
  switch (a) {
    case quotum::http::Access::kPublic:
      return "public";
    case quotum::http::Access::kTenant:
      return "tenant";
    case quotum::http::Access::kTenantDecides:
      return "tenant_decides";
    case quotum::http::Access::kAdmin:
      return "admin";
  }
  return "unknown";
}

// One line per route: METHOD PATTERN ACCESS.
int PrintRoutes() {
  const quotum::http::Api api(nullptr, {});
  for (const auto& r : api.Routes()) {
    std::cout << boost::beast::http::to_string(r.method) << ' ' << r.pattern << ' '
              << AccessName(r.access) << '\n';
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  quotum::UseHugePagesForHeap();
  CLI::App app{"Quotum: usage metering, plan limits and rate limits for messaging platforms"};
  app.require_subcommand(1);
  ServeFlags flags;
  CLI::App* serve = app.add_subcommand("serve", "Run the HTTP server");
  serve->add_option("--config", flags.config, "TOML config file")->required();
  serve->add_option("--listen", flags.listen, "HOST:PORT to listen on (port 0 picks one)");
  serve->add_option("--data-dir", flags.data_dir, "Directory for the embedded database");
  serve->add_option("--admin-key", flags.admin_key, "Admin key (or QUOTUM_ADMIN_KEY)");
  serve->add_option("--redis-url", flags.redis_url,
                    "redis://HOST[:PORT][/DB]: decide in this Redis, shared by every instance "
                    "(scale-out mode; [storage] redis_url)");
  serve->add_option("--postgres-url", flags.postgres_url,
                    "postgresql://USER@HOST:PORT/DB: the cold store in PostgreSQL, shared by "
                    "every instance ([storage] postgres_url)");
  MigrateFlags migrate_flags;
  CLI::App* migrate = app.add_subcommand(
      "migrate",
      "Apply the PostgreSQL schema migrations and exit; with --from-sqlite, also copy an "
      "embedded deployment's data into PostgreSQL");
  migrate
      ->add_option("--postgres-url", migrate_flags.postgres_url, "postgresql://USER@HOST:PORT/DB")
      ->required();
  migrate->add_option("--from-sqlite", migrate_flags.from_sqlite,
                      "DIR: the data dir of a stopped embedded server; copies its quotum.db "
                      "(opened read-only) into the empty PostgreSQL database in one transaction");
  CLI::App* routes = app.add_subcommand("routes", "Print every HTTP route: METHOD PATTERN ACCESS");
  CLI11_PARSE(app, argc, argv);
  if (serve->parsed()) return Serve(flags);
  if (routes->parsed()) return PrintRoutes();
  if (migrate->parsed()) return RunMigrate(migrate_flags);
  return 2;
}
