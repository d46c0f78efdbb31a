-- lease.lua: one session, group or subscribers operation of a tenant, decided
-- with its rate checks all or nothing (RedisLedger::RunLease; arith.lua and
-- limiter.lua come before it in the same body). Redis holds the live state of
-- every instance's sessions and groups; each change is appended to the
-- tenant's facts stream in the same call, with the api_call the operation
-- counts, so the cold store follows (engine/usage_facts.h, LeaseChange). The
-- rules mirror engine/sessions.cc, the embedded mode's.
--
-- KEYS (every one hash-tagged with the tenant):
--   1 the baseline mark, "2" once the tenant's sessions and groups are here
--   2 the facts stream               3 the api_calls period counter
--   4 sessions: HASH id -> record    5 working sessions' leases: ZSET id -> expiry (Unix ms)
--   6 groups: HASH id -> record      7 gauges: HASH meter -> value
--   8.. one limiter state per rate check, in order; then (8 + n, 9 + n) the
--     session's messaging tier recipients and level (decide.lua), which a
--     delete removes (placeholders for other operations)
-- ARGV:
--   1 op: cs create session, ss set status, hb heartbeat, ds delete session,
--     qr poll a QR code, cg create group, dg delete group, sg set the
--     subscribers gauge; reads (no rates, no api_call): ls sessions, lg groups
--   2, 3 now as Unix seconds and nanoseconds; "" reads Redis TIME
--   4 the session or group id, 5 the phone, status, group name or gauge value
--   6 the lease TTL (ms), 7 the gauge's limit ("" = unlimited), 8 the gauge
--   is in shadow mode ("1"), 9 when the api_calls counter expires (Unix ms),
--   10 the api_call's facts (facts_codec.h), 11 n rate checks, then 5 fields
--   each: algorithm, limit, window_ns, cost, shadow (as decide.lua)
-- Records (JSON): a session {p phone, s status, c created, u updated,
--   f first working (absent until then), h last heartbeat}; a group {n name,
--   c created}; times in Unix ms.
-- Reply: {kind, gauge after (before, when its limit refused), soonest lease
--   expiry (ms, 0 = none), refused (1-based, 0 = none), shadow bits (bit 30:
--   the gauge's), raised (1: one more working session or group), four fields
--   per rate check (as decide.lua), then id, record pairs: the record
--   changed (the deleted one), or every one read}
--   kinds: 0 done, 1 no such id, 2 the id exists, 3 refused (by the rate
--   check `refused`, else by the gauge's limit), 5 no baseline (nothing done)
-- Stream entries: c 0, a api_call counted ("1"/"0"), ok "1", f ARGV[10], and
--   for a change k (s session, sd session deleted, g group, gd group
--   deleted, v gauge), id, r (record or value); a lease that ran out is a
--   session change with ev "session.lease_expired".

local A, K = ARGV, KEYS
local MAX_COUNTER = 9007199254740991
local op, id, arg = A[1], A[4], A[5]
if redis.call("GET", K[1]) ~= "2" then return {5} end
local now_s, now_n = A[2], A[3]
if now_s == "" then
  local t = redis.call("TIME")
  now_s, now_n = t[1], t[2] * 1000
end
local now_ms = tonumber(now_s) * 1000 + math.floor(tonumber(now_n) / 1000000)

local function append(kind, key, record, api_call, event)
  local entry = {"c", "0", "a", api_call and "1" or "0", "ok", "1", "f", A[10]}
  if kind then
    entry[#entry + 1], entry[#entry + 2], entry[#entry + 3], entry[#entry + 4] = "k", kind, "id", key
    if record then entry[#entry + 1], entry[#entry + 2] = "r", record end
    if event then entry[#entry + 1], entry[#entry + 2] = "ev", event end
  end
  redis.call("XADD", K[2], "*", unpack(entry))
end

-- Leases that ran out stop counting, once, whoever looks first.
for _, sid in ipairs(redis.call("ZRANGEBYSCORE", K[5], "-inf", now_ms)) do
  redis.call("ZREM", K[5], sid)
  local raw = redis.call("HGET", K[4], sid)
  if raw then
    local r = cjson.decode(raw)
    r.s, r.u = "stopped", now_ms
    raw = cjson.encode(r)
    redis.call("HSET", K[4], sid, raw)
    append("s", sid, raw, false, "session.lease_expired")
  end
end

local function soonest_expiry()
  local first = redis.call("ZRANGE", K[5], 0, 0, "WITHSCORES")
  return first[2] and tonumber(first[2]) or 0
end

if op == "ls" or op == "lg" then
  local reply = {0, 0, soonest_expiry(), 0, 0, 0}
  for _, v in ipairs(redis.call("HGETALL", op == "ls" and K[4] or K[6])) do reply[#reply + 1] = v end
  return reply
end

-- The id must exist, or (to create it) must not.
local groups = op == "cg" or op == "dg"
local raw = op ~= "sg" and redis.call("HGET", groups and K[6] or K[4], id) or false
if op == "cs" or op == "cg" then
  if raw then return {2} end
elseif op ~= "sg" and not raw then
  return {1}
end
local r = raw and cjson.decode(raw) or {}

-- The rate checks, as decide.lua decides them.
local reply, refused, bits, writes = {0, 0, 0, 0, 0, 0}, 0, 0, {}
local n = tonumber(A[11])
for i = 1, n do
  local a = 6 + 5 * i -- ARGV[a + 1 .. a + 5]: this check's five fields
  local ok, remaining, reset, retry, next_state, ttl =
    rl_decide(A[a + 1], A[a + 2], A[a + 3], redis.call("GET", K[7 + i]), now_s, now_n, A[a + 4])
  if ok == 1 then
    writes[#writes + 1], writes[#writes + 2], writes[#writes + 3] = 7 + i, next_state, ttl
  elseif A[a + 5] == "1" then
    bits = bits + 2 ^ (i - 1)
  elseif refused == 0 then
    refused = i
  end
  reply[3 + 4 * i], reply[4 + 4 * i], reply[5 + 4 * i], reply[6 + 4 * i] = ok, remaining, reset, retry
end

-- The gauge: one more working session or group, or the subscribers' value.
local gauge, raise = 0, false
if op == "ss" then
  raise, gauge = arg == "working" and r.s ~= "working", redis.call("ZCARD", K[5])
elseif op == "cg" then
  raise, gauge = true, redis.call("HLEN", K[6])
elseif op == "sg" then
  gauge = tonumber(redis.call("HGET", K[7], "subscribers") or "0")
end
local gauge_refused = false
if refused == 0 and A[7] ~= "" then
  local limit = tonumber(A[7])
  local over = (raise and gauge >= limit) or
    (op == "sg" and tonumber(arg) > limit and tonumber(arg) > gauge)
  if over and A[8] == "1" then
    bits = bits + 2 ^ 30
  elseif over then
    gauge_refused = true
  end
end

-- Every operation that got this far counts its api_call.
local calls = redis.call("INCRBY", K[3], 1)
if calls == 1 then redis.call("PEXPIREAT", K[3], A[9]) end
local counted = calls <= MAX_COUNTER
if not counted then redis.call("DECRBY", K[3], 1) end
reply[4], reply[5] = refused, bits
if refused > 0 or gauge_refused then
  append(nil, nil, nil, counted)
  reply[1], reply[2], reply[3] = 3, gauge, soonest_expiry()
  return reply
end
for j = 1, #writes, 3 do
  redis.call("SET", K[writes[j]], writes[j + 1], "PX", string.format("%d", writes[j + 2]))
end

local kind, key, out = nil, id, nil
if op == "cs" then
  r = {p = arg, s = "starting", c = now_ms, u = now_ms, h = now_ms}
  kind = "s"
elseif op == "ss" then
  local was, will = r.s == "working", arg == "working"
  if will and not was then
    r.f, r.h = r.f or now_ms, now_ms
    redis.call("ZADD", K[5], now_ms + tonumber(A[6]), id)
  elseif was and not will then
    redis.call("ZREM", K[5], id)
  end
  r.s, r.u = arg, now_ms
  kind, gauge = "s", redis.call("ZCARD", K[5])
elseif op == "hb" then
  r.h = now_ms
  if r.s == "working" then redis.call("ZADD", K[5], now_ms + tonumber(A[6]), id) end
  kind = "s"
elseif op == "ds" then
  redis.call("HDEL", K[4], id)
  redis.call("ZREM", K[5], id)
  redis.call("DEL", K[#K - 1], K[#K])
  kind, out = "sd", raw
elseif op == "cg" then
  r = {n = arg, c = now_ms}
  kind, gauge = "g", gauge + 1
elseif op == "dg" then
  redis.call("HDEL", K[6], id)
  kind, out, gauge = "gd", raw, redis.call("HLEN", K[6])
elseif op == "sg" then
  redis.call("HSET", K[7], "subscribers", arg)
  kind, key, out, gauge = "v", "subscribers", arg, tonumber(arg)
end
if kind == "s" or kind == "g" then
  out = cjson.encode(r)
  redis.call("HSET", kind == "s" and K[4] or K[6], id, out)
end
if op == "qr" then out = raw end
append(kind, key, (kind == "s" or kind == "g" or kind == "v") and out or nil, counted)
reply[2], reply[3] = gauge, soonest_expiry()
if raise then reply[6] = 1 end
reply[#reply + 1], reply[#reply + 2] = id, out
return reply
