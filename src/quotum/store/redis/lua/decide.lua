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
--   7 the tenant's sessions, 8 their leases (lease.lua's KEYS 4 and 5)
--   9.. one limiter state per rate check, in program order; then
--   9 + n the credits counter (a placeholder without a credits check)
--   10 + n the meter's reservations: a HASH of "sum" (units held) and, per
--     reservation id, "<units>:<expires Unix ms>"; 11 + n their expiries (a
--     ZSET of ids scored by expiry)
--   12 + n what is drawn of the meter's top-ups (a HASH id -> units), 13 + n
--     of the credits' (placeholders when the check has no top-ups)
--   14 + n the session's tier recipients (a ZSET of recipients scored by when
--     last messaged, Unix ms), 15 + n its tier level (a HASH: l level, s since,
--     q qualified; core/messaging_tier.h TierLevel) (placeholders without a
--     tier check)
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
--   16 the session a send goes through ("" = none), 17 its first working
--      instant as compiled (Unix ms; "" = never)
--   18 number of rate checks n, then 5 fields each: algorithm, limit, window_ns, cost, shadow
--   then the credits check (CreditsCheck), 4 fields: credits per unit ("0" =
--     none), limit ("" = unlimited), on_limit allow ("1"), shadow ("1")
--   then the reservation operation (HoldCheck), 3 fields: "" none, "s"
--     reserve, "c" commit, "l" release, or "-" none and the meter is never
--     held (KEYS 10 + n and 11 + n are placeholders, left unread); the
--     reservation id; a reserve's TTL (ms)
--   then the meter's top-ups (QuotaCheck::topups), then the credits' : each a
--     count g and 3 fields per top-up, in drawing order: id, units, expiry
--     (Unix ms; "" = never)
--   then the tier check (TierCheck): the number of recipients r ("0": none),
--     then the number of steps k, the k steps, the step-up delay (ms), and
--     the r recipients in order
-- Reply (an array of integers; the first says which kind):
--   {0, counter_before, warmup_used, charged, refused, shadow_bits, then per rate
--      check: allowed, remaining, reset_ns, retry_ns, then the credits counter
--      before, the units held on the meter before (expired ones given back),
--      the units of the reservation committed or released, and its expiry
--      (a reserve's: the new one's) in Unix ms, then the unused units of the
--      meter's and of the credits' top-ups before plus one (0: no top-ups),
--      then the tier's level plus one (0: no tier check), its cap plus one
--      (0: unlimited), the unique recipients counted before, the longest
--      prefix of the recipients that fits, and when the oldest counted was
--      last messaged (Unix ms; 0: none)}   decided (refused: 1-based, 0 = none)
--   {1, ...the same fields as the first decision}        replayed
--   {2} key reused for another request   {3} quantity overflow   {4} key unknown (mode "r")
--   {5} no baseline mark: the counters may have been lost; nothing was decided
--   {6} no session ARGV[16]   {7} it is not working (no lease past now)
--   {8} it works, but first worked at another instant than ARGV[17] (it was
--       made again): compile again; nothing was decided in these three
--   {9} the reservation to commit or release is not held (unknown, expired,
--       committed or released)   {10} the reservation to make is held already;
--       nothing was decided in these two
-- A decision that charges units or counts the api_call appends one entry to
-- the facts stream: c = units charged, a = api_call counted ("1"/"0"),
-- ok = allowed ("1"/"0"), b = the meter's counter before the charge (the
-- drain finds the alert thresholds it crossed from b, c and the limit in f),
-- f = ARGV[15]; with a credits check, cb = the credits counter before; with
-- top-ups, tl (ctl) = the meter's (credits') limit judged, top-ups included,
-- and td = what was drawn of them, "id:units,..." (when any was).
-- Nothing else appends.
--
-- Written for the cost of a call, like arith.lua (see its top and
-- docs/performance.md): Redis runs the whole body on every EVALSHA, so this is
-- straight-line code without local functions, the flags are read once, TIME
-- is called only when there are rate checks (or reservations, or top-ups), and the api_calls count is one
-- INCRBY (taken back by a DECRBY when it passes 2^53 - 1, so it saturates).

local MAX_COUNTER = 9007199254740991 -- 2^53 - 1, kMaxCounter
local A, K, fmt = ARGV, KEYS, string.format
-- The flags as bytes; 49 is "1".
local dry_run, partial, count_api_call, has_warmup, has_idempotency = string.byte(A[4], 1, 5)
dry_run, partial, count_api_call = dry_run == 49, partial == 49, count_api_call == 49
has_warmup, has_idempotency = has_warmup == 49, has_idempotency == 49
local fingerprint = A[5]

