#pragma once

#include <string_view>

namespace quotum::store::redis {

/// src/quotum/store/redis/lua/arith.lua then limiter.lua, concatenated (each
/// preceded by a "-- <file name>" line): the library a decision script is
/// appended to, in one EVAL/EVALSHA body. It defines top-level locals only
/// (rl_decide and its ar_* helpers) and returns nothing.
std::string_view LimiterLuaLibrary();

/// src/quotum/store/redis/lua/decide.lua: the decision script, appended to
/// the library (RedisLedger's script body).
std::string_view DecideLuaText();

/// src/quotum/store/redis/lua/lease.lua: the session and group script,
/// appended to the library (RedisLedger::RunLease).
std::string_view LeaseLuaText();

}  // namespace quotum::store::redis
