#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "quotum/base/mutex.h"
#include "quotum/engine/engine.h"
#include "quotum/http/pushed_body.h"
#include "quotum/http/usage_stream_events.h"

namespace quotum::http {

struct StreamLimits {
  /// Open streams per tenant, and in all, on this instance.
  int per_tenant = 4;
  int total = 256;
  /// How often the tenants with streams are read and their changes sent:
  /// a change is on the wire within about `tick` (coalesced meanwhile).
  absl::Duration tick = absl::Milliseconds(250);
  /// A stream that sent nothing for this long gets a heartbeat comment.
  absl::Duration heartbeat = absl::Seconds(15);
};

/// The live usage streams of one instance (GET /api/v2/usage/stream): one
/// thread reads, every tick, the usage of each tenant that has streams (once
/// per tenant, however many streams it has, off the HTTP threads, on either
/// backend) and pushes the meters that changed to its streams.
class UsageStreams {
 public:
  /// Reads a tenant's usage now (counters and limits; no forecasts).
  using ReadUsage = std::function<absl::StatusOr<engine::UsageView>(const engine::Principal&)>;

  UsageStreams(const Catalog* catalog, ReadUsage read, StreamLimits limits = {});
  /// Stop().
  ~UsageStreams();
  UsageStreams(const UsageStreams&) = delete;
  UsageStreams& operator=(const UsageStreams&) = delete;

  /// A new stream of who's tenant (who.key_id empty: the admin's, capped
  /// apart from the tenant's own). Its first event comes at once: the whole
  /// state, or, when `last_event_id` names one of the last states sent, the
  /// meters changed since (nothing if none). 429
  /// too_many_streams at a cap; 503 once EndAll was called.
  absl::StatusOr<std::shared_ptr<PushedBody>> Open(const engine::Principal& who,
                                                   std::string last_event_id);
  /// Ends every stream (their final chunk is sent) and refuses new ones: the
  /// server is draining.
  void EndAll();
  /// EndAll, and waits for the thread to finish its last read.
  void Stop();
  /// Streams open now.
  int open() const;

 private:
  struct Stream {
    std::shared_ptr<PushedBody> body;
    std::string last_event_id;  ///< until its first event is decided
    bool started = false;       ///< its first event is decided
    absl::Time last_write;
    bool admin = false;  ///< opened by the admin reading as the tenant
  };
  struct TenantStreams {
    engine::Principal who;
    std::vector<Stream> streams;
    /// The states last sent, newest last (at most kRecentStates): a client
    /// coming back with one of their ids gets what changed since.
    std::deque<StreamSnapshot> recent;
    /// When its last stream went away; a tenant with no stream is not read,
    /// and is forgotten after kKeepIdle.
    absl::Time idle_since = absl::InfiniteFuture();
  };
  static constexpr size_t kRecentStates = 8;
  static constexpr absl::Duration kKeepIdle = absl::Seconds(60);

  void Run();
  /// Reads every tenant with streams (or only those in `only`) and serves them.
  void Tick(const absl::flat_hash_set<std::string>* only);
  /// Sends t's streams what changed since the last state (a new stream: the
  /// whole state, or what changed since the state it names), heartbeats, and
  /// drops the streams whose client left.
  void Serve(TenantStreams& t, const absl::StatusOr<StreamSnapshot>& now, absl::Time at)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  /// The first event of a stream that resumes from `last_event_id`.
  static std::string FirstEvent(const TenantStreams& t, const StreamSnapshot& now,
                                std::string_view last_event_id);
  /// Forgets t's streams whose client left or whose body ended, and those
  /// whose reply was never written (only this holds the body).
  void DropFinished(TenantStreams& t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartThread() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Catalog* const catalog_;
  const ReadUsage read_;
  const StreamLimits limits_;
  mutable Mutex mu_;
  CondVar wake_;
  absl::flat_hash_map<std::string, TenantStreams> tenants_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  /// Tenants with a stream just opened: the thread serves them without
  /// waiting for the tick (and reads no other tenant for them).
  absl::flat_hash_set<std::string> newcomers_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;  // started by the first Open
};

}  // namespace quotum::http
