#include "quotum/http/read_pool.h"

#include <pthread.h>

#include <utility>

namespace quotum::http {

ReadPool::ReadPool(size_t threads, const char* name) {
  for (size_t i = 0; i < threads; ++i) {
    threads_.emplace_back([this, name] {
      pthread_setname_np(pthread_self(), name);
      Work();
    });
  }
}

ReadPool::~ReadPool() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  wake_.SignalAll();
  for (std::thread& t : threads_) t.join();
}

void ReadPool::Run(absl::AnyInvocable<void()> task) {
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

void ReadPool::Work() {
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

}  // namespace quotum::http
