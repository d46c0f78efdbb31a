// T("2026-11-08T10:00:00Z"): an instant written as tests write them.
#pragma once

#include "absl/time/time.h"
#include "quotum/core/billing_period.h"

namespace quotum {

/// The instant `rfc3339` names; a malformed literal is a bug in the test and
/// ends it (the StatusOr's value is taken unchecked).
inline absl::Time T(const char* rfc3339) { return *ParseRfc3339(rfc3339); }

}  // namespace quotum
