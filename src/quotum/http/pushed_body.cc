#include "quotum/http/pushed_body.h"

#include <utility>

namespace quotum::http {

void PushedBody::WakeLocked(std::function<void()>& to_call) {
  if (!wake_ || wake_pending_) return;
  wake_pending_ = true;
  to_call = wake_;
}

bool PushedBody::Push(std::string_view piece) {
  std::function<void()> wake;
  {
    MutexLock lock(&mu_);
    if (gone_ || ended_) return false;
    if (queued_.size() + piece.size() > kMaxQueuedBytes) {
      overflowed_ = gone_ = true;
      queued_.clear();
      return false;
    }
    queued_.append(piece);
    WakeLocked(wake);
  }
  if (wake) wake();
  return true;
}

void PushedBody::End() {
  std::function<void()> wake;
  {
    MutexLock lock(&mu_);
    if (gone_ || ended_) return;
    ended_ = true;
    WakeLocked(wake);
  }
  if (wake) wake();
}

bool PushedBody::finished() const {
  MutexLock lock(&mu_);
  return gone_ || ended_;
}

bool PushedBody::overflowed() const {
  MutexLock lock(&mu_);
  return overflowed_;
}

void PushedBody::Attach(std::function<void()> wake) {
  std::function<void()> now;
  {
    MutexLock lock(&mu_);
    wake_ = std::move(wake);
    // Something queued before the connection attached: wake at once.
    if (!queued_.empty() || ended_) WakeLocked(now);
  }
  if (now) now();
}

std::string PushedBody::Take(bool& ended) {
  MutexLock lock(&mu_);
  wake_pending_ = false;
  std::string out;
  out.swap(queued_);
  ended = ended_;
  return out;
}

void PushedBody::Detach() {
  MutexLock lock(&mu_);
  gone_ = true;
  queued_.clear();
  wake_ = nullptr;
}

}  // namespace quotum::http
