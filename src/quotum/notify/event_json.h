#pragma once

#include <string>

#include "quotum/engine/store.h"

namespace quotum::notify {

/// The JSON body a webhook delivers for `e`: one object with "id", "type",
/// "tenant", "at" (RFC 3339 UTC, whole seconds, e.g. "2024-05-01T12:00:00Z"),
/// "subject", "detail", then each of `e.fields` under its name, in order. A
/// field marked `number` is a JSON integer when its value is a decimal
/// integer that fits 64 bits (signed, or unsigned when positive) and a
/// string otherwise. A field whose name repeats a common key or an earlier
/// field is left out (the first one wins). Serialized compactly; pure.
std::string EventJson(const quotum::engine::EventRecord& e);

}  // namespace quotum::notify
