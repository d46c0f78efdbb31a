#pragma once

// Mutexes that ThreadSanitizer can see. Debian's Abseil is built without
// -fsanitize=thread, so TSan misses absl::Mutex's synchronisation and reports
// every access it guards; these wrap the standard (pthread) primitives, which
// TSan intercepts. They carry Abseil's thread-safety attributes, so
// ABSL_GUARDED_BY and friends keep working under Clang's -Wthread-safety.

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <shared_mutex>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

namespace quotum {

/// An exclusive lock (std::mutex). Not recursive.
class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

/// An exclusive lock in 4 bytes (std::mutex takes 40), for objects there are
/// millions of, such as tenants. A futex word: 0 free, 1 held, 2 held with
/// waiters (Drepper, "Futexes Are Tricky", mutex 2). ThreadSanitizer sees its
/// acquire and release through the atomic. Not recursive; no CondVar waits on it.
class ABSL_LOCKABLE CompactMutex {
 public:
  CompactMutex() = default;
  CompactMutex(const CompactMutex&) = delete;
  CompactMutex& operator=(const CompactMutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    uint32_t seen = 0;
    if (state_.compare_exchange_strong(seen, 1, std::memory_order_acquire)) return;
    // Held sections are short (a decision): wait a little before sleeping,
    // which costs the holder a futex wake and this thread a context switch.
    for (int spin = 0; spin < kSpins && seen != 2; ++spin) {
      CpuRelax();
      seen = state_.load(std::memory_order_relaxed);
      if (seen == 0 && state_.compare_exchange_strong(seen, 1, std::memory_order_acquire)) return;
    }
    if (seen != 2) seen = state_.exchange(2, std::memory_order_acquire);
    while (seen != 0) {
      Futex(FUTEX_WAIT_PRIVATE, 2);
      seen = state_.exchange(2, std::memory_order_acquire);
    }
  }
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    if (state_.exchange(0, std::memory_order_release) == 2) Futex(FUTEX_WAKE_PRIVATE, 1);
  }

 private:
  static constexpr int kSpins = 100;
  static void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  void Futex(int op, uint32_t value) {
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&state_), op, value, nullptr, nullptr, 0);
  }
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));
  std::atomic<uint32_t> state_{0};
};

/// A reader-writer lock (std::shared_mutex), for state read far more often
/// than written. Costs more than Mutex on an exclusive lock.
class ABSL_LOCKABLE SharedMutex {
 public:
  SharedMutex() = default;
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  void ReaderLock() ABSL_SHARED_LOCK_FUNCTION() { mu_.lock_shared(); }
  void ReaderUnlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock_shared(); }

 private:
  std::shared_mutex mu_;
};

/// Holds `*mu` (a Mutex, CompactMutex or SharedMutex) exclusively for its scope:
/// `MutexLock lock(&mu_);`.
template <typename M>
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(M* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  M* const mu_;
};
template <typename M>
MutexLock(M*) -> MutexLock<M>;

/// Holds `*mu` shared for its scope: `ReaderMutexLock lock(&mu_);`.
class ABSL_SCOPED_LOCKABLE ReaderMutexLock {
 public:
  explicit ReaderMutexLock(SharedMutex* mu) ABSL_SHARED_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->ReaderLock();
  }
  ~ReaderMutexLock() ABSL_UNLOCK_FUNCTION() { mu_->ReaderUnlock(); }
  ReaderMutexLock(const ReaderMutexLock&) = delete;
  ReaderMutexLock& operator=(const ReaderMutexLock&) = delete;

 private:
  SharedMutex* const mu_;
};

/// A condition variable (std::condition_variable) used with a Mutex. Unlike
/// absl::Mutex::Await, nothing re-checks a condition on unlock: whoever changes
/// state a waiter waits on must Signal or SignalAll. Waits can wake spuriously,
/// so callers wait in a loop on their condition.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  /// Releases `*mu`, blocks until woken, and takes `*mu` again.
  void Wait(Mutex* mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(*mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();
  }
  /// As Wait, but gives up after `timeout`; true when it timed out.
  bool WaitWithTimeout(Mutex* mu, absl::Duration timeout) ABSL_EXCLUSIVE_LOCKS_REQUIRED(*mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const bool timed_out =
        cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout)) == std::cv_status::timeout;
    lock.release();
    return timed_out;
  }
  /// Wakes one waiter, if any. Cheap when nobody waits.
  void Signal() { cv_.notify_one(); }
  /// Wakes every waiter.
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace quotum
