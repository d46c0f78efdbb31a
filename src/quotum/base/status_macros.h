// RETURN_IF_ERROR(expr): returns the absl::Status `expr` gives from the
// enclosing function unless it is OK. For functions that return
// absl::Status, or absl::StatusOr<T> (built from the status).
#pragma once

#include "absl/status/status.h"

#ifndef RETURN_IF_ERROR
#define RETURN_IF_ERROR(expr)  \
  do {                         \
    absl::Status _qs = (expr); \
    if (!_qs.ok()) return _qs; \
  } while (0)
#endif
