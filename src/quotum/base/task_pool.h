#pragma once

#include <pthread.h>

#include <deque>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "quotum/base/mutex.h"

namespace quotum {

/// A few threads (named `name`, e.g. `quotum-read`) that run work which may
/// block on a store or on Redis, so that the threads which hand it over (the
/// HTTP I/O threads, the Redis pipeline's) go on meanwhile. Tasks run in the
/// order given, on whichever thread is free.
class TaskPool {
 public:
  /// `name` (at most 15 characters) names the threads for `top -H`.
  TaskPool(size_t threads, const char* name) {
    for (size_t i = 0; i < threads; ++i) {
      threads_.emplace_back([this, name] {
        pthread_setname_np(pthread_self(), name);
        Work();
      });
    }
  }
  TaskPool(const TaskPool&) = delete;
  TaskPool& operator=(const TaskPool&) = delete;
  ~TaskPool() { Stop(); }

  /// Runs every task already given and joins the threads; from then on Run
  /// runs its task on the caller's thread. Call from outside the pool.
  void Stop() {
    {
      MutexLock lock(&mu_);
      stopping_ = true;
    }
    wake_.SignalAll();
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

  /// Queues `task`; once the pool is stopping, runs it on the caller's thread.
  void Run(absl::AnyInvocable<void()> task) {
    {
      MutexLock lock(&mu_);
      if (!stopping_) {
        tasks_.push_back(std::move(task));
        wake_.Signal();
        return;
      }
    }
    task();
  }

 private:
  void Work() {
    for (;;) {
      absl::AnyInvocable<void()> task;
      {
        MutexLock lock(&mu_);
        while (tasks_.empty() && !stopping_) wake_.Wait(&mu_);
        if (tasks_.empty()) return;  // stopping, and nothing left to run
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  Mutex mu_;
  CondVar wake_;
  std::deque<absl::AnyInvocable<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace quotum
