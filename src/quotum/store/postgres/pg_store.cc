#include "quotum/store/postgres/pg_store.h"

#include <limits>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "quotum/base/status_macros.h"
#include "quotum/core/billing_period.h"
#include "quotum/engine/decision_codec.h"
#include "quotum/engine/events.h"
#include "quotum/store/column_values.h"
#include "quotum/store/message_columns.h"
#include "quotum/store/postgres/migrations.h"
#include "quotum/store/postgres/pg_commit.h"
#include "quotum/store/reservation_rows.h"

namespace quotum::store::postgres {
namespace {

using engine::SnapshotSink;

PgParam SecsParam(absl::Time t) { return IntParam(Secs(t)); }

// ---- Rows of the start-up stream, in the column order of the queries below.

engine::TenantRecord TenantFrom(const PgRow& r) {
  return {r.Text(0), r.Text(1), r.Text(2), FromSecs(r.Int(3)), FromSecs(r.Int(4))};
}

engine::ApiKeyRecord KeyFrom(const PgRow& r) {
  return {r.Text(0), r.Text(1), r.Bytea(2), FromSecs(r.Int(3)), !r.IsNull(4)};
}

engine::IdempotencyRecord IdempotencyFrom(const PgRow& r) {
  engine::IdempotencyRecord rec;
  rec.tenant_id = r.Text(0);
  rec.key = r.Text(1);
  rec.fingerprint = AsUnsigned(r.Int(2));
  rec.created_at = FromSecs(r.Int(3));
  engine::Decision& d = rec.decision;
  d.allowed = r.Bool(4);
  d.requested = AsUnsigned(r.Int(5));
  d.consumed = AsUnsigned(r.Int(6));
  d.remaining = AsUnsigned(r.Int(7));
  if (!r.IsNull(8)) d.limit = AsUnsigned(r.Int(8));
  d.overage = AsUnsigned(r.Int(9));
  d.period_start = FromSecs(r.Int(10));
  d.reset_at = FromSecs(r.Int(11));
  d.late = d.reset_at <= rec.created_at;  // only a late event's period had ended
  d.meter = r.Text(12);
  d.reason = static_cast<engine::DenyReason>(r.Int(13));
  if (!r.IsNull(14)) engine::DecodeDecisionExtras(r.Text(14), d);
  return rec;
}

engine::KeyRateLimitsRecord KeyRateLimitsFrom(const PgRow& r) {
  engine::KeyRateLimitsRecord rec{r.Text(0), {}};
  if (!r.IsNull(1)) rec.limits.general = static_cast<uint32_t>(r.Int(1));
  if (!r.IsNull(2)) rec.limits.messages = static_cast<uint32_t>(r.Int(2));
  if (!r.IsNull(3)) rec.limits.sessions = static_cast<uint32_t>(r.Int(3));
  return rec;
}

// Streams every row of `sql` to `fn`, which takes a record it may move from.
template <typename Fn>
absl::Status Each(PgConnection& conn, const char* sql, const PgParams& params, Fn fn) {
  return conn.ForEachRow(sql, params, [&](const PgRow& r) -> absl::Status {
    if constexpr (std::is_void_v<decltype(fn(r))>) {
      fn(r);
      return absl::OkStatus();
    } else {
      return fn(r);
    }
  });
}

// Sizes, tenants (creation order), keys (creation order), overrides.
absl::Status StreamTenantsAndKeys(PgConnection& conn, SnapshotSink& sink) {
  auto sizes = conn.Exec("SELECT (SELECT COUNT(*) FROM tenants), (SELECT COUNT(*) FROM api_keys)");
  if (!sizes.ok()) return sizes.status();
  sink.Sizes(static_cast<size_t>(sizes->row(0).Int(0)), static_cast<size_t>(sizes->row(0).Int(1)));
  RETURN_IF_ERROR(
      Each(conn, "SELECT id,name,plan,subscription_start,created_at FROM tenants ORDER BY seq", {},
           [&](const PgRow& r) {
             engine::TenantRecord rec = TenantFrom(r);
             return sink.Tenant(rec);
           }));
  sink.TenantsLoaded();
  RETURN_IF_ERROR(
      Each(conn, "SELECT key_id,tenant_id,hash,created_at,revoked_at FROM api_keys ORDER BY seq",
           {}, [&](const PgRow& r) {
             engine::ApiKeyRecord rec = KeyFrom(r);
             sink.Key(rec);
           }));
  return Each(conn, "SELECT tenant_id,meter,limit_value FROM tenant_limits ORDER BY 1,2", {},
              [&](const PgRow& r) {
                engine::LimitOverride rec{r.Text(0), r.Text(1), AsUnsigned(r.Int(2))};
                sink.Override(rec);
              });
}

// Counters (a tenant's rows together, in id order) and the idempotency
// records created at or after `since`.
absl::Status StreamCountersAndIdempotency(PgConnection& conn, absl::Time since,
                                          SnapshotSink& sink) {
  RETURN_IF_ERROR(
      Each(conn, "SELECT tenant_id,meter,period_start,value FROM counters ORDER BY 1,2,3", {},
           [&](const PgRow& r) {
             engine::CounterRow rec{r.Text(0), r.Text(1), FromSecs(r.Int(2)), AsUnsigned(r.Int(3))};
             sink.Counter(rec);
           }));
  return Each(conn,
              "SELECT tenant_id,key,fingerprint,created_at,allowed,requested,consumed,remaining,"
              "limit_value,overage,period_start,reset_at,meter,reason,extra FROM idempotency "
              "WHERE created_at>=$1 ORDER BY 1,2",
              {SecsParam(since)}, [&](const PgRow& r) {
                engine::IdempotencyRecord rec = IdempotencyFrom(r);
                sink.Idempotency(rec);
              });
}

// Sessions, groups, key rate limits and gauges, each in tenant id order
// (sent one after the other: the sink's two groups interleaved, each in its
// own order).
absl::Status StreamLeasesAndGauges(PgConnection& conn, SnapshotSink& sink) {
  RETURN_IF_ERROR(Each(conn,
                       absl::StrCat(store::kSessionColumns, " FROM sessions ORDER BY 1,2").c_str(),
                       {}, [&](const PgRow& r) {
                         engine::SessionRecord rec = store::SessionOfRow(r);
                         sink.Session(rec);
                       }));
  RETURN_IF_ERROR(
      Each(conn, "SELECT tenant_id,id,name,created_at FROM groups_monitored ORDER BY 1,2", {},
           [&](const PgRow& r) {
             engine::GroupRecord rec{r.Text(0), r.Text(1), r.Text(2), FromSecs(r.Int(3))};
             sink.Group(rec);
           }));
  RETURN_IF_ERROR(Each(conn,
                       "SELECT key_id,general,messages,sessions FROM key_rate_limits ORDER BY 1",
                       {}, [&](const PgRow& r) {
                         engine::KeyRateLimitsRecord rec = KeyRateLimitsFrom(r);
                         sink.KeyRateLimits(rec);
                       }));
  return Each(conn, "SELECT tenant_id,meter,value FROM gauges ORDER BY 1,2", {},
              [&](const PgRow& r) {
                engine::GaugeRecord rec{r.Text(0), r.Text(1), AsUnsigned(r.Int(2))};
                sink.Gauge(rec);
              });
}

// Runs `reads` in one read-only snapshot of the database (REPEATABLE READ),
// so that statements run one after another see one moment: no change
// committed between two of them shows in one and not in the other.
absl::Status InOneSnapshot(PgConnection& conn, absl::FunctionRef<absl::Status()> reads) {
  auto begin = conn.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  if (!begin.ok()) return begin.status();
  absl::Status s = reads();
  if (!s.ok()) {
    if (!conn.broken()) (void)conn.Exec("ROLLBACK");
    return s;
  }
  return conn.Exec("COMMIT").status();
}

// The whole stream from one snapshot of the database, then the purge of
// idempotency records older than `since`.
absl::Status LoadSnapshot(PgConnection& conn, absl::Time since, SnapshotSink& sink) {
  RETURN_IF_ERROR(InOneSnapshot(conn, [&]() -> absl::Status {
    RETURN_IF_ERROR(StreamTenantsAndKeys(conn, sink));
    RETURN_IF_ERROR(StreamCountersAndIdempotency(conn, since, sink));
    RETURN_IF_ERROR(StreamLeasesAndGauges(conn, sink));
    const std::string ordered = absl::StrCat(kSelectReservations, " ORDER BY 1,2");
    return Each(conn, ordered.c_str(), {}, [&](const PgRow& r) {
      engine::ReservationRecord rec = ReservationFromRow(r);
      sink.Reservation(rec);
    });
  }));
  return conn.Exec("DELETE FROM idempotency WHERE created_at<$1", {SecsParam(since)}).status();
}

}  // namespace

// ---- The reader pool.

PgReaderPool::PgReaderPool(std::string conninfo, int size, absl::Duration connect_timeout)
    : conninfo_(std::move(conninfo)), connect_timeout_(connect_timeout), unopened_(size) {}

PgReaderPool::~PgReaderPool() = default;

absl::StatusOr<std::unique_ptr<PgConnection>> PgReaderPool::Acquire() {
  {
    MutexLock lock(&mu_);
    while (idle_.empty() && unopened_ == 0) freed_.Wait(&mu_);
    if (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      return conn;
    }
    --unopened_;
  }
  auto conn = PgConnection::Connect(conninfo_, connect_timeout_);  // without the lock
  if (!conn.ok()) {
    MutexLock lock(&mu_);
    ++unopened_;
    freed_.Signal();
  }
  return conn;
}

void PgReaderPool::Release(std::unique_ptr<PgConnection> conn) {
  MutexLock lock(&mu_);
  idle_.push_back(std::move(conn));
  freed_.Signal();
}

absl::Status PgReaderPool::With(absl::FunctionRef<absl::Status(PgConnection&)> work, bool retry) {
  auto conn = Acquire();
  if (!conn.ok()) return conn.status();
  absl::Status s = (*conn)->EnsureLive();
  if (s.ok()) {
    s = work(**conn);
    if (!s.ok() && retry && (*conn)->broken() && (*conn)->Reconnect().ok()) s = work(**conn);
  }
  Release(std::move(*conn));
  return s;
}

// ---- The store.

PgStore::PgStore(const PgOptions& options)
    : readers_(options.conninfo, options.reader_pool_size, options.connect_timeout) {}

PgStore::~PgStore() = default;

absl::StatusOr<std::unique_ptr<PgStore>> PgStore::Open(const PgOptions& options) {
  if (options.reader_pool_size < 1) {
    return absl::InvalidArgumentError("postgres: reader_pool_size must be at least 1");
  }
  auto writer = PgConnection::Connect(options.conninfo, options.connect_timeout);
  if (!writer.ok()) return writer.status();
  if (auto migrated = Migrate(**writer); !migrated.ok()) return migrated.status();
  std::unique_ptr<PgStore> store(new PgStore(options));
  MutexLock lock(&store->write_mu_);
  store->writer_ = std::move(*writer);
  return store;
}

absl::Status PgStore::Read(absl::FunctionRef<absl::Status(PgConnection&)> work) {
  return readers_.With(work, /*retry=*/true);
}

absl::Status PgStore::Load(absl::Time idempotency_since, SnapshotSink& sink) {
  // Never retried: by the time a stream fails the sink holds part of it.
  return readers_.With(
      [&](PgConnection& conn) { return LoadSnapshot(conn, idempotency_since, sink); },
      /*retry=*/false);
}

absl::Status PgStore::Commit(const engine::CommitBatch& batch) {
  MutexLock lock(&write_mu_);
  RETURN_IF_ERROR(writer_->EnsureLive());
  return CommitOnce(batch);
}

absl::Status PgStore::CommitOnce(const engine::CommitBatch& batch) {
  auto begin = writer_->Exec("BEGIN");
  if (!begin.ok() && writer_->broken()) {
    // Lost before anything was sent in this transaction: safe to begin again.
    RETURN_IF_ERROR(writer_->Reconnect());
    begin = writer_->Exec("BEGIN");
  }
  if (!begin.ok()) return begin.status();
  absl::Status s = WriteBatch(*writer_, batch);
  // A connection lost during COMMIT leaves the outcome unknown; it is
  // reported as kUnavailable like any other failure.
  if (s.ok()) s = writer_->Exec("COMMIT").status();
  if (!s.ok() && !writer_->broken()) (void)writer_->Exec("ROLLBACK");
  return s;
}

absl::StatusOr<std::vector<engine::DailyRow>> PgStore::Daily(const std::string& tenant_id,
                                                             absl::CivilDay from,
                                                             absl::CivilDay to) {
  std::vector<engine::DailyRow> out;
  RETURN_IF_ERROR(Read([&](PgConnection& conn) {
    out.clear();
    auto r = conn.Exec(
        "SELECT to_char(day,'YYYY-MM-DD'),meter,SUM(value)::bigint FROM usage_daily "
        "WHERE tenant_id=$1 AND day>=$2::date AND day<=$3::date GROUP BY day,meter "
        "ORDER BY day,meter",
        {TextParam(tenant_id), TextParam(FormatDate(from)), TextParam(FormatDate(to))});
    if (!r.ok()) return r.status();
    for (int i = 0; i < r->rows(); ++i) {
      absl::CivilDay day;
      if (!absl::ParseCivilTime(r->row(i).Text(0), &day)) continue;
      out.push_back({day, r->row(i).Text(1), AsUnsigned(r->row(i).Int(2))});
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<engine::HourlyRow>> PgStore::Hourly(const std::string& tenant_id,
                                                               absl::Time from, absl::Time to) {
  std::vector<engine::HourlyRow> out;
  RETURN_IF_ERROR(Read([&](PgConnection& conn) {
    out.clear();
    auto r = conn.Exec(
        "SELECT hour,meter,channel,SUM(value)::bigint FROM usage_hourly WHERE tenant_id=$1 "
        "AND hour>=$2 AND hour<$3 GROUP BY hour,meter,channel ORDER BY hour,meter,channel",
        {TextParam(tenant_id), SecsParam(from), SecsParam(to)});
    if (!r.ok()) return r.status();
    for (int i = 0; i < r->rows(); ++i) {
      const PgRow row = r->row(i);
      out.push_back({FromSecs(row.Int(0)), row.Text(1), row.Text(2), AsUnsigned(row.Int(3))});
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<engine::DailyChannelRow>> PgStore::DailyByChannel(
    const std::string& tenant_id, absl::CivilDay from, absl::CivilDay to) {
  std::vector<engine::DailyChannelRow> out;
  RETURN_IF_ERROR(Read([&](PgConnection& conn) {
    out.clear();
    auto r = conn.Exec(
        "SELECT to_char(day,'YYYY-MM-DD'),meter,channel,value FROM usage_daily "
        "WHERE tenant_id=$1 AND day>=$2::date AND day<=$3::date ORDER BY day,meter,channel",
        {TextParam(tenant_id), TextParam(FormatDate(from)), TextParam(FormatDate(to))});
    if (!r.ok()) return r.status();
    for (int i = 0; i < r->rows(); ++i) {
      const PgRow row = r->row(i);
      absl::CivilDay day;
      if (!absl::ParseCivilTime(row.Text(0), &day)) continue;
      out.push_back({day, row.Text(1), row.Text(2), AsUnsigned(row.Int(3))});
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<engine::CounterRow>> PgStore::Periods(const std::string& tenant_id,
                                                                 absl::Time since) {
  std::vector<engine::CounterRow> out;
  RETURN_IF_ERROR(Read([&](PgConnection& conn) {
    out.clear();
    auto r = conn.Exec(
        "SELECT meter,period_start,SUM(value) FROM (SELECT meter,period_start,value FROM counters "
        "WHERE tenant_id=$1 AND period_start>=$2 UNION ALL SELECT meter,period_start,value FROM "
        "usage_aggregates WHERE tenant_id=$1 AND period_start>=$2) AS u "
        "GROUP BY meter,period_start ORDER BY meter,period_start",
        {TextParam(tenant_id), SecsParam(since)});
    if (!r.ok()) return r.status();
    for (int i = 0; i < r->rows(); ++i) {
      const PgRow row = r->row(i);
      out.push_back({tenant_id, row.Text(0), FromSecs(row.Int(1)), AsUnsigned(row.Int(2))});
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<std::pair<std::string, uint64_t>>> PgStore::Channels(
    const std::string& tenant_id, const std::string& meter, absl::Time from, absl::Time to) {
  std::vector<std::pair<std::string, uint64_t>> out;
  // Hourly buckets: the one holding `from` counts whole, as in SQLite.
  const int64_t from_hour = Secs(from) - ((Secs(from) % 3600) + 3600) % 3600;
  RETURN_IF_ERROR(Read([&](PgConnection& conn) {
    out.clear();
    auto r = conn.Exec(
        "SELECT channel,SUM(value)::bigint FROM usage_hourly WHERE tenant_id=$1 AND meter=$2 "
        "AND hour>=$3 AND hour<$4 GROUP BY channel ORDER BY channel",
        {TextParam(tenant_id), TextParam(meter), IntParam(from_hour), SecsParam(to)});
    if (!r.ok()) return r.status();
    for (int i = 0; i < r->rows(); ++i) {
      out.emplace_back(r->row(i).Text(0), AsUnsigned(r->row(i).Int(1)));
    }
    return absl::OkStatus();
  }));
  return out;
}

namespace {

constexpr char kPlanChangeColumns[] =
    "SELECT id,tenant_id,actor,from_plan,to_plan,kind,amount_cents,requested_at,effective_at,state "
    "FROM subscription_changes ";

constexpr char kAddonColumns[] =
    "SELECT id,tenant_id,meter,units,price_cents,started_at,ends_at FROM addons ";

engine::AddonRecord AddonOf(const PgRow& r) {
  engine::AddonRecord a{r.Text(0), r.Text(1),          r.Text(2),   AsUnsigned(r.Int(3)),
                        r.Int(4),  FromSecs(r.Int(5)), std::nullopt};
  if (!r.IsNull(6)) a.ends_at = FromSecs(r.Int(6));
  return a;
}

constexpr char kTopupColumns[] =
    "SELECT id,tenant_id,meter,units,drawn,price_cents,bought_at_ms,expires_at_ms FROM topups ";
constexpr char kTopupOrder[] = " ORDER BY tenant_id, expires_at_ms NULLS LAST, id";

engine::TopupRecord TopupOf(const PgRow& r) {
  engine::TopupRecord t{r.Text(0),
                        r.Text(1),
                        r.Text(2),
                        AsUnsigned(r.Int(3)),
                        AsUnsigned(r.Int(4)),
                        r.Int(5),
                        absl::FromUnixMillis(r.Int(6))};
  if (!r.IsNull(7)) t.expires_at = absl::FromUnixMillis(r.Int(7));
  return t;
}

engine::SubscriptionChange PlanChangeOf(const PgRow& r) {
  return {r.Text(0), r.Text(1), r.Text(2),          r.Text(3),          r.Text(4),
          r.Text(5), r.Int(6),  FromSecs(r.Int(7)), FromSecs(r.Int(8)), r.Text(9)};
}

}  // namespace

namespace {

// The tenant's overrides, pending plan change and live add-ons into `snap`.
absl::Status ReadTenantParts(PgConnection& conn, engine::KeySnapshot& snap) {
  auto o = conn.Exec("SELECT tenant_id,meter,limit_value FROM tenant_limits WHERE tenant_id=$1",
                     {TextParam(snap.tenant.id)});
  if (!o.ok()) return o.status();
  for (int i = 0; i < o->rows(); ++i) {
    const PgRow r = o->row(i);
    snap.overrides.push_back({r.Text(0), r.Text(1), AsUnsigned(r.Int(2))});
  }
  const std::string pending =
      std::string(kPlanChangeColumns) + "WHERE tenant_id=$1 AND state='pending'";
  RETURN_IF_ERROR(Each(conn, pending.c_str(), {TextParam(snap.tenant.id)},
                       [&](const PgRow& r) { snap.pending_plan = PlanChangeOf(r); }));
  const std::string addons = std::string(kAddonColumns) +
                             "WHERE tenant_id=$1 AND (ends_at IS NULL OR "
                             "ends_at>extract(epoch FROM now())::bigint) ORDER BY seq";
  RETURN_IF_ERROR(Each(conn, addons.c_str(), {TextParam(snap.tenant.id)},
                       [&](const PgRow& r) { snap.addons.push_back(AddonOf(r)); }));
  const std::string topups = std::string(kTopupColumns) +
                             "WHERE tenant_id=$1 AND (expires_at_ms IS NULL OR expires_at_ms>"
                             "(extract(epoch FROM now())*1000)::bigint)" +
                             kTopupOrder;
  return Each(conn, topups.c_str(), {TextParam(snap.tenant.id)},
              [&](const PgRow& r) { snap.topups.push_back(TopupOf(r)); });
}

/// A key with its tenant and its rate limits, by the condition that ends it.
const std::string kSelectKeyWhere =
    "SELECT k.key_id,k.tenant_id,k.hash,k.created_at,k.revoked_at,"
    "t.id,t.name,t.plan,t.subscription_start,t.created_at,l.general,l.messages,l.sessions "
    "FROM api_keys k JOIN tenants t ON t.id=k.tenant_id "
    "LEFT JOIN key_rate_limits l ON l.key_id=k.key_id WHERE ";
const std::string kSelectKeyByHash = kSelectKeyWhere + "k.hash=$1";
const std::string kSelectKeyById = kSelectKeyWhere + "k.key_id=$1";

}  // namespace

absl::StatusOr<std::optional<engine::KeySnapshot>> PgStore::FindKeyWhere(const char* sql,
                                                                         const PgParam& value) {
  std::optional<engine::KeySnapshot> out;
  RETURN_IF_ERROR(Read([&](PgConnection& conn) {
    out.reset();
    return InOneSnapshot(conn, [&]() -> absl::Status {
      auto k = conn.Exec(sql, {value});  // a copy: a read may run twice (on a fresh connection)
      if (!k.ok()) return k.status();
      if (k->rows() == 0) return absl::OkStatus();
      const PgRow row = k->row(0);
      engine::KeySnapshot snap;
      snap.key = KeyFrom(row);
      snap.tenant = engine::TenantRecord{row.Text(5), row.Text(6), row.Text(7),
                                         FromSecs(row.Int(8)), FromSecs(row.Int(9))};
      auto limit = [&](int col) -> std::optional<uint32_t> {
        if (row.IsNull(col)) return std::nullopt;
        return static_cast<uint32_t>(row.Int(col));
      };
      snap.limits = engine::KeyRateLimits{limit(10), limit(11), limit(12)};
      RETURN_IF_ERROR(ReadTenantParts(conn, snap));
      out = std::move(snap);
      return absl::OkStatus();
    });
  }));
  return out;
}

absl::StatusOr<std::optional<engine::KeySnapshot>> PgStore::FindKey(const std::string& hash) {
  return FindKeyWhere(kSelectKeyByHash.c_str(), ByteaHex(hash));
}

absl::StatusOr<std::optional<engine::KeySnapshot>> PgStore::FindKeyById(const std::string& key_id) {
  return FindKeyWhere(kSelectKeyById.c_str(), TextParam(key_id));
}

absl::StatusOr<std::optional<engine::KeySnapshot>> PgStore::FindTenant(const std::string& id) {
  std::optional<engine::KeySnapshot> out;
  RETURN_IF_ERROR(Read([&](PgConnection& conn) {
    out.reset();
    return InOneSnapshot(conn, [&]() -> absl::Status {
      auto t =
          conn.Exec("SELECT id,name,plan,subscription_start,created_at FROM tenants WHERE id=$1",
                    {TextParam(id)});
      if (!t.ok()) return t.status();
      if (t->rows() == 0) return absl::OkStatus();
      const PgRow row = t->row(0);
      engine::KeySnapshot snap;
      snap.tenant = engine::TenantRecord{row.Text(0), row.Text(1), row.Text(2),
                                         FromSecs(row.Int(3)), FromSecs(row.Int(4))};
      RETURN_IF_ERROR(ReadTenantParts(conn, snap));
      out = std::move(snap);
      return absl::OkStatus();
    });
  }));
  return out;
}

namespace {

// The overrides, pending plan changes, live add-ons and top-ups of every
// tenant, each put into the snapshot of its tenant (`at`: id -> index).
absl::Status ReadEveryTenantsParts(PgConnection& conn, std::vector<engine::KeySnapshot>& snaps,
                                   const absl::flat_hash_map<std::string, size_t>& at) {
  auto of = [&](const std::string& tenant_id) -> engine::KeySnapshot* {
    auto it = at.find(tenant_id);
    return it == at.end() ? nullptr : &snaps[it->second];
  };
  RETURN_IF_ERROR(
      Each(conn, "SELECT tenant_id,meter,limit_value FROM tenant_limits", {}, [&](const PgRow& r) {
        if (auto* s = of(r.Text(0))) {
          s->overrides.push_back({r.Text(0), r.Text(1), AsUnsigned(r.Int(2))});
        }
      }));
  const std::string pending = std::string(kPlanChangeColumns) + "WHERE state='pending'";
  RETURN_IF_ERROR(Each(conn, pending.c_str(), {}, [&](const PgRow& r) {
    if (auto* s = of(r.Text(1))) s->pending_plan = PlanChangeOf(r);
  }));
  const std::string addons = std::string(kAddonColumns) +
                             "WHERE ends_at IS NULL OR "
                             "ends_at>extract(epoch FROM now())::bigint ORDER BY seq";
  RETURN_IF_ERROR(Each(conn, addons.c_str(), {}, [&](const PgRow& r) {
    if (auto* s = of(r.Text(1))) s->addons.push_back(AddonOf(r));
  }));
  const std::string topups = std::string(kTopupColumns) +
                             "WHERE expires_at_ms IS NULL OR expires_at_ms>"
                             "(extract(epoch FROM now())*1000)::bigint" +
                             kTopupOrder;
  return Each(conn, topups.c_str(), {}, [&](const PgRow& r) {
    if (auto* s = of(r.Text(1))) s->topups.push_back(TopupOf(r));
  });
}

}  // namespace

absl::StatusOr<std::vector<engine::KeySnapshot>> PgStore::AllTenants() {
  std::vector<engine::KeySnapshot> out;
  RETURN_IF_ERROR(Read([&](PgConnection& conn) {
    out.clear();
    absl::flat_hash_map<std::string, size_t> at;
    return InOneSnapshot(conn, [&]() -> absl::Status {
      RETURN_IF_ERROR(
          Each(conn, "SELECT id,name,plan,subscription_start,created_at FROM tenants ORDER BY id",
               {}, [&](const PgRow& r) {
                 at.emplace(r.Text(0), out.size());
                 engine::KeySnapshot& snap = out.emplace_back();
                 snap.tenant = engine::TenantRecord{r.Text(0), r.Text(1), r.Text(2),
                                                    FromSecs(r.Int(3)), FromSecs(r.Int(4))};
               }));
      return ReadEveryTenantsParts(conn, out, at);
    });
  }));
  return out;
}

absl::StatusOr<std::vector<engine::EventRecord>> PgStore::Events(const std::string& tenant_id,
                                                                 size_t limit) {
  std::vector<engine::EventRecord> out;
  const auto max = static_cast<size_t>(std::numeric_limits<int64_t>::max());
  RETURN_IF_ERROR(Read([&](PgConnection& conn) {
    out.clear();
    auto r = conn.Exec(
        "SELECT tenant_id,type,subject,detail,at,id,fields FROM outbox WHERE tenant_id=$1 "
        "ORDER BY seq DESC LIMIT $2",
        {TextParam(tenant_id), IntParam(static_cast<int64_t>(std::min(limit, max)))});
    if (!r.ok()) return r.status();
    for (int i = 0; i < r->rows(); ++i) {
      const PgRow row = r->row(i);
      out.push_back(
          {row.Text(0), row.Text(1), row.Text(2), row.Text(3), FromSecs(row.Int(4)), row.Text(5),
           engine::DecodeEventFields(row.Text(6)).value_or(std::vector<engine::EventField>{})});
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<engine::AlertRecord>> PgStore::Alerts(const std::string& tenant_id,
                                                                 absl::Time from, absl::Time to) {
  std::vector<engine::AlertRecord> out;
  RETURN_IF_ERROR(Read([&](PgConnection& conn) {
    out.clear();
    auto r = conn.Exec(
        "SELECT meter,period_start,period_end,threshold,value,limit_value,at,resolved_at "
        "FROM alerts WHERE tenant_id=$1 AND at>=$2 AND at<$3 ORDER BY at,meter,threshold",
        {TextParam(tenant_id), IntParam(Secs(from)), IntParam(Secs(to))});
    if (!r.ok()) return r.status();
    for (int i = 0; i < r->rows(); ++i) {
      const PgRow row = r->row(i);
      std::optional<absl::Time> resolved;
      if (!row.IsNull(7)) resolved = FromSecs(row.Int(7));
      out.push_back({tenant_id, row.Text(0), FromSecs(row.Int(1)), FromSecs(row.Int(2)),
                     static_cast<int>(row.Int(3)), AsUnsigned(row.Int(4)), AsUnsigned(row.Int(5)),
                     FromSecs(row.Int(6)), resolved});
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<bool> PgStore::HoldLease(const std::string& name, const std::string& holder,
                                        absl::Duration ttl) {
  bool held = false;
  // Expiry on the server's clock, so instances' clocks need not agree.
  RETURN_IF_ERROR(Read([&](PgConnection& conn) {
    auto r = conn.Exec(
        "WITH now AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms) "
        "INSERT INTO leases(name,holder,expires_at_ms) SELECT $1,$2,ms+$3 FROM now "
        "ON CONFLICT(name) DO UPDATE SET holder=excluded.holder,"
        "expires_at_ms=excluded.expires_at_ms "
        "WHERE leases.holder=excluded.holder OR leases.expires_at_ms<(SELECT ms FROM now) "
        "RETURNING holder",
        {TextParam(name), TextParam(holder), IntParam(absl::ToInt64Milliseconds(ttl))});
    if (!r.ok()) return r.status();
    held = r->rows() == 1;
    return absl::OkStatus();
  }));
  return held;
}

absl::StatusOr<std::vector<engine::FailOpenCharge>> PgStore::PendingFailOpen(size_t max) {
  std::vector<engine::FailOpenCharge> out;
  RETURN_IF_ERROR(Read([&](PgConnection& conn) {
    out.clear();
    auto r = conn.Exec(
        "SELECT id,tenant_id,meter,channel,period_start,period_end,at,now,units,api_call "
        "FROM fail_open_charges ORDER BY seq LIMIT $1",
        {IntParam(static_cast<int64_t>(std::min<size_t>(max, 1 << 30)))});
    if (!r.ok()) return r.status();
    for (int i = 0; i < r->rows(); ++i) {
      const PgRow row = r->row(i);
      out.push_back({row.Text(0), row.Text(1), row.Text(2), row.Text(3), FromSecs(row.Int(4)),
                     FromSecs(row.Int(5)), FromSecs(row.Int(6)), FromSecs(row.Int(7)),
                     AsUnsigned(row.Int(8)), row.Bool(9)});
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<engine::SubscriptionChange>> PgStore::SubscriptionChanges(
    const std::string& tenant_id) {
  std::vector<engine::SubscriptionChange> out;
  RETURN_IF_ERROR(Read([&](PgConnection& conn) {
    out.clear();
    const std::string sql =
        std::string(kPlanChangeColumns) + "WHERE tenant_id=$1 ORDER BY seq DESC";
    return Each(conn, sql.c_str(), {TextParam(tenant_id)},
                [&](const PgRow& r) { out.push_back(PlanChangeOf(r)); });
  }));
  return out;
}

absl::StatusOr<std::vector<engine::AddonRecord>> PgStore::Addons(const std::string& tenant_id,
                                                                 absl::Time now) {
  std::vector<engine::AddonRecord> out;
  RETURN_IF_ERROR(Read([&](PgConnection& conn) {
    out.clear();
    const std::string sql = std::string(kAddonColumns) +
                            "WHERE ($1='' OR tenant_id=$1) AND (ends_at IS NULL OR ends_at>$2) "
                            "ORDER BY seq";
    return Each(conn, sql.c_str(), {TextParam(tenant_id), IntParam(absl::ToUnixSeconds(now))},
                [&](const PgRow& r) { out.push_back(AddonOf(r)); });
  }));
  return out;
}

absl::StatusOr<std::vector<engine::TopupRecord>> PgStore::Topups(const std::string& tenant_id,
                                                                 absl::Time now) {
  std::vector<engine::TopupRecord> out;
  RETURN_IF_ERROR(Read([&](PgConnection& conn) {
    out.clear();
    const std::string sql =
        std::string(kTopupColumns) +
        "WHERE ($1='' OR tenant_id=$1) AND (expires_at_ms IS NULL OR expires_at_ms>$2)" +
        kTopupOrder;
    return Each(conn, sql.c_str(), {TextParam(tenant_id), IntParam(absl::ToUnixMillis(now))},
                [&](const PgRow& r) { out.push_back(TopupOf(r)); });
  }));
  return out;
}

absl::StatusOr<std::vector<engine::SubscriptionChange>> PgStore::PendingPlanChanges() {
  std::vector<engine::SubscriptionChange> out;
  RETURN_IF_ERROR(Read([&](PgConnection& conn) {
    out.clear();
    const std::string sql = std::string(kPlanChangeColumns) + "WHERE state='pending' ORDER BY seq";
    return Each(conn, sql.c_str(), {}, [&](const PgRow& r) { out.push_back(PlanChangeOf(r)); });
  }));
  return out;
}

absl::StatusOr<engine::TenantLeaseRows> PgStore::LeaseRows(const std::string& tenant_id) {
  engine::TenantLeaseRows out;
  RETURN_IF_ERROR(Read([&](PgConnection& conn) {
    out = {};
    const std::vector<PgParam> id{TextParam(tenant_id)};
    RETURN_IF_ERROR(
        Each(conn,
             absl::StrCat(store::kSessionColumns, " FROM sessions WHERE tenant_id=$1 ORDER BY id")
                 .c_str(),
             id, [&](const PgRow& r) { out.sessions.push_back(store::SessionOfRow(r)); }));
    RETURN_IF_ERROR(Each(
        conn,
        "SELECT tenant_id,id,name,created_at FROM groups_monitored WHERE tenant_id=$1 ORDER BY id",
        id, [&](const PgRow& r) {
          out.groups.push_back({r.Text(0), r.Text(1), r.Text(2), FromSecs(r.Int(3))});
        }));
    return Each(conn, "SELECT tenant_id,meter,value FROM gauges WHERE tenant_id=$1 ORDER BY meter",
                id, [&](const PgRow& r) {
                  out.gauges.push_back({r.Text(0), r.Text(1), AsUnsigned(r.Int(2))});
                });
  }));
  return out;
}

absl::StatusOr<std::vector<std::string>> PgStore::TenantIds() {
  std::vector<std::string> out;
  RETURN_IF_ERROR(Read([&](PgConnection& conn) {
    out.clear();
    auto r = conn.Exec("SELECT id FROM tenants ORDER BY id");
    if (!r.ok()) return r.status();
    for (int i = 0; i < r->rows(); ++i) out.push_back(r->row(i).Text(0));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<std::pair<std::string, absl::Time>>> PgStore::OpenPeriods(
    absl::Time before) {
  std::vector<std::pair<std::string, absl::Time>> out;
  RETURN_IF_ERROR(Read([&](PgConnection& conn) {
    out.clear();
    auto r = conn.Exec(
        "SELECT DISTINCT tenant_id,period_start FROM counters WHERE period_start<$1 "
        "ORDER BY tenant_id,period_start",
        {SecsParam(before)});
    if (!r.ok()) return r.status();
    for (int i = 0; i < r->rows(); ++i) {
      out.emplace_back(r->row(i).Text(0), FromSecs(r->row(i).Int(1)));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::Status PgStore::CheckWritable() {
  return Read([&](PgConnection& conn) -> absl::Status {
    auto r = conn.Exec("SELECT pg_is_in_recovery(), current_setting('transaction_read_only')");
    if (!r.ok()) return r.status();
    if (r->row(0).Bool(0) || r->row(0).Text(1) == "on") {
      return absl::UnavailableError(
          "postgres: the database is read-only (a standby, or default_transaction_read_only)");
    }
    return absl::OkStatus();
  });
}

}  // namespace quotum::store::postgres
