#include "quotum/store/postgres/pg_commit.h"

#include <map>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_join.h"
#include "absl/time/civil_time.h"
#include "quotum/base/status_macros.h"
#include "quotum/core/billing_period.h"
#include "quotum/engine/api_keys.h"
#include "quotum/engine/decision_codec.h"
#include "quotum/engine/events.h"
#include "quotum/store/column_values.h"

namespace quotum::store::postgres {
namespace {

using engine::CommitBatch;

std::string DayText(int64_t day_start) {
  return FormatDate(absl::ToCivilDay(absl::FromUnixSeconds(day_start), absl::UTCTimeZone()));
}

/// A prepared statement whose parameters are arrays, one per column.
struct Statement {
  const char* name;
  const char* sql;
};

// Inserts keep the batch's order (WITH ORDINALITY) where an identity column
// records it; upserts and deletes get rows unique per key (see LastPerKey).
constexpr Statement kTenants{
    "w_tenants",
    "INSERT INTO tenants(id,name,plan,subscription_start,created_at) "
    "SELECT id,name,plan,subscription_start,created_at FROM "
    "unnest($1::text[],$2::text[],$3::text[],$4::bigint[],$5::bigint[]) WITH ORDINALITY "
    "AS r(id,name,plan,subscription_start,created_at,ord) ORDER BY ord"};
constexpr Statement kKeys{"w_keys",
                          "INSERT INTO api_keys(key_id,tenant_id,hash,created_at) "
                          "SELECT key_id,tenant_id,hash,created_at FROM "
                          "unnest($1::text[],$2::text[],$3::bytea[],$4::bigint[]) WITH ORDINALITY "
                          "AS r(key_id,tenant_id,hash,created_at,ord) ORDER BY ord"};
constexpr Statement kRevoke{
    "w_revoke",
    "UPDATE api_keys SET revoked_at=$2 WHERE key_id=ANY($1::text[]) AND revoked_at IS NULL"};
constexpr Statement kSetLimits{
    "w_set_limits",
    "INSERT INTO tenant_limits(tenant_id,meter,limit_value) "
    "SELECT * FROM unnest($1::text[],$2::text[],$3::bigint[]) "
    "ON CONFLICT(tenant_id,meter) DO UPDATE SET limit_value=excluded.limit_value"};
constexpr Statement kClearLimits{
    "w_clear_limits",
    "DELETE FROM tenant_limits t USING unnest($1::text[],$2::text[]) AS d(tenant_id,meter) "
    "WHERE t.tenant_id=d.tenant_id AND t.meter=d.meter"};
constexpr Statement kCounters{
    "w_counters",
    "INSERT INTO counters(tenant_id,meter,period_start,value) "
    "SELECT * FROM unnest($1::text[],$2::text[],$3::bigint[],$4::bigint[]) "
    "ON CONFLICT(tenant_id,meter,period_start) DO UPDATE SET value=counters.value+excluded.value"};
constexpr Statement kCounterSets{
    "w_counter_sets",
    "INSERT INTO counters(tenant_id,meter,period_start,value) "
    "SELECT * FROM unnest($1::text[],$2::text[],$3::bigint[],$4::bigint[]) "
    "ON CONFLICT(tenant_id,meter,period_start) DO UPDATE SET value=excluded.value"};
// A period close moves its counter rows, adding to aggregates already there:
// one statement deletes the rows and inserts what it deleted, so a row another
// transaction writes meanwhile is either moved or left for the next close,
// never lost. Then the limits are set. At most one close per (tenant, period)
// in a batch.
constexpr Statement kCloseMove{
    "w_close_move",
    "WITH p AS (SELECT * FROM unnest($1::text[],$2::bigint[],$3::bigint[],$4::text[],"
    "$5::bigint[]) AS p(tenant_id,period_start,period_end,plan,closed_at)), "
    "moved AS (DELETE FROM counters c USING p WHERE c.tenant_id=p.tenant_id AND "
    "c.period_start=p.period_start RETURNING c.tenant_id,c.meter,c.period_start,c.value,"
    "p.period_end,p.plan,p.closed_at) "
    "INSERT INTO usage_aggregates(tenant_id,meter,period_start,period_end,value,limit_value,plan,"
    "closed_at) SELECT tenant_id,meter,period_start,period_end,value,NULL,plan,closed_at "
    "FROM moved ON CONFLICT(tenant_id,meter,period_start) DO UPDATE "
    "SET value=usage_aggregates.value+excluded.value"};
constexpr Statement kCloseLimits{
    "w_close_limits",
    "UPDATE usage_aggregates a SET limit_value=l.limit_value FROM unnest($1::text[],$2::text[],"
    "$3::bigint[],$4::bigint[]) AS l(tenant_id,meter,period_start,limit_value) "
    "WHERE a.tenant_id=l.tenant_id AND a.meter=l.meter AND a.period_start=l.period_start"};
constexpr Statement kHourly{
    "w_hourly",
    "INSERT INTO usage_hourly(tenant_id,meter,channel,hour,value) "
    "SELECT * FROM unnest($1::text[],$2::text[],$3::text[],$4::bigint[],$5::bigint[]) "
    "ON CONFLICT(tenant_id,meter,hour,channel) "
    "DO UPDATE SET value=usage_hourly.value+excluded.value"};
constexpr Statement kDaily{
    "w_daily",
    "INSERT INTO usage_daily(tenant_id,day,meter,channel,value) "
    "SELECT * FROM unnest($1::text[],$2::date[],$3::text[],$4::text[],$5::bigint[]) "
    "ON CONFLICT(tenant_id,day,meter,channel) "
    "DO UPDATE SET value=usage_daily.value+excluded.value"};
// A give-back's units taken back out: existing rows only, never below 0
// (one source row per target row: the writer sums them first).
constexpr Statement kCountersTake{
    "w_counters_take",
    "UPDATE counters c SET value=GREATEST(c.value-g.v,0) "
    "FROM unnest($1::text[],$2::text[],$3::bigint[],$4::bigint[]) AS g(t,m,p,v) "
    "WHERE c.tenant_id=g.t AND c.meter=g.m AND c.period_start=g.p"};
constexpr Statement kHourlyTake{
    "w_hourly_take",
    "UPDATE usage_hourly h SET value=GREATEST(h.value-g.v,0) "
    "FROM unnest($1::text[],$2::text[],$3::text[],$4::bigint[],$5::bigint[]) AS g(t,m,c,hr,v) "
    "WHERE h.tenant_id=g.t AND h.meter=g.m AND h.channel=g.c AND h.hour=g.hr"};
constexpr Statement kDailyTake{
    "w_daily_take",
    "UPDATE usage_daily d SET value=GREATEST(d.value-g.v,0) "
    "FROM unnest($1::text[],$2::date[],$3::text[],$4::text[],$5::bigint[]) AS g(t,dy,m,c,v) "
    "WHERE d.tenant_id=g.t AND d.day=g.dy AND d.meter=g.m AND d.channel=g.c"};
constexpr Statement kIdempotency{
    "w_idempotency",
    "INSERT INTO idempotency(tenant_id,key,fingerprint,created_at,allowed,requested,consumed,"
    "remaining,limit_value,overage,period_start,reset_at,meter,reason,extra) "
    "SELECT * FROM unnest($1::text[],$2::text[],$3::bigint[],$4::bigint[],$5::boolean[],"
    "$6::bigint[],$7::bigint[],$8::bigint[],$9::bigint[],$10::bigint[],$11::bigint[],"
    "$12::bigint[],$13::text[],$14::smallint[],$15::text[]) "
    "ON CONFLICT(tenant_id,key) DO UPDATE SET fingerprint=excluded.fingerprint,"
    "created_at=excluded.created_at,allowed=excluded.allowed,requested=excluded.requested,"
    "consumed=excluded.consumed,remaining=excluded.remaining,limit_value=excluded.limit_value,"
    "overage=excluded.overage,period_start=excluded.period_start,reset_at=excluded.reset_at,"
    "meter=excluded.meter,reason=excluded.reason,extra=excluded.extra"};
constexpr Statement kMessages{
    "w_messages",
    "INSERT INTO messages(id,tenant_id,channel,recipient,body,status,created_at,session_id,type,"
    "send_at_ms,due_at_ms,seq,reason,release_attempts,released_at_ms,sent_at_ms,updated_at_ms,"
    "paced,delivery_attempts) "
    "SELECT * FROM unnest($1::text[],$2::text[],$3::text[],$4::text[],$5::text[],$6::text[],"
    "$7::bigint[],$8::text[],$9::text[],$10::bigint[],$11::bigint[],$12::bigint[],$13::text[],"
    "$14::bigint[],$15::bigint[],$16::bigint[],$17::bigint[],$18::boolean[],$19::bigint[]) "
    "ON CONFLICT(id) DO UPDATE SET "
    "status=excluded.status,reason=excluded.reason,due_at_ms=excluded.due_at_ms,"
    "released_at_ms=excluded.released_at_ms,sent_at_ms=excluded.sent_at_ms,"
    "updated_at_ms=excluded.updated_at_ms "
    "WHERE messages.status IN ('queued','releasing') AND excluded.status<>'queued'"};
constexpr Statement kMessageTransition{
    "w_message_transition",
    "UPDATE messages SET status=$1,reason=$2,updated_at_ms=$3,"
    "release_attempts=release_attempts+$4,sent_at_ms=COALESCE($8::bigint,sent_at_ms),"
    "due_at_ms=COALESCE($9::bigint,due_at_ms),delivery_attempts=delivery_attempts+$10,"
    "released_at_ms=COALESCE($11::bigint,released_at_ms) "
    "WHERE tenant_id=$5 AND id=$6 AND status=$7"};
constexpr Statement kSessions{
    "w_sessions",
    "INSERT INTO sessions(tenant_id,id,phone,status,created_at,updated_at,first_working_at,"
    "last_heartbeat,warmup_day,warmup_count,tier_level,tier_since_ms,tier_qualified_ms) "
    "SELECT * FROM unnest($1::text[],$2::text[],$3::text[],$4::text[],$5::bigint[],"
    "$6::bigint[],$7::bigint[],$8::bigint[],$9::bigint[],$10::bigint[],$11::bigint[],"
    "$12::bigint[],$13::bigint[]) "
    "ON CONFLICT(tenant_id,id) DO UPDATE SET phone=excluded.phone,status=excluded.status,"
    "created_at=excluded.created_at,updated_at=excluded.updated_at,"
    "first_working_at=excluded.first_working_at,last_heartbeat=excluded.last_heartbeat,"
    "warmup_day=excluded.warmup_day,warmup_count=excluded.warmup_count,"
    "tier_level=excluded.tier_level,tier_since_ms=excluded.tier_since_ms,"
    "tier_qualified_ms=excluded.tier_qualified_ms"};
constexpr Statement kDeleteSessions{
    "w_delete_sessions",
    "DELETE FROM sessions s USING unnest($1::text[],$2::text[]) AS d(tenant_id,id) "
    "WHERE s.tenant_id=d.tenant_id AND s.id=d.id"};
constexpr Statement kGroups{"w_groups",
                            "INSERT INTO groups_monitored(tenant_id,id,name,created_at) "
                            "SELECT * FROM unnest($1::text[],$2::text[],$3::text[],$4::bigint[])"};
constexpr Statement kDeleteGroups{
    "w_delete_groups",
    "DELETE FROM groups_monitored g USING unnest($1::text[],$2::text[]) AS d(tenant_id,id) "
    "WHERE g.tenant_id=d.tenant_id AND g.id=d.id"};
constexpr Statement kKeyRateLimits{
    "w_key_rate_limits",
    "INSERT INTO key_rate_limits(key_id,general,messages,sessions) "
    "SELECT * FROM unnest($1::text[],$2::bigint[],$3::bigint[],$4::bigint[]) "
    "ON CONFLICT(key_id) DO UPDATE SET general=excluded.general,messages=excluded.messages,"
    "sessions=excluded.sessions"};
constexpr Statement kGauges{"w_gauges",
                            "INSERT INTO gauges(tenant_id,meter,value) "
                            "SELECT * FROM unnest($1::text[],$2::text[],$3::bigint[]) "
                            "ON CONFLICT(tenant_id,meter) DO UPDATE SET value=excluded.value"};
constexpr Statement kEvents{
    "w_outbox",
    "INSERT INTO outbox(id,tenant_id,type,subject,detail,fields,at) "
    "SELECT id,tenant_id,type,subject,detail,fields,at FROM "
    "unnest($1::text[],$2::text[],$3::text[],$4::text[],$5::text[],$6::text[],$7::bigint[]) "
    "WITH ORDINALITY AS r(id,tenant_id,type,subject,detail,fields,at,ord) ORDER BY ord "
    "ON CONFLICT(id) DO NOTHING"};
constexpr Statement kAlerts{
    "w_alerts",
    "INSERT INTO alerts(tenant_id,meter,period_start,threshold,period_end,value,limit_value,at) "
    "SELECT * FROM unnest($1::text[],$2::text[],$3::bigint[],$4::int[],$5::bigint[],$6::bigint[],"
    "$7::bigint[],$8::bigint[]) ON CONFLICT DO NOTHING"};
constexpr Statement kResolveAlerts{
    "w_resolve_alerts",
    "UPDATE alerts a SET resolved_at=r.resolved_at FROM "
    "unnest($1::text[],$2::text[],$3::bigint[],$4::int[],$5::bigint[]) "
    "AS r(tenant_id,meter,period_start,threshold,resolved_at) WHERE a.tenant_id=r.tenant_id AND "
    "a.meter=r.meter AND a.period_start=r.period_start AND a.threshold=r.threshold AND "
    "a.resolved_at IS NULL"};

constexpr Statement kApplied{"w_applied",
                             "INSERT INTO applied_entries(id,applied_at) "
                             "SELECT unnest($1::text[]),$2 ON CONFLICT DO NOTHING"};
constexpr Statement kForgetApplied{"w_forget_applied",
                                   "DELETE FROM applied_entries WHERE applied_at<$1"};

constexpr Statement kFailOpen{
    "w_fail_open",
    "INSERT INTO fail_open_charges(id,tenant_id,meter,channel,period_start,period_end,at,now,"
    "units,api_call) SELECT id,tenant_id,meter,channel,period_start,period_end,at,now,units,"
    "api_call FROM unnest($1::text[],$2::text[],$3::text[],$4::text[],$5::bigint[],$6::bigint[],"
    "$7::bigint[],$8::bigint[],$9::bigint[],$10::boolean[]) WITH ORDINALITY "
    "AS r(id,tenant_id,meter,channel,period_start,period_end,at,now,units,api_call,ord) "
    "ORDER BY ord"};
constexpr Statement kReconciled{"w_reconciled",
                                "DELETE FROM fail_open_charges WHERE id=ANY($1::text[])"};
constexpr Statement kPlanChanges{
    "w_plan_changes",
    "INSERT INTO subscription_changes(id,tenant_id,actor,from_plan,to_plan,kind,amount_cents,"
    "requested_at,effective_at,state) SELECT id,tenant_id,actor,from_plan,to_plan,kind,"
    "amount_cents,requested_at,effective_at,state FROM unnest($1::text[],$2::text[],$3::text[],"
    "$4::text[],$5::text[],$6::text[],$7::bigint[],$8::bigint[],$9::bigint[],$10::text[]) "
    "WITH ORDINALITY AS r(id,tenant_id,actor,from_plan,to_plan,kind,amount_cents,requested_at,"
    "effective_at,state,ord) ORDER BY ord ON CONFLICT(id) DO UPDATE SET "
    "amount_cents=excluded.amount_cents,effective_at=excluded.effective_at,state=excluded.state"};
constexpr Statement kAddons{
    "w_addons",
    "INSERT INTO addons(id,tenant_id,meter,units,price_cents,started_at,ends_at) "
    "SELECT id,tenant_id,meter,units,price_cents,started_at,ends_at FROM unnest($1::text[],"
    "$2::text[],$3::text[],$4::bigint[],$5::bigint[],$6::bigint[],$7::bigint[]) WITH ORDINALITY "
    "AS r(id,tenant_id,meter,units,price_cents,started_at,ends_at,ord) ORDER BY ord "
    "ON CONFLICT(id) DO UPDATE SET ends_at=excluded.ends_at"};
constexpr Statement kTopups{
    "w_topups",
    "INSERT INTO topups(id,tenant_id,meter,units,drawn,price_cents,bought_at_ms,expires_at_ms) "
    "SELECT * FROM unnest($1::text[],$2::text[],$3::text[],$4::bigint[],$5::bigint[],"
    "$6::bigint[],$7::bigint[],$8::bigint[]) ON CONFLICT(id) DO NOTHING"};
constexpr Statement kTopupDraws{
    "w_topup_draws",
    "UPDATE topups t SET drawn=LEAST(t.units,t.drawn+d.units) FROM unnest($1::text[],"
    "$2::text[],$3::bigint[]) AS d(tenant_id,id,units) WHERE t.tenant_id=d.tenant_id AND "
    "t.id=d.id"};
constexpr Statement kEndReservations{
    "w_end_reservations",
    "DELETE FROM reservations r USING unnest($1::text[],$2::text[]) AS e(tenant_id,id) "
    "WHERE r.tenant_id=e.tenant_id AND r.id=e.id"};
constexpr Statement kPurgeReservations{
    "w_purge_reservations",
    "DELETE FROM reservations r USING unnest($1::text[],$2::bigint[]) AS p(tenant_id,before) "
    "WHERE r.tenant_id=p.tenant_id AND r.expires_at_ms<=p.before"};
constexpr Statement kReservations{
    "w_reservations",
    "INSERT INTO reservations(tenant_id,id,meter,units,created_at_ms,expires_at_ms) "
    "SELECT tenant_id,id,meter,units,created_at_ms,expires_at_ms FROM unnest($1::text[],"
    "$2::text[],$3::text[],$4::bigint[],$5::bigint[],$6::bigint[]) AS r(tenant_id,id,meter,"
    "units,created_at_ms,expires_at_ms) ON CONFLICT(tenant_id,id) DO UPDATE SET "
    "meter=excluded.meter,units=excluded.units,created_at_ms=excluded.created_at_ms,"
    "expires_at_ms=excluded.expires_at_ms"};
constexpr Statement kSetPlans{
    "w_set_plans",
    "UPDATE tenants t SET plan=p.plan FROM unnest($1::text[],$2::text[]) AS p(id,plan) "
    "WHERE t.id=p.id"};

absl::Status Run(PgConnection& conn, const Statement& st, const PgColumns& cols) {
  return conn.ExecPrepared(st.name, st.sql, cols.Params()).status();
}

/// The records of `rows` that applying them in order leaves: the last one of
/// each key, in the order keys first appear. An upsert statement may touch a
/// row only once.
template <typename T, typename KeyFn>
std::vector<const T*> LastPerKey(const std::vector<T>& rows, KeyFn key) {
  absl::flat_hash_map<std::invoke_result_t<KeyFn, const T&>, size_t> index;
  std::vector<const T*> out;
  for (const T& r : rows) {
    auto [it, inserted] = index.try_emplace(key(r), out.size());
    if (inserted) {
      out.push_back(&r);
    } else {
      out[it->second] = &r;
    }
  }
  return out;
}

using TextPair = std::pair<absl::string_view, absl::string_view>;
using TextPairs = std::vector<std::pair<std::string, std::string>>;

// Deletes the (tenant, id) rows of `pairs` with `st`.
absl::Status DeletePairs(PgConnection& conn, const Statement& st, const TextPairs& pairs) {
  if (pairs.empty()) return absl::OkStatus();
  PgColumns c(2);
  for (const auto& [tenant, id] : pairs) {
    c[0].AddText(tenant);
    c[1].AddText(id);
  }
  return Run(conn, st, c);
}

absl::Status WriteTenants(PgConnection& conn, const CommitBatch& b) {
  if (b.tenants.empty()) return absl::OkStatus();
  PgColumns c(5);
  for (const auto& t : b.tenants) {
    c[0].AddText(t.id);
    c[1].AddText(t.name);
    c[2].AddText(t.plan);
    c[3].AddInt(Secs(t.subscription_start));
    c[4].AddInt(Secs(t.created_at));
  }
  return Run(conn, kTenants, c);
}

absl::Status WriteKeys(PgConnection& conn, const CommitBatch& b) {
  if (!b.keys.empty()) {
    PgColumns c(4);
    for (const auto& k : b.keys) {
      c[0].AddText(k.key_id);
      c[1].AddText(k.tenant_id);
      c[2].AddBytea(k.hash);
      c[3].AddInt(Secs(k.created_at));
    }
    RETURN_IF_ERROR(Run(conn, kKeys, c));
  }
  if (b.revoked_key_ids.empty()) return absl::OkStatus();
  PgArray ids;
  for (const auto& id : b.revoked_key_ids) ids.AddText(id);
  return conn.ExecPrepared(kRevoke.name, kRevoke.sql, {ids.Literal(), IntParam(Secs(absl::Now()))})
      .status();
}

absl::Status WriteOverrides(PgConnection& conn, const CommitBatch& b) {
  PgColumns set(3), clear(2);
  bool any_set = false, any_clear = false;
  for (const engine::LimitOverride* o :
       LastPerKey(b.overrides, [](const auto& o) { return TextPair(o.tenant_id, o.meter); })) {
    if (o->limit) {
      set[0].AddText(o->tenant_id);
      set[1].AddText(o->meter);
      set[2].AddInt(AsStored(*o->limit));
      any_set = true;
    } else {
      clear[0].AddText(o->tenant_id);
      clear[1].AddText(o->meter);
      any_clear = true;
    }
  }
  if (any_set) RETURN_IF_ERROR(Run(conn, kSetLimits, set));
  if (any_clear) RETURN_IF_ERROR(Run(conn, kClearLimits, clear));
  return absl::OkStatus();
}

// Absolute counter values, written before the batch's usage is added.
absl::Status WriteCounterSets(PgConnection& conn, const CommitBatch& b) {
  if (b.counter_sets.empty()) return absl::OkStatus();
  PgColumns c(4);
  // One row per counter (the last set wins): ON CONFLICT refuses a row twice.
  for (const engine::CounterRow* rp : LastPerKey(b.counter_sets, [](const auto& r) {
         return std::make_tuple(absl::string_view(r.tenant_id), absl::string_view(r.meter),
                                r.period_start);
       })) {
    const engine::CounterRow& r = *rp;
    c[0].AddText(r.tenant_id);
    c[1].AddText(r.meter);
    c[2].AddInt(Secs(r.period_start));
    c[3].AddInt(AsStored(r.value));
  }
  return Run(conn, kCounterSets, c);
}

// Per row of the counters, the hourly and the daily rollups: the sum of
// `deltas` (keys view their strings).
struct UsageSums {
  using Text = absl::string_view;
  absl::flat_hash_map<std::tuple<Text, Text, int64_t>, uint64_t> counters;
  absl::flat_hash_map<std::tuple<Text, Text, Text, int64_t>, uint64_t> hours, days;

