// Writes a data directory with N tenants (default 1,000,000) in the shape of
// SPEC §5's memory target: every tenant has an API key, values for all ten
// built-in meters, and 30 days of daily buckets for each counter. The seven
// counters get this period's counter and today's hourly and daily buckets;
// the gauges get what the engine derives them from: one working session
// (sessions_active), one monitored group (groups_active) and a stored
// subscribers value. The current state goes through the real
// SQLite store in large group commits; the 29 earlier days of daily buckets,
// which no start-up reads, are inserted straight into usage_daily in key order.
// With CLOSED_PERIODS=N (environment), every subscription began N months
// before this one and each tenant also has its N closed monthly periods: as
// period close leaves them, in usage_aggregates (CLOSED_IN=aggregates, the
// default), or as they were before period close existed, in counters
// (CLOSED_IN=counters), which start-up scans.
// bench/million.sh then times `quotum serve` starting on it and reads its RSS.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "quotum/core/catalog.h"
#include "quotum/engine/api_keys.h"
#include "quotum/store/sqlite/db.h"
#include "quotum/store/sqlite/sqlite_store.h"

namespace {

constexpr long kBatch = 20'000;
constexpr int kDays = 30;

int Fail(absl::string_view what) {
  std::fprintf(stderr, "%.*s\n", static_cast<int>(what.size()), what.data());
  return 1;
}

// Zero-padded, so that numeric order is the key order of every table.
std::string TenantId(long i) { return absl::StrFormat("tenant-%07d", i); }

// The closed periods to write (CLOSED_PERIODS) and where (CLOSED_IN).
struct ClosedPeriods {
  int count = 0;
  bool in_counters = false;
};

ClosedPeriods ClosedPeriodsFromEnvironment() {
  ClosedPeriods c;
  if (const char* n = std::getenv("CLOSED_PERIODS")) c.count = std::atoi(n);
  if (const char* in = std::getenv("CLOSED_IN")) c.in_counters = std::string(in) == "counters";
  return c;
}

// The tenants [first, last)'s closed periods, month by month before `start`.
absl::Status WriteClosedPeriods(quotum::store::sqlite::Db& db, const ClosedPeriods& closed,
                                const std::vector<std::string>& sorted_counters, long first,
                                long last, absl::Time start) {
  if (closed.count == 0) return absl::OkStatus();
  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::CivilMonth month = absl::ToCivilMonth(start, utc);
  auto insert =
      db.Prepare(closed.in_counters ? "INSERT INTO counters(tenant_id,meter,period_start,value) "
                                      "VALUES(?1,?2,?3,?5)"
                                    : "INSERT INTO usage_aggregates(tenant_id,meter,period_start,"
                                      "period_end,value,limit_value,plan,closed_at) "
                                      "VALUES(?1,?2,?3,?4,?5,NULL,'pro',?4)");
  if (!insert.ok()) return insert.status();
  for (long i = first; i < last; ++i) {
    const std::string id = TenantId(i);
    for (const auto& meter : sorted_counters) {
      for (int k = closed.count; k >= 1; --k) {
        const absl::Time from = absl::FromCivil(month - k, utc);
        const absl::Time to = absl::FromCivil(month - k + 1, utc);
        insert->Bind(1, id).Bind(2, meter).Bind(3, absl::ToUnixSeconds(from));
        insert->Bind(4, absl::ToUnixSeconds(to)).Bind(5, static_cast<int64_t>((i + k) % 997));
        if (absl::Status s = insert->Run(); !s.ok()) return s;
      }
    }
  }
  return absl::OkStatus();
}

// The channel a meter's usage is recorded under: messages carry one.
std::string ChannelOf(const std::string& meter) {
  return meter.rfind("messages_", 0) == 0 ? "whatsapp" : "";
}

// The daily buckets of the days before today of the tenants [first, last).
absl::Status WriteEarlierDays(quotum::store::sqlite::Stmt& insert,
                              const std::vector<std::string>& earlier_days,
                              const std::vector<std::string>& sorted_counters, long first,
                              long last) {
  for (long i = first; i < last; ++i) {
    const std::string id = TenantId(i);
    for (const auto& day : earlier_days) {
      for (const auto& meter : sorted_counters) {
        insert.Bind(1, id).Bind(2, day).Bind(3, meter).Bind(4, ChannelOf(meter));
        insert.Bind(5, static_cast<int64_t>((i + day.back()) % 997));
        if (absl::Status s = insert.Run(); !s.ok()) return s;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DATA_DIR [TENANTS]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const std::string path = dir + "/quotum.db";
  const long tenants = argc > 2 ? std::atol(argv[2]) : 1'000'000;

  std::vector<std::string> counters;
  size_t meters = 0;
  for (const auto& m : quotum::Catalog::BuiltinMeters()) {
    ++meters;
    if (m.kind == quotum::MeterKind::kCounter) counters.push_back(m.name);
  }
  // usage_daily's key is (tenant, day, meter, channel): write meters in name order.
  std::vector<std::string> sorted_counters = counters;
  std::sort(sorted_counters.begin(), sorted_counters.end());

  auto store = quotum::store::sqlite::SqliteStore::Open({path, false});
  if (!store.ok()) return Fail(store.status().message());
  auto history = quotum::store::sqlite::Db::Open(path);
  if (!history.ok()) return Fail(history.status().message());
  if (auto s = (*history)->Exec("PRAGMA cache_size=-1048576"); !s.ok()) return Fail(s.message());
  auto insert = (*history)->Prepare(
      "INSERT INTO usage_daily(tenant_id,day,meter,channel,value) VALUES(?,?,?,?,?)");
  if (!insert.ok()) return Fail(insert.status().message());

  const absl::Time now = absl::Now();
  const absl::TimeZone utc = absl::UTCTimeZone();
  // Subscriptions anchored on the 1st of this month: every tenant's current
  // period starts there, so the loaded counters are live ones.
  const absl::Time start = absl::FromCivil(absl::ToCivilMonth(now, utc), utc);
  const ClosedPeriods closed = ClosedPeriodsFromEnvironment();
  const absl::Time subscribed = absl::FromCivil(absl::ToCivilMonth(now, utc) - closed.count, utc);
  const absl::CivilDay today = absl::ToCivilDay(now, utc);
  std::vector<std::string> earlier_days;  // the 29 days before today, oldest first
  for (int d = kDays - 1; d >= 1; --d) earlier_days.push_back(absl::FormatCivilTime(today - d));

  long daily_rows = 0;
  for (long first = 0; first < tenants; first += kBatch) {
    const long last = std::min(tenants, first + kBatch);
    quotum::engine::CommitBatch b;
    for (long i = first; i < last; ++i) {
      const std::string id = TenantId(i);
      b.tenants.push_back({id, id, i % 10 == 0 ? "business" : "pro", subscribed, start});
      b.keys.push_back({absl::StrFormat("key_%07d", i), id,
                        quotum::engine::HashSecret(absl::StrCat("qk_bench_", i)), start, false});
      for (size_t m = 0; m < counters.size(); ++m) {
        b.usage.push_back({id, counters[m], ChannelOf(counters[m]), start, now,
                           static_cast<uint64_t>((i + m) % 997)});
      }
      b.sessions.push_back(
          {id, "main", absl::StrFormat("+4479%08d", i), "working", start, now, start, now, -1, 0});
      b.groups.push_back({id, absl::StrFormat("1203%011d@g.us", i), "Customers", start});
      b.gauges.push_back({id, quotum::meters::kSubscribers, static_cast<uint64_t>(i % 5000)});
    }
    if (absl::Status s = (*store)->Commit(b); !s.ok()) return Fail(s.message());

    if (auto s = (*history)->Exec("BEGIN"); !s.ok()) return Fail(s.message());
    if (absl::Status s = WriteEarlierDays(*insert, earlier_days, sorted_counters, first, last);
        !s.ok()) {
      return Fail(s.message());
    }
    daily_rows += (last - first) * static_cast<long>(earlier_days.size() * sorted_counters.size());
    if (absl::Status s = WriteClosedPeriods(**history, closed, sorted_counters, first, last, start);
        !s.ok()) {
      return Fail(s.message());
    }
    if (auto s = (*history)->Exec("COMMIT"); !s.ok()) return Fail(s.message());
  }
  std::printf(
      "wrote %ld tenants to %s: %zu meters each, %d days of daily buckets (%ld rows before "
      "today), %d closed periods%s\n",
      tenants, path.c_str(), meters, kDays, daily_rows, closed.count,
      closed.count == 0    ? ""
      : closed.in_counters ? " in counters"
                           : " in usage_aggregates");
  return 0;
}
