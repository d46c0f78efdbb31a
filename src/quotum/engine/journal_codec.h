// The journal's on-disk record: the effects of one decision that an I/O
// thread acknowledged once they were written to its journal file (journal.h).
//
// Layout, little-endian: u32 payload length, u32 CRC-32 of the sequence and
// the payload, u64 sequence, then the payload (a version byte, then the usage
// deltas, idempotency records, top-up draws and alerts, each list led by its
// u32 count). A record that ends past the end of the file, or whose checksum
// does not match, is a torn tail: it and everything after it are dropped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "quotum/engine/store.h"

namespace quotum::engine {

/// True when `b` holds only what a journal record can carry: usage deltas,
/// idempotency records, top-up draws and alerts (records that commute, so
/// journals folded in any order against each other give the same store).
bool IsJournalable(const CommitBatch& b);

/// Appends one framed record of `b`'s journalable records to `out`.
void AppendJournalRecord(uint64_t seq, const CommitBatch& b, std::string& out);

struct JournalReplay {
  /// The records with a sequence above the caller's mark, merged.
  CommitBatch batch;
  uint64_t first_seq = 0;  ///< the lowest sequence above the mark read (0 when none)
  uint64_t last_seq = 0;   ///< the highest sequence read (0 when none)
  size_t records = 0;      ///< records read above the mark
  size_t good_bytes = 0;   ///< bytes read, up to a torn tail (all of them when none)
  bool torn = false;       ///< a torn or corrupt record ended the read
  bool more = false;       ///< the read stopped at max_rows with bytes left
};

/// Reads the records in `bytes` in order, stopping at a torn tail or once
/// the records above `mark` read so far hold `max_rows` usage rows (or are
/// that many records; one record at least); those are merged into
/// `into.batch`.
void ReadJournalRecords(absl::string_view bytes, uint64_t mark, JournalReplay& into,
                        size_t max_rows = SIZE_MAX);

/// The lengths of the four journalable lists of `b` (usage, idempotency,
/// top-up draws, alerts), as MoveJournalRecords takes them.
void JournalListSizes(const CommitBatch& b, size_t (&out)[4]);

/// Moves the journalable records of `from` to the end of `to`'s lists; with
/// `keep`, only those past the first keep[i] of each list (in
/// JournalListSizes' order), which stay in `from`.
void MoveJournalRecords(CommitBatch& from, CommitBatch& to, const size_t (&keep)[4] = {0, 0, 0, 0});

}  // namespace quotum::engine