  explicit UsageSums(const std::vector<engine::UsageDelta>& deltas) {
    for (const auto& u : deltas) {
      const int64_t hour = FloorTo(Secs(u.at), 3600);
      counters[{u.tenant_id, u.meter, Secs(u.period_start)}] += u.quantity;
      hours[{u.tenant_id, u.meter, u.channel, hour}] += u.quantity;
      days[{u.tenant_id, u.meter, u.channel, FloorTo(hour, 86400)}] += u.quantity;
    }
  }
};

// Writes `deltas` summed per row with `counters`, `hourly` and `daily`
// (statements taking the columns in the order kCounters, kHourly and kDaily
// do), so each row is written once.
absl::Status WriteUsageSums(PgConnection& conn, const std::vector<engine::UsageDelta>& deltas,
                            const Statement& counters, const Statement& hourly,
                            const Statement& daily) {
  if (deltas.empty()) return absl::OkStatus();
  const UsageSums sums(deltas);
  PgColumns c(4), h(5), d(5);
  for (const auto& [k, v] : sums.counters) {
    c[0].AddText(std::get<0>(k));
    c[1].AddText(std::get<1>(k));
    c[2].AddInt(std::get<2>(k));
    c[3].AddInt(AsStored(v));
  }
  for (const auto& [k, v] : sums.hours) {
    h[0].AddText(std::get<0>(k));
    h[1].AddText(std::get<1>(k));
    h[2].AddText(std::get<2>(k));
    h[3].AddInt(std::get<3>(k));
    h[4].AddInt(AsStored(v));
  }
  for (const auto& [k, v] : sums.days) {
    d[0].AddText(std::get<0>(k));
    d[1].AddText(DayText(std::get<3>(k)));
    d[2].AddText(std::get<1>(k));
    d[3].AddText(std::get<2>(k));
    d[4].AddInt(AsStored(v));
  }
  RETURN_IF_ERROR(Run(conn, counters, c));
  RETURN_IF_ERROR(Run(conn, hourly, h));
  return Run(conn, daily, d);
}

// The batch's usage added, then the units it gives back taken out.
absl::Status WriteUsage(PgConnection& conn, const CommitBatch& b) {
  RETURN_IF_ERROR(WriteUsageSums(conn, b.usage, kCounters, kHourly, kDaily));
  return WriteUsageSums(conn, b.given_back, kCountersTake, kHourlyTake, kDailyTake);
}

absl::Status WritePeriodCloses(PgConnection& conn, const CommitBatch& b) {
  if (b.period_closes.empty()) return absl::OkStatus();
  PgColumns move(5), limits(4);
  for (const engine::PeriodClose& c : b.period_closes) {
    move[0].AddText(c.tenant_id);
    move[1].AddInt(Secs(c.period.start));
    move[2].AddInt(Secs(c.period.end));
    move[3].AddText(c.plan);
    move[4].AddInt(Secs(c.closed_at));
    for (const auto& [meter, limit] : c.limits) {
      limits[0].AddText(c.tenant_id);
      limits[1].AddText(meter);
      limits[2].AddInt(Secs(c.period.start));
      limits[3].AddInt(AsStored(limit));
    }
  }
  RETURN_IF_ERROR(Run(conn, kCloseMove, move));
  return Run(conn, kCloseLimits, limits);
}

absl::Status WriteIdempotency(PgConnection& conn, const CommitBatch& b) {
  if (b.idempotency.empty()) return absl::OkStatus();
  PgColumns c(15);
  for (const engine::IdempotencyRecord* r :
       LastPerKey(b.idempotency, [](const auto& r) { return TextPair(r.tenant_id, r.key); })) {
    const engine::Decision& d = r->decision;
    c[0].AddText(r->tenant_id);
    c[1].AddText(r->key);
    c[2].AddInt(AsStored(r->fingerprint));
    c[3].AddInt(Secs(r->created_at));
    c[4].AddBool(d.allowed);
    c[5].AddInt(AsStored(d.requested));
    c[6].AddInt(AsStored(d.consumed));
    c[7].AddInt(AsStored(d.remaining));
    c[8].AddOptionalInt(d.limit ? std::optional<int64_t>(AsStored(*d.limit)) : std::nullopt);
    c[9].AddInt(AsStored(d.overage));
    c[10].AddInt(Secs(d.period_start));
    c[11].AddInt(Secs(d.reset_at));
    c[12].AddText(d.meter);
    c[13].AddInt(static_cast<int64_t>(d.reason));
    const std::string extra = engine::EncodeDecisionExtras(d);
    if (extra.empty()) {
      c[14].AddNull();
    } else {
      c[14].AddText(extra);
    }
  }
  return Run(conn, kIdempotency, c);
}

absl::Status WriteMessageTransitions(PgConnection& conn, const CommitBatch& b) {
  for (const engine::MessageTransition& t : b.message_transitions) {
    auto r = conn.ExecPrepared(
        kMessageTransition.name, kMessageTransition.sql,
        {TextParam(t.to), TextParam(t.reason), IntParam(absl::ToUnixMillis(t.at)),
         IntParam(t.count_attempt ? 1 : 0), TextParam(t.tenant_id), TextParam(t.id),
         TextParam(t.from), t.sent_at ? IntParam(absl::ToUnixMillis(*t.sent_at)) : PgParam(),
         t.due_at ? IntParam(absl::ToUnixMillis(*t.due_at)) : PgParam(),
         IntParam(t.count_delivery ? 1 : 0),
         t.released_at ? IntParam(absl::ToUnixMillis(*t.released_at)) : PgParam()});
    if (!r.ok()) return r.status();
    if (r->affected() == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("message ", t.id, " is not ", t.from, " any more"));
    }
  }
  return absl::OkStatus();
}

// Upserts (engine/store.h CommitBatch::messages), the last of an id only,
// then the transitions.
absl::Status WriteMessages(PgConnection& conn, const CommitBatch& b) {
  if (!b.messages.empty()) {
    PgColumns c(19);
    for (const engine::MessageRecord* m :
         LastPerKey(b.messages, [](const auto& m) { return m.id; })) {
      c[0].AddText(m->id);
      c[1].AddText(m->tenant_id);
      c[2].AddText(m->channel);
      c[3].AddText(m->to);
      c[4].AddText(m->text);
      c[5].AddText(m->status);
      c[6].AddInt(Secs(m->created_at));
      c[7].AddText(m->session_id);
      c[8].AddText(m->type);
      c[9].AddOptionalInt(OptMillis(m->send_at));
      c[10].AddOptionalInt(OptMillis(m->due_at));
      c[11].AddInt(m->seq);
      c[12].AddText(m->reason);
      c[13].AddInt(m->release_attempts);
      c[14].AddOptionalInt(OptMillis(m->released_at));
      c[15].AddOptionalInt(OptMillis(m->sent_at));
      c[16].AddInt(absl::ToUnixMillis(m->updated_at));
      c[17].AddBool(m->paced);
      c[18].AddInt(m->delivery_attempts);
    }
    RETURN_IF_ERROR(Run(conn, kMessages, c));
  }
  return WriteMessageTransitions(conn, b);
}

absl::Status WriteSessions(PgConnection& conn, const CommitBatch& b) {
  if (!b.sessions.empty()) {
    PgColumns c(13);
    for (const engine::SessionRecord* s :
         LastPerKey(b.sessions, [](const auto& s) { return TextPair(s.tenant_id, s.id); })) {
      c[0].AddText(s->tenant_id);
      c[1].AddText(s->id);
      c[2].AddText(s->phone);
      c[3].AddText(s->status);
      c[4].AddInt(Secs(s->created_at));
      c[5].AddInt(Secs(s->updated_at));
      c[6].AddOptionalInt(s->first_working_at ? std::optional<int64_t>(Secs(*s->first_working_at))
                                              : std::nullopt);
      c[7].AddInt(Secs(s->last_heartbeat));
      c[8].AddInt(s->warmup_day);
      c[9].AddInt(AsStored(s->warmup_count));
      c[10].AddInt(s->tier_level);
      c[11].AddInt(s->tier_since_ms);
      c[12].AddInt(s->tier_qualified_ms);
    }
    RETURN_IF_ERROR(Run(conn, kSessions, c));
  }
  return DeletePairs(conn, kDeleteSessions, b.deleted_sessions);
}

absl::Status WriteGroups(PgConnection& conn, const CommitBatch& b) {
  if (!b.groups.empty()) {
    PgColumns c(4);
    for (const auto& g : b.groups) {
      c[0].AddText(g.tenant_id);
      c[1].AddText(g.id);
      c[2].AddText(g.name);
      c[3].AddInt(Secs(g.created_at));
    }
    RETURN_IF_ERROR(Run(conn, kGroups, c));
  }
  return DeletePairs(conn, kDeleteGroups, b.deleted_groups);
}

absl::Status WriteKeyRateLimits(PgConnection& conn, const CommitBatch& b) {
  if (b.key_rate_limits.empty()) return absl::OkStatus();
  auto opt = [](std::optional<uint32_t> v) -> std::optional<int64_t> {
    if (!v) return std::nullopt;
    return static_cast<int64_t>(*v);
  };
  PgColumns c(4);
  for (const engine::KeyRateLimitsRecord* k :
       LastPerKey(b.key_rate_limits, [](const auto& k) { return absl::string_view(k.key_id); })) {
    c[0].AddText(k->key_id);
    c[1].AddOptionalInt(opt(k->limits.general));
    c[2].AddOptionalInt(opt(k->limits.messages));
    c[3].AddOptionalInt(opt(k->limits.sessions));
  }
  return Run(conn, kKeyRateLimits, c);
}

absl::Status WriteGauges(PgConnection& conn, const CommitBatch& b) {
  if (b.gauges.empty()) return absl::OkStatus();
  PgColumns c(3);
  for (const engine::GaugeRecord* g :
       LastPerKey(b.gauges, [](const auto& g) { return TextPair(g.tenant_id, g.meter); })) {
    c[0].AddText(g->tenant_id);
    c[1].AddText(g->meter);
    c[2].AddInt(AsStored(g->value));
  }
  return Run(conn, kGauges, c);
}

absl::Status WriteAlerts(PgConnection& conn, const CommitBatch& b) {
  if (!b.alerts.empty()) {
    PgColumns c(8);
    for (const engine::AlertRecord& a : b.alerts) {
      c[0].AddText(a.tenant_id);
      c[1].AddText(a.meter);
      c[2].AddInt(Secs(a.period_start));
      c[3].AddInt(a.threshold);
      c[4].AddInt(Secs(a.period_end));
      c[5].AddInt(AsStored(a.value));
      c[6].AddInt(AsStored(a.limit));
      c[7].AddInt(Secs(a.at));
    }
    RETURN_IF_ERROR(Run(conn, kAlerts, c));
  }
  if (b.resolved_alerts.empty()) return absl::OkStatus();
  PgColumns c(5);
  for (const engine::AlertRecord& a : b.resolved_alerts) {
    c[0].AddText(a.tenant_id);
    c[1].AddText(a.meter);
    c[2].AddInt(Secs(a.period_start));
    c[3].AddInt(a.threshold);
    c[4].AddInt(Secs(a.resolved_at.value_or(a.at)));
  }
  return Run(conn, kResolveAlerts, c);
}

constexpr Statement kWebhooks{
    "w_webhooks",
    "INSERT INTO webhooks(id,tenant_id,url,events,secret,created_at,deleted_at) "
    "SELECT * FROM unnest($1::text[],$2::text[],$3::text[],$4::text[],$5::text[],$6::bigint[],"
    "$7::bigint[]) ON CONFLICT(id) DO UPDATE SET deleted_at=excluded.deleted_at"};
// A new delivery of a (webhook, event) that has one already is skipped.
constexpr Statement kDeliveries{
    "w_deliveries",
    "INSERT INTO deliveries(id,webhook_id,tenant_id,event_id,state,attempts,budget_from,"
    "next_at_ms,last_status,last_error,created_at,finished_at) SELECT * FROM unnest($1::text[],"
    "$2::text[],$3::text[],$4::text[],$5::text[],$6::int[],$7::int[],$8::bigint[],$9::int[],"
    "$10::text[],$11::bigint[],$12::bigint[]) AS r(id,webhook_id,tenant_id,event_id,state,"
    "attempts,budget_from,next_at_ms,last_status,last_error,created_at,finished_at) "
    "WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE "
    "d.webhook_id=r.webhook_id AND d.event_id=r.event_id AND d.id<>r.id) ON CONFLICT(id) DO "
    "UPDATE SET state=excluded.state,attempts=excluded.attempts,budget_from=excluded.budget_from,"
    "next_at_ms=excluded.next_at_ms,"
    "last_status=excluded.last_status,last_error=excluded.last_error,"
    "finished_at=excluded.finished_at"};
constexpr Statement kAttempts{
    "w_attempts",
    "INSERT INTO delivery_attempts(delivery_id,attempt,at,status,error,took_ms) SELECT * FROM "
    "unnest($1::text[],$2::int[],$3::bigint[],$4::int[],$5::text[],$6::bigint[]) "
    "ON CONFLICT DO NOTHING"};
constexpr Statement kRelayed{"w_relayed",
                             "UPDATE outbox SET relayed=true WHERE id=ANY($1::text[])"};

absl::Status WriteWebhooksAndDeliveries(PgConnection& conn, const CommitBatch& b) {
  if (!b.webhooks.empty()) {
    PgColumns c(7);
    for (const engine::WebhookRecord* w :
         LastPerKey(b.webhooks, [](const auto& w) { return w.id; })) {
      c[0].AddText(w->id);
      c[1].AddText(w->tenant_id);
      c[2].AddText(w->url);
      c[3].AddText(absl::StrJoin(w->events, ","));
      c[4].AddText(w->secret);
      c[5].AddInt(Secs(w->created_at));
      c[6].AddOptionalInt(OptSecs(w->deleted_at));
    }
    RETURN_IF_ERROR(Run(conn, kWebhooks, c));
  }
  if (b.deliveries.empty()) return absl::OkStatus();
  PgColumns c(12);
  for (const engine::DeliveryRecord* d :
       LastPerKey(b.deliveries, [](const auto& d) { return d.id; })) {
    c[0].AddText(d->id);
    c[1].AddText(d->webhook_id);
    c[2].AddText(d->tenant_id);
    c[3].AddText(d->event_id);
    c[4].AddText(d->state);
    c[5].AddInt(d->attempts);
    c[6].AddInt(d->budget_from);
    c[7].AddInt(absl::ToUnixMillis(d->next_at));
    c[8].AddInt(d->last_status);
    c[9].AddText(d->last_error);
    c[10].AddInt(Secs(d->created_at));
    c[11].AddOptionalInt(OptSecs(d->finished_at));
  }
  return Run(conn, kDeliveries, c);
}

absl::Status WriteOutbox(PgConnection& conn, const CommitBatch& b) {
  RETURN_IF_ERROR(WriteWebhooksAndDeliveries(conn, b));
  if (!b.attempts.empty()) {
    PgColumns c(6);
    for (const engine::AttemptRecord& a : b.attempts) {
      c[0].AddText(a.delivery_id);
      c[1].AddInt(a.attempt);
      c[2].AddInt(Secs(a.at));
      c[3].AddInt(a.status);
      c[4].AddText(a.error);
      c[5].AddInt(a.took_ms);
    }
    RETURN_IF_ERROR(Run(conn, kAttempts, c));
  }
  if (b.relayed_events.empty()) return absl::OkStatus();
  PgArray ids;
  for (const std::string& id : b.relayed_events) ids.AddText(id);
  return conn.ExecPrepared(kRelayed.name, kRelayed.sql, {ids.Literal()}).status();
}

// Events go to the outbox once per id (a second one is ignored).
absl::Status WriteEvents(PgConnection& conn, const CommitBatch& b) {
  RETURN_IF_ERROR(WriteAlerts(conn, b));
  if (b.events.empty()) return absl::OkStatus();
  PgColumns c(7);
  for (const auto& e : b.events) {
    c[0].AddText(e.id.empty() ? "evt_" + engine::RandomHex(12) : e.id);
    c[1].AddText(e.tenant_id);
    c[2].AddText(e.type);
    c[3].AddText(e.subject);
    c[4].AddText(e.detail);
    c[5].AddText(engine::EncodeEventFields(e.fields));
    c[6].AddInt(Secs(e.at));
  }
  return Run(conn, kEvents, c);
}

// Records the batch's entry ids; kAlreadyExists when one was recorded before
// (the caller rolls the whole batch back). Forgets ids past their retention.
absl::Status WriteAppliedEntries(PgConnection& conn, const CommitBatch& b) {
  if (b.applied_entries.empty()) return absl::OkStatus();
  absl::flat_hash_set<absl::string_view> distinct(b.applied_entries.begin(),
                                                  b.applied_entries.end());
  PgArray ids;
  for (absl::string_view id : distinct) ids.AddText(id);
  const int64_t now = Secs(absl::Now());
  auto r = conn.ExecPrepared(kApplied.name, kApplied.sql, {ids.Literal(), IntParam(now)});
  if (!r.ok()) return r.status();
  if (r->affected() != static_cast<int64_t>(distinct.size()) ||
      distinct.size() != b.applied_entries.size()) {
    return absl::AlreadyExistsError("an entry of this batch was applied before");
  }
  const int64_t forget_before = now - absl::ToInt64Seconds(engine::kAppliedEntryRetention);
  return conn.ExecPrepared(kForgetApplied.name, kForgetApplied.sql, {IntParam(forget_before)})
      .status();
}

absl::Status WriteFailOpen(PgConnection& conn, const CommitBatch& b) {
  if (!b.fail_open.empty()) {
    PgColumns c(10);
    for (const engine::FailOpenCharge& f : b.fail_open) {
      c[0].AddText(f.id);
      c[1].AddText(f.tenant_id);
      c[2].AddText(f.meter);
      c[3].AddText(f.channel);
      c[4].AddInt(Secs(f.period_start));
      c[5].AddInt(Secs(f.period_end));
      c[6].AddInt(Secs(f.at));
      c[7].AddInt(Secs(f.now));
      c[8].AddInt(AsStored(f.units));
      c[9].AddBool(f.api_call);
    }
    RETURN_IF_ERROR(Run(conn, kFailOpen, c));
  }
  if (b.reconciled_fail_open.empty()) return absl::OkStatus();
  PgArray ids;
  for (const std::string& id : b.reconciled_fail_open) ids.AddText(id);
  return conn.ExecPrepared(kReconciled.name, kReconciled.sql, {ids.Literal()}).status();
}

// The last state of each change; applied ones set their tenant's plan (the
// last applied change per tenant).
absl::Status WritePlanChanges(PgConnection& conn, const CommitBatch& b) {
  if (b.subscription_changes.empty()) return absl::OkStatus();
  PgColumns c(10), plans(2);
  absl::flat_hash_map<std::string, std::string> plan_of;
  for (const engine::SubscriptionChange* p :
       LastPerKey(b.subscription_changes, [](const auto& p) { return p.id; })) {
    c[0].AddText(p->id);
    c[1].AddText(p->tenant_id);
    c[2].AddText(p->actor);
    c[3].AddText(p->from_plan);
    c[4].AddText(p->to_plan);
    c[5].AddText(p->kind);
    c[6].AddInt(p->amount_cents);
    c[7].AddInt(Secs(p->requested_at));
    c[8].AddInt(Secs(p->effective_at));
    c[9].AddText(p->state);
  }
  for (const engine::SubscriptionChange& p : b.subscription_changes) {
    if (p.state == "applied") plan_of[p.tenant_id] = p.to_plan;
  }
  RETURN_IF_ERROR(Run(conn, kPlanChanges, c));
  if (plan_of.empty()) return absl::OkStatus();
  for (const auto& [tenant, plan] : plan_of) {
    plans[0].AddText(tenant);
    plans[1].AddText(plan);
  }
  return Run(conn, kSetPlans, plans);
}

// The last state of each add-on (its end, once cancelled).
absl::Status WriteAddons(PgConnection& conn, const CommitBatch& b) {
  if (b.addons.empty()) return absl::OkStatus();
  PgColumns c(7);
  for (const engine::AddonRecord* a : LastPerKey(b.addons, [](const auto& a) { return a.id; })) {
    c[0].AddText(a->id);
    c[1].AddText(a->tenant_id);
    c[2].AddText(a->meter);
    c[3].AddInt(AsStored(a->units));
    c[4].AddInt(a->price_cents);
    c[5].AddInt(Secs(a->started_at));
    if (a->ends_at) {
      c[6].AddInt(Secs(*a->ends_at));
    } else {
      c[6].AddNull();
    }
  }
  return Run(conn, kAddons, c);
}

// Bought top-ups, then what decisions drew of them (summed per top-up: an
// UPDATE changes a row once).
absl::Status WriteTopups(PgConnection& conn, const CommitBatch& b) {
  if (!b.topups.empty()) {
    PgColumns c(8);
    for (const engine::TopupRecord& t : b.topups) {
      c[0].AddText(t.id);
      c[1].AddText(t.tenant_id);
      c[2].AddText(t.meter);
      c[3].AddInt(AsStored(t.units));
      c[4].AddInt(AsStored(t.drawn));
      c[5].AddInt(t.price_cents);
      c[6].AddInt(absl::ToUnixMillis(t.bought_at));
      if (t.expires_at == absl::InfiniteFuture()) {
        c[7].AddNull();
      } else {
        c[7].AddInt(absl::ToUnixMillis(t.expires_at));
      }
    }
    RETURN_IF_ERROR(Run(conn, kTopups, c));
  }
  if (b.topup_draws.empty()) return absl::OkStatus();
  std::map<std::pair<std::string, std::string>, uint64_t> sums;
  for (const engine::TopupDraw& d : b.topup_draws) sums[{d.tenant_id, d.id}] += d.units;
  PgColumns c(3);
  for (const auto& [key, units] : sums) {
    c[0].AddText(key.first);
    c[1].AddText(key.second);
    c[2].AddInt(AsStored(units));
  }
  return Run(conn, kTopupDraws, c);
}

// Each new reservation, after its tenant's reservations expired by then are
// purged.
absl::Status WriteNewReservations(PgConnection& conn, const CommitBatch& b) {
  if (b.reservations.empty()) return absl::OkStatus();
  PgColumns purge(2), c(6);
  for (const engine::ReservationRecord* r :
       LastPerKey(b.reservations, [](const auto& r) { return r.tenant_id + "\n" + r.id; })) {
    purge[0].AddText(r->tenant_id);
    purge[1].AddInt(absl::ToUnixMillis(r->created_at));
    c[0].AddText(r->tenant_id);
    c[1].AddText(r->id);
    c[2].AddText(r->meter);
    c[3].AddInt(AsStored(r->units));
    c[4].AddInt(absl::ToUnixMillis(r->created_at));
    c[5].AddInt(absl::ToUnixMillis(r->expires_at));
  }
  RETURN_IF_ERROR(Run(conn, kPurgeReservations, purge));
  return Run(conn, kReservations, c);
}

// Ended reservations out, after the new ones are in: one made and ended in a
// batch is gone after it.
absl::Status WriteReservations(PgConnection& conn, const CommitBatch& b) {
  RETURN_IF_ERROR(WriteNewReservations(conn, b));
  if (b.ended_reservations.empty()) return absl::OkStatus();
  PgColumns c(2);
  for (const auto& [tenant, id] : b.ended_reservations) {
    c[0].AddText(tenant);
    c[1].AddText(id);
  }
  return Run(conn, kEndReservations, c);
}

}  // namespace

