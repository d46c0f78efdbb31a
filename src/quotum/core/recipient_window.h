// The recipients one session messaged over the last 7 days, each with when it
// last did: an exact distinct count (no sketch) over the rolling 24 h a
// messaging tier caps, and over the 7 days its step up is judged on. About
// 95 bytes per recipient kept (docs/rate-limits.md). Not thread-safe (its owner's lock guards it).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/btree_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/strings/string_view.h"

namespace quotum {

class RecipientWindow {
 public:
  /// Moves the window to `now_ms` (never backwards; an earlier instant is
  /// taken as the latest seen): recipients last messaged at or before
  /// now - 24 h leave the 24 h count, at or before now - 7 d are forgotten.
  /// Returns the instant the window stands at.
  int64_t Advance(int64_t now_ms);

  /// When `recipient` was last messaged, if within the 7 days kept.
  std::optional<int64_t> LastSent(absl::string_view recipient) const;
  /// Whether `recipient` counts in the 24 h window now (after Advance).
  bool Counted(absl::string_view recipient) const;

  /// Records a message to `recipient` at the window's instant (Advance
  /// first); returns the record's number (each Record's is new).
  uint64_t Record(absl::string_view recipient);
  /// Undoes Record number `record`: `recipient` goes back to having been
  /// last messaged at `previous` (nullopt: not kept), unless a later Record
  /// replaced it.
  void Restore(absl::string_view recipient, uint64_t record, std::optional<int64_t> previous);

  /// The unique recipients over 24 h and 7 d as they would be at `now_ms`
  /// (at least the window's instant), without moving the window.
  std::pair<uint64_t, uint64_t> CountsAt(int64_t now_ms) const;

  size_t unique_24h() const { return recent_.size(); }
  size_t unique_7d() const { return recent_.size() + older_.size(); }
  /// When the oldest recipient counted now was messaged (nullopt: none).
  std::optional<int64_t> OldestCounted() const;
  int64_t now_ms() const { return now_ms_; }

 private:
  using Entry = std::pair<int64_t, const std::string*>;
  /// Files the recipient of `node` under `at` in the set its age puts it in.
  void File(int64_t at, const std::string* name);
  void Unfile(int64_t at, const std::string* name);

  /// Recipient -> when it was last messaged. Nodes are stable: the sets
  /// below point at their keys.
  struct Last {
    int64_t at = 0;
    uint64_t record = 0;  ///< the Record that set it (0: restored)
  };
  absl::node_hash_map<std::string, Last> last_;
  uint64_t records_ = 0;
  /// (last sent, recipient) within 24 h, and within 7 d but not 24 h.
  absl::btree_set<Entry> recent_;
  absl::btree_set<Entry> older_;
  int64_t now_ms_ = INT64_MIN;
};

}  // namespace quotum
