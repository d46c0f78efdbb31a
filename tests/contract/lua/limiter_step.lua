-- Test-only entry (tests/contract), appended to LimiterLuaLibrary() (arith.lua
-- and limiter.lua): one rate-limit step on a stored state, as the real
-- decision script will do it.
--
-- KEYS[1]: the state key. ARGV: algorithm, limit, window_ns, now_s, now_n,
-- cost[, ttl_scale]. Reads the state from KEYS[1]; when the step is allowed,
-- stores the next state there with PX ttl_ms * ttl_scale (default 1). The
-- scale lets a test whose simulated clock runs far ahead of the real one
-- keep states alive across a slow machine; the TTL itself is checked against
-- the simulated clock by the pure entry's tests.
-- Returns {allowed, remaining, reset_ns, retry_ns, next_state, ttl_ms}.
local state = redis.call("GET", KEYS[1])
local allowed, remaining, reset_ns, retry_ns, next_state, ttl_ms =
  rl_decide(ARGV[1], ARGV[2], ARGV[3], state, ARGV[4], ARGV[5], ARGV[6])
if allowed == 1 then
  local scale = tonumber(ARGV[7] or "1")
  redis.call("SET", KEYS[1], next_state, "PX", string.format("%d", ttl_ms * scale))
end
return {allowed, remaining, reset_ns, retry_ns, next_state, ttl_ms}