absl::Status WriteBatch(PgConnection& conn, const CommitBatch& b) {
  RETURN_IF_ERROR(WriteAppliedEntries(conn, b));
  RETURN_IF_ERROR(WriteTenants(conn, b));
  RETURN_IF_ERROR(WriteKeys(conn, b));
  RETURN_IF_ERROR(WriteOverrides(conn, b));
  RETURN_IF_ERROR(WriteCounterSets(conn, b));
  RETURN_IF_ERROR(WriteUsage(conn, b));
  RETURN_IF_ERROR(WritePeriodCloses(conn, b));
  RETURN_IF_ERROR(WriteIdempotency(conn, b));
  RETURN_IF_ERROR(WriteMessages(conn, b));
  RETURN_IF_ERROR(WriteSessions(conn, b));
  RETURN_IF_ERROR(WriteGroups(conn, b));
  RETURN_IF_ERROR(WriteKeyRateLimits(conn, b));
  RETURN_IF_ERROR(WriteGauges(conn, b));
  RETURN_IF_ERROR(WriteFailOpen(conn, b));
  RETURN_IF_ERROR(WritePlanChanges(conn, b));
  RETURN_IF_ERROR(WriteAddons(conn, b));
  RETURN_IF_ERROR(WriteReservations(conn, b));
  RETURN_IF_ERROR(WriteTopups(conn, b));
  RETURN_IF_ERROR(WriteEvents(conn, b));
  return WriteOutbox(conn, b);
}

}  // namespace quotum::store::postgres
