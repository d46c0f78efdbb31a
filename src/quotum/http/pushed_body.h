#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "quotum/base/mutex.h"

namespace quotum::http {

/// A response body written by another thread, a piece at a time, for as long
/// as the client stays: a Server-Sent Events stream. Thread-safe; shared by
/// the producer and the connection (Reply::pushed).
///
/// Contract: the producer Pushes pieces and may End the body; Push answers
/// false once the connection is gone, and then the producer drops it. The
/// server Attaches a wake-up that it is called with (from the producer's
/// thread, at most once per burst of pushes) whenever something is queued
/// and the server has taken everything before; the server then Takes.
class PushedBody {
 public:
  /// What may wait unwritten: a client that stops reading is cut off past it.
  static constexpr size_t kMaxQueuedBytes = 256 * 1024;

  /// Queues `piece`; false when the connection is gone (nothing is queued),
  /// or when the client has let more than kMaxQueuedBytes pile up: the body
  /// is then over (overflowed) and the server closes the connection.
  bool Push(std::string_view piece);
  /// Ends the body after what is queued; later pushes are refused.
  void End();
  /// True once the connection closed (Detach) or End was called.
  bool finished() const;
  /// True once a Push found more than kMaxQueuedBytes waiting.
  bool overflowed() const;

  /// Server side: `wake` is called (on any thread, outside the lock) when a
  /// piece or the end is queued; it must only post work to the connection.
  void Attach(std::function<void()> wake);
  /// Server side: takes everything queued; `ended` is set once End was
  /// called and nothing is left after this. Re-arms the wake-up.
  std::string Take(bool& ended);
  /// Server side: the connection closed; pushes are refused from now on.
  void Detach();

 private:
  /// Calls the wake-up if one is attached and not yet pending.
  void WakeLocked(std::function<void()>& to_call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;
  std::string queued_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  bool gone_ ABSL_GUARDED_BY(mu_) = false;
  bool overflowed_ ABSL_GUARDED_BY(mu_) = false;
  /// A wake-up was called and the server has not Taken since.
  bool wake_pending_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void()> wake_ ABSL_GUARDED_BY(mu_);
};

}  // namespace quotum::http
