// Sessions and groups as lease.lua keeps them in Redis: one JSON object per
// record (times in Unix ms), and back. See lua/lease.lua's "Records".
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "quotum/engine/store.h"
#include "quotum/engine/usage_facts.h"

namespace quotum::store::redis {

/// {p, s, c, u, f (when set), h}; the warm-up fields are not kept (the
/// warm-up counts live in their own keys).
std::string EncodeSession(const engine::SessionRecord& s);
/// The session `id` of `tenant_id` that `text` encodes.
absl::StatusOr<engine::SessionRecord> DecodeSession(std::string_view tenant_id, std::string_view id,
                                                    std::string_view text);

/// {n, c}.
std::string EncodeGroup(const engine::GroupRecord& g);
absl::StatusOr<engine::GroupRecord> DecodeGroup(std::string_view tenant_id, std::string_view id,
                                                std::string_view text);

/// The change a facts entry of lease.lua records: its fields k (kind), id,
/// r (record or value) and ev (event type, or empty).
absl::StatusOr<engine::LeaseChange> DecodeLeaseChange(std::string_view tenant_id,
                                                      std::string_view kind, std::string_view id,
                                                      std::string_view record,
                                                      std::string_view event);

}  // namespace quotum::store::redis
