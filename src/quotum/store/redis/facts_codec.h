// The facts of a decision as the text decide.lua appends to a tenant's
// stream (field "f"), and back. JSON, so a message's text may hold anything.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "quotum/engine/usage_facts.h"

namespace quotum::store::redis {

/// The stored text of `f`. Times are kept to the second (the cold store's
/// resolution).
std::string EncodeFacts(const engine::UsageFacts& f);

/// The facts `text` encodes; kInvalidArgument when it is not what
/// EncodeFacts writes.
absl::StatusOr<engine::UsageFacts> DecodeFacts(std::string_view text);

}  // namespace quotum::store::redis
