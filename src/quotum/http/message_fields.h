// The fields a message's routes share: {session, to, text, channel, type}.
#pragma once

#include "absl/status/statusor.h"
#include "quotum/core/catalog.h"
#include "quotum/engine/engine.h"
#include "quotum/http/json_input.h"

namespace quotum::http {

/// "channel": when given it must name a channel; absent is "" (the default).
absl::StatusOr<std::string> ChannelField(const Fields& f);
/// "type" of a message (what it costs in credits): text (the default),
/// media or template.
absl::StatusOr<MessageType> TypeField(const Fields& f);
/// A send's fields: session, and `to` when `with_to`, are required (400
/// missing_field); text is at most 64 KiB.
absl::StatusOr<engine::HeldSend> ReadSendFields(const Fields& f, bool with_to);

}  // namespace quotum::http
