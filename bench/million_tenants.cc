// Writes a data directory with N tenants (default 1,000,000), each with an API
// key and this period's counters for messages_sent, messages_received and
// api_calls (with their hourly and daily buckets), through the real SQLite
// store in large group commits. bench/million.sh then times `quotum serve`
// starting on it and reads its RSS.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "quotum/engine/api_keys.h"
#include "quotum/store/sqlite/sqlite_store.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DATA_DIR [TENANTS]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const long tenants = argc > 2 ? std::atol(argv[2]) : 1'000'000;
  auto store = quotum::store::sqlite::SqliteStore::Open({dir + "/quotum.db", false});
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", std::string(store.status().message()).c_str());
    return 1;
  }
  const absl::Time now = absl::Now();
  // Subscriptions anchored on the 1st of this month: every tenant's current
  // period starts there, so the loaded counters are live ones.
  const absl::CivilMonth month = absl::ToCivilMonth(now, absl::UTCTimeZone());
  const absl::Time start = absl::FromCivil(month, absl::UTCTimeZone());
  constexpr long kBatch = 20'000;
  for (long first = 0; first < tenants; first += kBatch) {
    quotum::engine::CommitBatch b;
    for (long i = first; i < std::min(tenants, first + kBatch); ++i) {
      const std::string id = absl::StrCat("tenant-", i);
      b.tenants.push_back({id, id, i % 10 == 0 ? "business" : "pro", start, start});
      b.keys.push_back({absl::StrCat("key_", i), id,
                        quotum::engine::HashSecret(absl::StrCat("qk_bench_", i)), start, false});
      for (const char* meter : {"messages_sent", "messages_received", "api_calls"}) {
        b.usage.push_back({id, meter, "whatsapp", start, now, static_cast<uint64_t>(i % 997)});
      }
    }
    absl::Status s = (*store)->Commit(b);
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
      return 1;
    }
  }
  std::printf("wrote %ld tenants to %s/quotum.db\n", tenants, dir.c_str());
  return 0;
}
