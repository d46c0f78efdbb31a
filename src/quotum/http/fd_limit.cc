#include "quotum/http/fd_limit.h"

#include <sys/resource.h>

#include <algorithm>

namespace quotum::http {

FileLimit RaiseOpenFileLimit() {
  FileLimit out;
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return out;
  out.soft_before = out.soft = lim.rlim_cur;
  out.hard = lim.rlim_max;
  const rlim_t target = std::min<rlim_t>(lim.rlim_max, rlim_t{1} << 20);
  if (lim.rlim_cur < target) {
    rlimit raised = lim;
    raised.rlim_cur = target;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) out.soft = target;
  }
  return out;
}

int DefaultMaxConnections(uint64_t soft_limit) {
  const uint64_t usable =
      soft_limit > kReservedDescriptors + 16 ? soft_limit - kReservedDescriptors : 16;
  return static_cast<int>(std::min<uint64_t>(usable, 1 << 24));
}

}  // namespace quotum::http
