#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace quotum::notify {

/// The X-Quotum-Signature header value of a delivery:
/// "t=<unix_seconds>,v1=<hex>" where <hex> is the lowercase hex
/// HMAC-SHA256 keyed with `secret` over "<unix_seconds>." + body (the exact
/// bytes sent). A receiver recomputes it from the raw body and the t= value,
/// and rejects a t= too far from its own clock (replays). Thread-safe.
std::string SignatureHeader(std::string_view secret, int64_t unix_seconds, std::string_view body);

/// A new signing secret: "whsec_" + 64 lowercase hex digits (32 bytes from
/// OpenSSL's CSPRNG). Aborts the process if the CSPRNG fails rather than
/// return a guessable secret. Thread-safe.
std::string NewWebhookSecret();

}  // namespace quotum::notify
