// Leaves journal records in a data directory that its store has not folded,
// as a crash under load can: bench/million.sh (JOURNAL_RECORDS=N) then times
// `quotum serve` replaying them on top of the million tenants. Writes N
// records to journal 0's first file, numbered from the store's mark onward,
// each a consume of one message for a tenant of million_tenants.cc's naming
// (tenant-0000000 ... tenant-<TENANTS-1>, spread over all of them), the
// shape of a journalled POST /v2/quota/consume without an idempotency key.
//   quotum_journal_fill DATA_DIR RECORDS TENANTS
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "quotum/engine/journal.h"
#include "quotum/engine/journal_codec.h"
#include "quotum/store/sqlite/sqlite_store.h"

namespace {

int Fail(absl::string_view what) {
  std::fprintf(stderr, "%.*s\n", static_cast<int>(what.size()), what.data());
  return 1;
}

// One journalled consume of a message for `tenant` without an idempotency
// key (as bench/peers.sh sends them): its usage row.
quotum::engine::CommitBatch OneConsume(const std::string& tenant, absl::Time start,
                                       absl::Time now) {
  quotum::engine::CommitBatch b;
  b.usage.push_back({tenant, "messages_sent", "whatsapp", start, now, 1});
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s DATA_DIR RECORDS TENANTS\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const long records = std::atol(argv[2]);
  const long tenants = std::max(1L, std::atol(argv[3]));
  auto store = quotum::store::sqlite::SqliteStore::Open({dir + "/quotum.db", false});
  if (!store.ok()) return Fail(store.status().message());
  auto marks = (*store)->JournalMarks();
  if (!marks.ok()) return Fail(marks.status().message());
  uint64_t seq = 0;
  for (const auto& m : *marks) {
    if (m.journal == 0) seq = m.seq;
  }
  const absl::Time now = absl::Now();
  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::Time start = absl::FromCivil(absl::ToCivilMonth(now, utc), utc);
  std::string bytes;
  for (long i = 0; i < records; ++i) {
    // A stride coprime with the count visits tenants all over the table.
    const long t = (i * 7919L) % tenants;
    quotum::engine::AppendJournalRecord(
        ++seq, OneConsume(absl::StrFormat("tenant-%07d", t), start, now), bytes);
  }
  // Journal 0's other file is emptied: records left there above the mark (an
  // unclean stop) would share these sequence numbers.
  std::ofstream(dir + "/" + quotum::engine::JournalFileName(0, 1), std::ios::trunc);
  const std::string path = dir + "/" + quotum::engine::JournalFileName(0, 0);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out.flush()) return Fail(absl::StrCat("cannot write ", path));
  std::printf("wrote %ld journal records (%zu bytes) to %s, sequences %llu..%llu\n", records,
              bytes.size(), path.c_str(), static_cast<unsigned long long>(seq - records + 1),
              static_cast<unsigned long long>(seq));
  return 0;
}
