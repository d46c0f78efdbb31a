-- decide.lua: executes one CheckProgram atomically (the RedisLedger's only
-- script; arith.lua and limiter.lua come before it in the same body). The
-- C++ side (redis_ledger.cc) builds KEYS and ARGV and reads the reply; the
-- maths of the quota and warm-up mirror JudgeQuota in engine/ledger.cc, and
-- tests/golden/decisions.json holds both to the same answers.
--
-- KEYS (every one hash-tagged with the tenant, so they share a slot):
--   1 the meter's period counter      2 the api_calls period counter
--   3 the session's warm-up day count 4 the idempotency record
--   5 the tenant's baseline mark: present once its counters hold at least what
--     the cold store has (see RedisLedger::SetBaseline)
--   6 the tenant's facts stream (see engine/usage_facts.h)
--   7.. one limiter state per rate check, in program order
-- ARGV:
--   1 mode: "x" execute, "r" look the idempotency key up only
--   2, 3 now as Unix seconds and nanoseconds; ARGV[2] == "" reads Redis TIME
--   4 flags, five characters "0"/"1": dry_run, partial, count_api_call,
--     has_warmup, has_idempotency_key
--   5 fingerprint (decimal text), 6 idempotency TTL in ms
--   7 quantity, 8 limit ("" = unlimited), 9 on_limit allow ("1"),
--   10 quota shadow ("1"), 11 when the counters expire (Unix ms)
--   12 warm-up cap, 13 warm-up shadow ("1"), 14 when the warm-up count expires (Unix ms)
--   15 the decision's facts (facts_codec.h; "" = append nothing)
--   16 number of rate checks n, then 5 fields each: algorithm, limit, window_ns, cost, shadow
-- Reply (an array of integers; the first says which kind):
--   {0, counter_before, warmup_used, charged, refused, shadow_bits, then per rate
--      check: allowed, remaining, reset_ns, retry_ns}    decided (refused: 1-based, 0 = none)
--   {1, ...the same fields as the first decision}        replayed
--   {2} key reused for another request   {3} quantity overflow   {4} key unknown (mode "r")
--   {5} no baseline mark: the counters may have been lost; nothing was decided
-- A decision that charges units or counts the api_call appends one entry to
-- the facts stream: c = units charged, a = api_call counted ("1"/"0"),
-- ok = allowed ("1"/"0"), f = ARGV[15]. Nothing else appends.

local MAX_COUNTER = 9007199254740991 -- 2^53 - 1, kMaxCounter

local function flag(i) return string.sub(ARGV[4], i, i) == "1" end

local function now_pair()
  if ARGV[2] ~= "" then return tonumber(ARGV[2]), tonumber(ARGV[3]) end
  local t = redis.call("TIME")
  return tonumber(t[1]), tonumber(t[2]) * 1000
end

local function int_text(x) return string.format("%.0f", x) end

