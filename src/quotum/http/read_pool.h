#pragma once

#include <deque>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "quotum/base/mutex.h"

namespace quotum::http {

/// A few threads (named `name`, e.g. `quotum-read`) that run the handlers of routes which may
/// block on a store or on Redis, so that the I/O threads go on serving the
/// other connections meanwhile. Tasks run in the order given, on whichever
/// thread is free. Stopping runs every task already given, then joins.
class ReadPool {
 public:
  /// `name` (at most 15 characters) names the threads for `top -H`.
  ReadPool(size_t threads, const char* name);
  ReadPool(const ReadPool&) = delete;
  ReadPool& operator=(const ReadPool&) = delete;
  ~ReadPool();

  /// Queues `task`; after the pool has stopped, runs it on the caller's thread.
  void Run(absl::AnyInvocable<void()> task);

 private:
  void Work();

  Mutex mu_;
  CondVar wake_;
  std::deque<absl::AnyInvocable<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace quotum::http
