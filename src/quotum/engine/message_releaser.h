// The message releaser: takes the messages whose turn has come
// (Store::DueMessages, in queue order) and moves each on through
// Engine::ReleaseMessage: a queued one is admitted (charged), a released
// one handed to the provider. A tenant whose quota or credits refused a
// message waits for capacity (rechecked every `recheck`, or at once on
// Wake), and its later queued messages wait behind it (FIFO per tenant); a
// session whose warm-up cap refused one, or that is not working, waits
// with all its messages; a session whose messages rule holds a hand-off
// waits with its released messages only (its queued ones are still
// admitted as capacity allows, and handed off in order after). Scale-out:
// runs only on the instance holding the "message-queue" lease.
#pragma once

#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "quotum/base/mutex.h"
#include "quotum/core/clock.h"
#include "quotum/engine/engine.h"
#include "quotum/engine/store.h"

namespace quotum::engine {

struct ReleaserOptions {
  absl::Duration every = absl::Milliseconds(250);  ///< a round when idle
  size_t batch = 2000;                             ///< messages read per round
  size_t per_session = 100;                        ///< of which from one session
  /// A tenant refused for capacity is tried again after this (capacity may
  /// appear on another instance: an upgrade, an add-on, a period reset).
  absl::Duration recheck = absl::Seconds(2);
  /// A message left releasing this long belongs to a releaser that died.
  absl::Duration stale_after = absl::Seconds(30);
  std::string instance_name;  ///< the lease holder's name (scale-out)
  /// How long the queue's lease is held without renewal: a holder that dies
  /// (kill -9) hands the queue on after this. It must outlast one hand-off
  /// (the provider's timeout), or another instance could hand the same
  /// message over while the first still waits for its answer.
  absl::Duration lease_ttl = absl::Seconds(5);
};

class MessageReleaser {
 public:
  MessageReleaser(Store* store, Engine* engine, const Clock* clock, ReleaserOptions options);
  ~MessageReleaser();
  void Start();
  void Stop();
  /// One round; returns how many messages it released. Exposed for tests.
  absl::StatusOr<size_t> RunOnce();
  /// Capacity may have appeared for `tenant_id`: its messages are tried in
  /// the next round, which starts at once. Thread-safe.
  void Wake(const std::string& tenant_id);

 private:
  /// What one round did: messages released, and whether it read a full batch.
  struct Round {
    size_t released = 0;
    bool more = false;
  };
  absl::StatusOr<Round> RunRound();
  /// What one page of due messages did: rows read, messages moved on (sent
  /// or released), where it ended, and whether it stopped early (stopping,
  /// or the lease lost).
  struct Page {
    size_t size = 0;
    size_t moved = 0;
    std::optional<DuePosition> last;
    bool stopped = false;
  };
  /// Releases what may go of the page of due messages after `after`,
  /// counting sends in `round`.
  absl::StatusOr<Page> RunPage(absl::Time now, const std::optional<DuePosition>& after,
                               Round& round);
  /// Pages of due messages one round reads at most when every one waits.
  static constexpr int kPagesPerRound = 8;
  /// True when `m` must wait this round (its tenant or session waits).
  bool Waits(const MessageRecord& m, absl::Time now) const;
  /// True when the hand-offs of m's session wait.
  bool HandOffWaits(const MessageRecord& m, absl::Time now) const;
  /// Records what `r` makes wait, from `now`.
  void Note(const MessageRecord& m, const ReleaseOutcome& r, absl::Time now);
  void Loop();
  bool Stopping() const;

  Store* store_;
  Engine* engine_;
  const Clock* clock_;
  const ReleaserOptions opts_;
  mutable Mutex mu_;
  CondVar wake_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  /// Tenants woken since the last round (their wait is over).
  std::vector<std::string> woken_tenants_ ABSL_GUARDED_BY(mu_);
  /// The round's own (its thread only): until when a tenant's queued
  /// messages (capacity), a "tenant/session"'s messages (warm-up, idle), or
  /// a session's hand-offs (its messages rule) wait.
  absl::flat_hash_map<std::string, absl::Time> tenant_waits_;
  absl::flat_hash_map<std::string, absl::Time> session_waits_;
  absl::flat_hash_map<std::string, absl::Time> handoff_waits_;
  std::thread thread_;
};

}  // namespace quotum::engine