-- The stored record: "<fingerprint>|<reply fields 2..n separated by spaces>".
local function replay(fingerprint)
  local stored = redis.call("GET", KEYS[4])
  if not stored then return nil end
  local bar = string.find(stored, "|", 1, true)
  if string.sub(stored, 1, bar - 1) ~= fingerprint then return {2} end
  local reply = {1}
  for field in string.gmatch(string.sub(stored, bar + 1), "%S+") do
    reply[#reply + 1] = tonumber(field)
  end
  return reply
end

local function remember(fingerprint, reply)
  local fields = {}
  for i = 2, #reply do fields[#fields + 1] = int_text(reply[i]) end
  redis.call("SET", KEYS[4], fingerprint .. "|" .. table.concat(fields, " "), "PX", ARGV[6])
end

-- The quota and warm-up verdicts (JudgeQuota): units to charge if allowed,
-- whether either refuses, and the shadow bits they add (bit 30: warm-up, 31: quota).
local function judge(used, warm_used)
  local qty, partial = tonumber(ARGV[7]), flag(2)
  local denied, bits = false, 0
  if flag(4) then
    local cap = tonumber(ARGV[12])
    local left = cap > warm_used and cap - warm_used or 0
    if qty > left then
      if ARGV[13] == "1" then bits = bits + 2 ^ 30
      elseif partial and left > 0 then qty = left
      else denied = true end
    end
  end
  if qty > MAX_COUNTER - used then return nil end
  if ARGV[8] == "" then return qty, denied, bits end
  local limit = tonumber(ARGV[8])
  local left = used >= limit and 0 or limit - used
  if qty <= left or ARGV[9] == "1" then return qty, denied, bits end
  if partial and left > 0 then return left, denied, bits end
  if ARGV[10] == "1" then return qty, denied, bits + 2 ^ 31 end
  return 0, true, bits
end

-- Decides every rate check; returns the reply fields, the first refusing
-- check (1-based, 0 = none), shadow bits and the states to store.
local function decide_rates(now_s, now_n)
  local fields, refused, bits, writes = {}, 0, 0, {}
  for i = 1, tonumber(ARGV[16]) do
    local a = 16 + (i - 1) * 5
    local ok, remaining, reset, retry, next_state, ttl =
      rl_decide(ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], redis.call("GET", KEYS[6 + i]),
                now_s, now_n, ARGV[a + 4])
    if ok == 1 then
      writes[#writes + 1] = {KEYS[6 + i], next_state, ttl}
    elseif ARGV[a + 5] == "1" then
      bits = bits + 2 ^ (i - 1)
    elseif refused == 0 then
      refused = i
    end
    for _, v in ipairs({ok, remaining, reset, retry}) do fields[#fields + 1] = v end
  end
  return fields, refused, bits, writes
end

local function add_to(key, units, expire_at)
  if units <= 0 then return end
  if redis.call("INCRBY", key, int_text(units)) == units then
    redis.call("PEXPIREAT", key, expire_at)
  end
end

-- Counts one api_call; false when the counter is full.
local function count_api_call()
  local calls = tonumber(redis.call("GET", KEYS[2]) or "0")
  if calls >= MAX_COUNTER then return false end
  add_to(KEYS[2], 1, ARGV[11])
  return true
end

local function append_facts(charged, api_call, allowed)
  if ARGV[15] == "" or (charged == 0 and not api_call) then return end
  redis.call("XADD", KEYS[6], "*", "c", int_text(charged), "a", api_call and "1" or "0",
             "ok", allowed and "1" or "0", "f", ARGV[15])
end

local function store_rates(writes)
  for _, w in ipairs(writes) do redis.call("SET", w[1], w[2], "PX", int_text(w[3])) end
end

local function execute()
  local fingerprint = ARGV[5]
  if flag(5) then
    local known = replay(fingerprint)
    if known then return known end
  end
  if ARGV[1] == "r" then return {4} end
  if redis.call("EXISTS", KEYS[5]) == 0 then return {5} end
  local now_s, now_n = now_pair()
  local used = tonumber(redis.call("GET", KEYS[1]) or "0")
  local warm_used = flag(4) and tonumber(redis.call("GET", KEYS[3]) or "0") or 0
  local units, quota_denied, quota_bits = judge(used, warm_used)
  if not units then return {3} end
  local rate_fields, refused, bits, writes = decide_rates(now_s, now_n)
  local allowed = refused == 0 and not quota_denied
  local charged, api_call = 0, false
  if flag(1) then
    if allowed and flag(3) then store_rates(writes); api_call = count_api_call() end
  else
    if allowed then
      store_rates(writes)
      charged = units
      add_to(KEYS[1], units, ARGV[11])
      if flag(4) then add_to(KEYS[3], units, ARGV[14]) end
    end
    if flag(3) then api_call = count_api_call() end
  end
  append_facts(charged, api_call, allowed)
  local reply = {0, used, warm_used, charged, refused, bits + quota_bits}
  for _, v in ipairs(rate_fields) do reply[#reply + 1] = v end
  if flag(5) and not flag(1) then remember(fingerprint, reply) end
  return reply
end

return execute()
