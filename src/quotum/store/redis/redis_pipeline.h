// Coalesces concurrent commands onto a few Redis connections: each worker
// thread takes every command queued while its previous batch was in flight
// and sends them as one pipeline (one write, one round trip), then runs
// their completions. Under load, one instance keeps Redis busy with few
// connections and no thread waits on a round trip per request.
#pragma once

#include <deque>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "quotum/base/mutex.h"
#include "quotum/store/redis/redis_connection.h"

namespace quotum::store::redis {

struct RedisPipelineOptions {
  RedisClientOptions client;
  /// Worker threads, each with its own connection.
  int workers = 2;
  /// Commands sent in one pipeline at most.
  size_t max_batch = 256;
};

class RedisPipeline {
 public:
  using Done = absl::AnyInvocable<void(absl::StatusOr<RedisReply>)>;

  /// Starts the workers; they connect on their first batch (and again after
  /// a transport failure). `script` answers NOSCRIPT: a command whose reply
  /// is NOSCRIPT is sent again after SCRIPT LOAD of `script`.
  RedisPipeline(RedisPipelineOptions options, std::string script);
  /// Fails what is still queued (kUnavailable) and joins the workers.
  ~RedisPipeline();

  /// Queues one command; `done` runs on a worker thread with its reply, or
  /// kUnavailable when Redis could not be reached or timed out (error replies
  /// are replies).
  void Send(std::vector<std::string> argv, Done done);

 private:
  struct Pending {
    std::vector<std::string> argv;
    Done done;
  };
  void Work();
  /// Sends `batch` on `conn` (connecting it if needed) and completes each entry.
  void RunBatch(std::optional<RedisConnection>& conn, std::vector<Pending>& batch);
  /// Sends again, one by one after loading the script, the commands whose reply was NOSCRIPT.
  void RetryNoScript(RedisConnection& conn, std::vector<Pending>& batch,
                     std::vector<absl::StatusOr<RedisReply>>& replies);

  const RedisPipelineOptions opts_;
  const std::string script_;
  Mutex mu_;
  CondVar wake_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace quotum::store::redis
