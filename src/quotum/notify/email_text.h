// The e-mail an event becomes: a subject a person can act on, and the
// event's fields as plain text.
#pragma once

#include "quotum/engine/store.h"
#include "quotum/notify/smtp_sender.h"

namespace quotum::notify {

/// The message for `event` to `to`; its Message-ID is the event id.
Email EmailOf(const engine::EventRecord& event, const std::string& to);

}  // namespace quotum::notify
