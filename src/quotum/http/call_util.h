#pragma once

#include "quotum/http/reply.h"

/// Evaluates a StatusOr expression into `lhs`; on error answers `call` with
/// the mapped error reply and returns from the handler.
#define ASSIGN_OR_REPLY(lhs, expr, call)                                        \
  auto lhs##_or = (expr);                                                       \
  if (!lhs##_or.ok()) return (call).respond(ReplyForStatus(lhs##_or.status())); \
  auto lhs = std::move(*lhs##_or)
