#pragma once

#include <cstdint>

namespace quotum::http {

/// The process's open-file limit before and after RaiseOpenFileLimit.
struct FileLimit {
  uint64_t soft_before = 0;
  uint64_t soft = 0;  ///< in force now
  uint64_t hard = 0;
};

/// Raises the soft RLIMIT_NOFILE to the hard limit (capped at 1 << 20) and
/// reports both. Never lowers it; on failure reports the limits unchanged.
FileLimit RaiseOpenFileLimit();

/// Descriptors kept back from connections for the store, its journals and
/// the process's own files.
inline constexpr uint64_t kReservedDescriptors = 64;

/// The default `max_connections` for a soft open-file limit: the limit less
/// the reserve, and never below 16.
int DefaultMaxConnections(uint64_t soft_limit);

}  // namespace quotum::http
