#pragma once

#include <optional>
#include <string_view>

#include "quotum/http/reply.h"
#include "quotum/http/server.h"

namespace quotum::http {

/// Refuses a parsed request whose framing or credentials are ambiguous, before
/// it is routed (RFC 9112 §6.1, §3.2; RFC 9110 §7.2). Returns the error reply
/// (with `close_connection` set where the rest of the stream cannot be
/// trusted), or nullopt when the request may go on:
/// - Transfer-Encoding: a coding other than one final `chunked` → 501 (close);
///   `chunked` not last, in HTTP/1.0, or with Content-Length → 400 (close);
/// - HTTP/1.1 without exactly one Host → 400;
/// - two Authorization or two X-API-Key fields, or both that name different
///   keys → 400.
std::optional<Reply> CheckRequest(const Request& req);

/// The framing part of CheckRequest (Transfer-Encoding, Host), which needs
/// only the header: the server runs it before it reads a body.
std::optional<Reply> CheckFraming(const Request& req);

/// The token of "Authorization: Bearer <token>", or empty for another scheme.
std::string_view BearerTokenOf(const Request& req);

}  // namespace quotum::http
