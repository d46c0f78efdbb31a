// Event ids and the stored form of an event's typed fields.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "quotum/engine/store.h"

namespace quotum::engine {

/// A deterministic event id: "evt_" + 24 hex digits of SHA-256 over `parts`
/// (separated so that ("ab","c") and ("a","bc") differ). The same parts give
/// the same id on every instance, so an event a retry makes again is kept once.
std::string EventId(std::initializer_list<std::string_view> parts);

/// session.lease_expired's id: one per session and last heartbeat, so every
/// instance (and a retried drain) that stops the same lease names one event.
std::string LeaseExpiredEventId(std::string_view tenant_id, std::string_view session_id,
                                absl::Time last_heartbeat);

/// True when `webhook` asked for events of `type` (or for every type, "*").
bool WebhookWants(const WebhookRecord& webhook, std::string_view type);

/// `fields` as one text column: per field "s", "n" or "j", the name, US (0x1F),
/// the value, RS (0x1E). Names and values never hold those bytes
/// (EventField's contract).
std::string EncodeEventFields(const std::vector<EventField>& fields);

/// The fields `text` encodes; kInvalidArgument when it is not what
/// EncodeEventFields writes.
absl::StatusOr<std::vector<EventField>> DecodeEventFields(std::string_view text);

}  // namespace quotum::engine
