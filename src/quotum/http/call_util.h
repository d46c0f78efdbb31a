#pragma once

#include <string>

#include "quotum/http/json_input.h"
#include "quotum/http/reply.h"
#include "quotum/http/server.h"

namespace quotum::http {

/// The request's Idempotency-Key header ("" when it has none).
inline std::string IdempotencyKeyOf(const Request& req) {
  auto k = req["Idempotency-Key"];
  return std::string(k.data(), k.size());
}

}  // namespace quotum::http

/// Evaluates a StatusOr expression into `lhs`; on error answers `call` with
/// the mapped error reply and returns from the handler.
#define ASSIGN_OR_REPLY(lhs, expr, call)                                        \
  auto lhs##_or = (expr);                                                       \
  if (!lhs##_or.ok()) return (call).respond(ReplyForStatus(lhs##_or.status())); \
  auto lhs = std::move(*lhs##_or)

/// Parses the request body of `call` into the JSON object `lhs`, backed by a
/// stack arena that lives as long as `lhs`; on error answers and returns.
#define PARSE_BODY_OR_REPLY(lhs, call) \
  JsonArena lhs##_arena;               \
  ASSIGN_OR_REPLY(lhs, ParseObject((call).req.body(), lhs##_arena.storage()), call)
