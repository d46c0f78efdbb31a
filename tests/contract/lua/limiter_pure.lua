-- Test-only entry (tests/contract), appended to LimiterLuaLibrary(): one pure
-- call of rl_decide that touches no key, for step-by-step comparison with the
-- C++ ratelimit::Decide.
--
-- ARGV: algorithm, limit, window_ns, now_s, now_n, cost, state ("" = missing).
-- Returns {allowed, remaining, reset_ns, retry_ns, next_state, ttl_ms}.
local state = false
if ARGV[7] ~= "" then state = ARGV[7] end
local allowed, remaining, reset_ns, retry_ns, next_state, ttl_ms =
  rl_decide(ARGV[1], ARGV[2], ARGV[3], state, ARGV[4], ARGV[5], ARGV[6])
return {allowed, remaining, reset_ns, retry_ns, next_state, ttl_ms}