-- The stored record: "<fingerprint>|<reply fields 2..n separated by spaces>".
if has_idempotency then
  local stored = redis.call("GET", K[4])
  if stored then
    local bar = string.find(stored, "|", 1, true)
    if string.sub(stored, 1, bar - 1) ~= fingerprint then return {2} end
    local reply = {1}
    for field in string.gmatch(string.sub(stored, bar + 1), "%S+") do
      reply[#reply + 1] = tonumber(field)
    end
    return reply
  end
end
if A[1] == "r" then return {4} end
if redis.call("EXISTS", K[5]) == 0 then return {5} end
-- Now, when a rate check or a session needs it.
local n, sending, now_s, now_n = tonumber(A[18]), A[16], A[2], A[3]
if now_s == "" and (n > 0 or sending ~= "") then
  local t = redis.call("TIME")
  now_s, now_n = t[1], t[2] * 1000
end
if sending ~= "" then
  local record = redis.call("HGET", K[7], sending)
  if not record then return {6} end
  local lease = redis.call("ZSCORE", K[8], sending)
  if not lease or tonumber(lease) <= now_s * 1000 + math.floor(now_n / 1000000) then return {7} end
  if (string.match(record, '"f":(%d+)') or "") ~= A[17] then return {8} end
end
local used = tonumber(redis.call("GET", K[1]) or "0")
local warm_used = has_warmup and tonumber(redis.call("GET", K[3]) or "0") or 0

-- Reservations: expired ones give their units back first; the units held
-- count as used (a commit or release first frees its own).
local cr = 19 + 5 * n
local hop, hid, HK, HX = A[cr + 4], A[cr + 5], K[10 + n], K[11 + n]
local holding = hop == "s" or hop == "c" or hop == "l"
local hsum = hop ~= "-" and redis.call("HGET", HK, "sum")
local held, hunits, hexp, now_ms = 0, 0, 0, 0
if hsum or holding then
  if now_s == "" then
    local t = redis.call("TIME")
    now_s, now_n = t[1], t[2] * 1000
  end
  now_ms = now_s * 1000 + math.floor(now_n / 1000000)
  held = tonumber(hsum or "0")
  if hsum then
    local gone = redis.call("ZRANGEBYSCORE", HX, "-inf", now_ms)
    for g = 1, #gone do
      local rec = redis.call("HGET", HK, gone[g])
      if rec then held = held - tonumber(string.match(rec, "^(%d+)")) end
      redis.call("HDEL", HK, gone[g])
      redis.call("ZREM", HX, gone[g])
    end
    if #gone > 0 then
      if held < 0 then held = 0 end
      redis.call("HSET", HK, "sum", fmt("%d", held))
    end
  end
  if hop == "s" then
    if redis.call("HEXISTS", HK, hid) == 1 then return {10} end
    hexp = now_ms + tonumber(A[cr + 6])
  elseif holding then
    local rec = redis.call("HGET", HK, hid)
    if not rec then return {9} end
    local u, e = string.match(rec, "^(%d+):(%d+)$")
    hunits, hexp = tonumber(u), tonumber(e)
  end
end
local base = used + held - hunits
local frees_held = hop == "c" or hop == "l"

-- Top-ups, per pool (1: the meter's, 2: the credits'): the unexpired ones'
-- ids and unused units, in drawing order, their sum, and the last expiry
-- (-1: one never lapses). KEYS 12 + n + pool - 1 hold what is drawn.
-- Most decisions have none: two counts of 0, and nothing else to do.
local ta = cr + 7
local tg1 = tonumber(A[ta] or "0")
local has_topups = tg1 > 0 or tonumber(A[ta + 1 + 3 * tg1] or "0") > 0
local tg, tleft, tlast, tcount
if has_topups then
  tg, tleft, tlast, tcount = {{}, {}}, {0, 0}, {0, 0}, {0, 0}
  for pool = 1, 2 do
    local g = tonumber(A[ta])
    tcount[pool] = g
    if g > 0 and now_s == "" then
      local t = redis.call("TIME")
      now_s, now_n = t[1], t[2] * 1000
    end
    local tnow = g > 0 and now_s * 1000 + math.floor(now_n / 1000000) or 0
    for j = 1, g do
      local id, tunits, texp = A[ta + 3 * j - 2], tonumber(A[ta + 3 * j - 1]), A[ta + 3 * j]
      if texp == "" then tlast[pool] = -1
      elseif tlast[pool] >= 0 and tonumber(texp) > tlast[pool] then tlast[pool] = tonumber(texp) end
      if texp == "" or tonumber(texp) > tnow then
        local drawn = tonumber(redis.call("HGET", K[11 + n + pool], id) or "0")
        local tl = tunits > drawn and tunits - drawn or 0
        tleft[pool] = tleft[pool] + tl
        local list = tg[pool]
        list[#list + 1], list[#list + 2] = id, tl
      end
    end
    ta = ta + 1 + 3 * g
  end
end

-- The quota and warm-up verdicts (JudgeQuota): the units to charge if allowed,
-- whether either refuses, and the shadow bits they add (bit 30: warm-up, 31:
-- quota; the rate checks add bits 0.. below).
local units, denied, bits = tonumber(A[7]), false, 0
if has_warmup then
  local cap = tonumber(A[12])
  local left = cap > warm_used and cap - warm_used or 0
  if units > left then
    if A[13] == "1" then bits = bits + 2 ^ 30
    elseif partial and left > 0 then units = left
    else denied = true end
  end
end
if units > MAX_COUNTER - base then return {3} end
local qlimit = A[8] ~= "" and tonumber(A[8])
if qlimit and has_topups and tcount[1] > 0 then qlimit = math.max(qlimit, used) + tleft[1] end
if qlimit then
  local limit = qlimit
  local left = base >= limit and 0 or limit - base
  if units <= left or A[9] == "1" or (frees_held and units <= hunits) then -- all of them
  elseif partial and left > 0 then units = left
  elseif A[10] == "1" then bits = bits + 2 ^ 31
  else units, denied = 0, true end
end
-- The credits the units cost (JudgeCredits): whole units that fit the credits
-- limit at `per_unit` each; shadow bit 29.
local per_unit, credits_used = tonumber(A[cr]), 0
if per_unit > 0 then
  credits_used = tonumber(redis.call("GET", K[9 + n]) or "0")
  if not denied and units > 0 then
    if units > math.floor((MAX_COUNTER - credits_used) / per_unit) then return {3} end
    if A[cr + 1] ~= "" and A[cr + 2] ~= "1" then
      local climit = tonumber(A[cr + 1])
      if has_topups and tcount[2] > 0 then
        climit = math.max(climit, credits_used) + tleft[2]
      end
      local fit = math.floor((climit > credits_used and climit - credits_used or 0) / per_unit)
      if units <= fit then -- all of them
      elseif A[cr + 3] == "1" then bits = bits + 2 ^ 29
      elseif partial and fit > 0 then units = fit
      else units, denied = 0, true end
    end
  end
end

-- The messaging tier (MemoryLedger::FindTier, JudgeTier): due step ups
-- first, then the recipients not messaged within 24 h must fit the cap.
local TW, TE = 86400000, 604800000 -- kTierWindowMs, kTierEvaluationMs
local tz = cr + 7
tz = tz + 1 + 3 * tonumber(A[tz])
tz = tz + 1 + 3 * tonumber(A[tz])
local tr = tonumber(A[tz] or "0")
local tier = {0, 0, 0, 0, 0}
local TZ, TS, tnow, r0, tlevel, tsince, tqual, tlimit, tchanged
if tr > 0 then
  if now_s == "" then
    local t = redis.call("TIME")
    now_s, now_n = t[1], t[2] * 1000
  end
  tnow = now_s * 1000 + math.floor(now_n / 1000000)
  TZ, TS = K[14 + n], K[15 + n]
  local k = tonumber(A[tz + 1])
  local steps = {}
  for j = 1, k do steps[j] = tonumber(A[tz + 1 + j]) end
  local tdelay = tonumber(A[tz + 2 + k])
  r0 = tz + 2 + k
  local st = redis.call("HMGET", TS, "l", "s", "q")
  tlevel, tsince, tqual = tonumber(st[1] or "0"), tonumber(st[2] or "0"), tonumber(st[3] or "0")
  redis.call("ZREMRANGEBYSCORE", TZ, "-inf", fmt("%d", tnow - TE))
  local u7 = redis.call("ZCARD", TZ)
  while tqual ~= 0 and tnow >= tqual + tdelay and tlevel < k do
    tlevel, tsince, tqual, tchanged = tlevel + 1, tqual + tdelay, 0, true
    if tlevel < k and u7 >= math.floor((steps[tlevel + 1] + 1) / 2) then tqual = tsince end
  end
  tlimit = tlevel < k and steps[tlevel + 1] or nil
  local edge = fmt("(%d", tnow - TW)
  local used = redis.call("ZCOUNT", TZ, edge, "+inf")
  local oldest = redis.call("ZRANGEBYSCORE", TZ, edge, "+inf", "WITHSCORES", "LIMIT", 0, 1)
  local fit = tr
  if tlimit then
    local left, fresh, nfresh = tlimit > used and tlimit - used or 0, {}, 0
    for j = 1, tr do
      local r = A[r0 + j]
      if not fresh[r] then
        local sc = redis.call("ZSCORE", TZ, r)
        if not sc or tonumber(sc) <= tnow - TW then
          if nfresh == left then fit = j - 1 break end
          nfresh, fresh[r] = nfresh + 1, true
        end
      end
    end
  end
  tier = {tlevel + 1, tlimit and tlimit + 1 or 0, used, fit, #oldest > 0 and tonumber(oldest[2]) or 0}
  if not denied and units > 0 and tlimit and units > fit then
    if partial and fit > 0 then units = fit else units, denied = 0, true end
  end
end

-- Every rate check, in order; the new states of the allowed ones (key index,
-- state, TTL in ms) are stored below if the decision stores them.
local reply, refused, writes = {0, used, warm_used, 0, 0, 0}, 0, nil
if n > 0 then
  writes = {}
  for i = 1, n do
    local a = 13 + 5 * i -- ARGV[a + 1 .. a + 5]: this check's five fields
    local ok, remaining, reset, retry, next_state, ttl =
      rl_decide(A[a + 1], A[a + 2], A[a + 3], redis.call("GET", K[8 + i]), now_s, now_n, A[a + 4])
    if ok == 1 then
      writes[#writes + 1] = 8 + i
      writes[#writes + 1] = next_state
      writes[#writes + 1] = ttl
    elseif A[a + 5] == "1" then
      bits = bits + 2 ^ (i - 1)
    elseif refused == 0 then
      refused = i
    end
    reply[3 + 4 * i], reply[4 + 4 * i], reply[5 + 4 * i], reply[6 + 4 * i] = ok, remaining, reset, retry
  end
end

-- An allowed decision stores the rate states and charges the units, a dry run
-- only when it counts the api_call; a refused one counts the api_call unless
-- it is a dry run.
local allowed = refused == 0 and not denied
if writes and allowed and (count_api_call or not dry_run) then
  for j = 1, #writes, 3 do
    redis.call("SET", K[writes[j]], writes[j + 1], "PX", fmt("%d", writes[j + 2]))
  end
end
local charged, counted = 0, false
if allowed and holding then
  -- A reserve holds its units (the counter is not charged); a commit or
  -- release frees the reservation's.
  if hop == "s" then
    redis.call("HSET", HK, hid, fmt("%d:%d", units, hexp), "sum", fmt("%d", held + units))
    redis.call("ZADD", HX, hexp, hid)
    -- Both keys expire together at the last reservation's expiry (the highest
    -- score): the sum never outlives the expiries that take units out of it.
    local last = redis.call("ZRANGE", HX, -1, -1, "WITHSCORES")[2]
    redis.call("PEXPIREAT", HK, last)
    redis.call("PEXPIREAT", HX, last)
    units = 0
  else
    redis.call("HDEL", HK, hid)
    redis.call("ZREM", HX, hid)
    redis.call("HSET", HK, "sum", fmt("%d", math.max(held - hunits, 0)))
  end
end
if allowed and not dry_run and units > 0 then
  charged = units
  local by = fmt("%d", units)
  if redis.call("INCRBY", K[1], by) == units then redis.call("PEXPIREAT", K[1], A[11]) end
  if has_warmup and redis.call("INCRBY", K[3], by) == units then
    redis.call("PEXPIREAT", K[3], A[14])
  end
  if per_unit > 0 then
    local cost = units * per_unit
    if redis.call("INCRBY", K[9 + n], fmt("%d", cost)) == cost then
      redis.call("PEXPIREAT", K[9 + n], A[11])
    end
  end
end
-- The recipients of the units charged count in the session's tier; reaching
-- half of the cap over 7 days qualifies it for the next step.
-- (An unlimited level counts nothing. GT: an instance whose clock lags never
-- moves a recipient back.)
if tr > 0 and charged > 0 and tlimit then
  local at = fmt("%d", tnow)
  for j = 1, charged do redis.call("ZADD", TZ, "GT", at, A[r0 + j]) end
  redis.call("PEXPIRE", TZ, TE)
  if tqual == 0 and tlimit and redis.call("ZCARD", TZ) >= math.floor((tlimit + 1) / 2) then
    tqual, tchanged = tnow, true
  end
end
if tchanged then
  redis.call("HSET", TS, "l", fmt("%d", tlevel), "s", fmt("%d", tsince), "q", fmt("%d", tqual))
end
-- What the charge takes from top-ups: its units past the limit (before
-- top-ups), oldest expiry first; the hash lives as long as its last top-up.
local td = nil
if has_topups and charged > 0 then
  td = {}
  for pool = 1, 2 do
    local base_limit = pool == 1 and A[8] or A[cr + 1]
    local before = pool == 1 and used or credits_used
    local amount = pool == 1 and charged or charged * per_unit
    if tcount[pool] > 0 and base_limit ~= "" and (pool == 1 or per_unit > 0) then
      local bl = tonumber(base_limit)
      local past = math.max(before + amount - bl, 0) - math.max(before - bl, 0)
      local draw = math.min(past, tleft[pool])
      if draw > 0 then
        local key, list = K[11 + n + pool], tg[pool]
        local existed = redis.call("EXISTS", key) == 1
        for j = 1, #list, 2 do
          local take = math.min(draw, list[j + 1])
          if take > 0 then
            redis.call("HINCRBY", key, list[j], take)
            td[#td + 1] = fmt("%s:%d", list[j], take)
            draw = draw - take
          end
        end
        if tlast[pool] < 0 then redis.call("PERSIST", key)
        elseif not existed then redis.call("PEXPIREAT", key, fmt("%d", tlast[pool]))
        else
          local cur = redis.call("PEXPIRETIME", key)
          if cur >= 0 and cur < tlast[pool] then
            redis.call("PEXPIREAT", key, fmt("%d", tlast[pool]))
          end
        end
      end
    end
  end
end
if count_api_call and (allowed or not dry_run) then
  local calls = redis.call("INCRBY", K[2], 1)
  if calls == 1 then redis.call("PEXPIREAT", K[2], A[11]) end
  if calls > MAX_COUNTER then redis.call("DECRBY", K[2], 1) else counted = true end
end
if A[15] ~= "" and (charged > 0 or counted) then
  if has_topups then
    local e = {K[6], "*", "c", fmt("%d", charged), "a", counted and "1" or "0",
               "ok", allowed and "1" or "0", "b", fmt("%d", used), "f", A[15]}
    if per_unit > 0 then e[#e + 1], e[#e + 2] = "cb", fmt("%d", credits_used) end
    if tcount[1] > 0 and qlimit then e[#e + 1], e[#e + 2] = "tl", fmt("%d", qlimit) end
    if tcount[2] > 0 and A[cr + 1] ~= "" then
      e[#e + 1], e[#e + 2] = "ctl",
        fmt("%d", math.max(tonumber(A[cr + 1]), credits_used) + tleft[2])
    end
    if td and #td > 0 then e[#e + 1], e[#e + 2] = "td", table.concat(td, ",") end
    redis.call("XADD", unpack(e))
  elseif per_unit > 0 then
    redis.call("XADD", K[6], "*", "c", fmt("%d", charged), "a", counted and "1" or "0",
               "ok", allowed and "1" or "0", "b", fmt("%d", used), "cb", fmt("%d", credits_used),
               "f", A[15])
  else
    redis.call("XADD", K[6], "*", "c", fmt("%d", charged), "a", counted and "1" or "0",
               "ok", allowed and "1" or "0", "b", fmt("%d", used), "f", A[15])
  end
end
reply[#reply + 1] = credits_used
reply[#reply + 1] = held
reply[#reply + 1] = hunits
reply[#reply + 1] = hexp
reply[#reply + 1] = has_topups and tcount[1] > 0 and tleft[1] + 1 or 0
reply[#reply + 1] = has_topups and tcount[2] > 0 and tleft[2] + 1 or 0
for j = 1, 5 do reply[#reply + 1] = tier[j] end
reply[4], reply[5], reply[6] = charged, refused, bits
if has_idempotency and not dry_run then
  local fields = {}
  for i = 2, #reply do fields[i - 1] = fmt("%d", reply[i]) end
  redis.call("SET", K[4], fingerprint .. "|" .. table.concat(fields, " "), "PX", A[6])
end
return reply
