#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace quotum {

/// True for identifiers the API accepts for tenants, sessions and groups:
/// 1-64 characters of [A-Za-z0-9_.-], not starting with '.' or '-'.
bool IsValidId(absl::string_view id);

}  // namespace quotum
