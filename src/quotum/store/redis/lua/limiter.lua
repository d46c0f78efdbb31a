-- limiter.lua: the rate-limit decision of src/quotum/ratelimit/limiter.cc,
-- bit for bit, for Redis Lua 5.1 (needs arith.lua before it). Vectors shared
-- with the C++ limiter: tests/golden/ratelimit.json; tests/contract/ replays
-- them and compares against ratelimit::Decide on random steps.
--
-- State encoding (the Redis string value; integers in decimal, W = window ns):
--   sliding_window  "S:k:b:c"  k = index of the current bucket (it starts at
--                              k * W ns since the Unix epoch), b = count of
--                              bucket k - 1, c = count of bucket k
--   fixed_window    "F:k:c"    k = index of the window, c = its count
--   token_bucket    "G:s:n"    the theoretical arrival time (TAT) as Unix
--                              seconds s and nanoseconds n
-- A missing state (nil/false), or one that is malformed or of another
-- algorithm, counts as empty, like the C++ State{} (a token-bucket denial on
-- an empty state returns "G:0:0", that State{}). A state is meaningful only
-- for one (algorithm, window): the caller's key must identify both.
--
-- rl_decide(algo, limit, window_ns, state, now_s, now_n, cost) returns
--   allowed (1/0), remaining, reset_ns, retry_ns (0 when allowed, -1 = never),
--   next_state (what to store if the caller applies the decision; a denied
--   decision's next state equals the input apart from window roll-over), and
--   ttl_ms (>= 1): from `now`, the time after which next_state is worth no
--   more than a missing state, so the key may carry PEXPIRE ttl_ms.
-- Contract (raises otherwise): limit an integer in [1, 2^52], window_ns in
-- [1, 2^52) (so 2 * window stays below 2^53; config windows are whole seconds
-- up to 31 days, ~2^51.3 ns), cost in [0, 2^52],
-- now_s >= 0 and now_n in [0, 10^9) integers; numeric strings are accepted.
-- A stored TAT must not be more than ~104 days from now.
--
-- Concatenated into one script body with arith.lua and a decision script:
-- top-level locals only, no return at the end. Like arith.lua, written for
-- the cost of a call: one function, no tables, one string.format per state,
-- arithmetic instead of C functions (see arith.lua's top).

local rl_match, rl_format = string.match, string.format

local function rl_decide(algo, limit, W, state, now_s, now_n, cost)
  -- Arithmetic converts numeric strings as tonumber does, and raises on others.
  limit, W, now_s, now_n, cost = limit + 0, W + 0, now_s + 0, now_n + 0, cost + 0
  if not (limit >= 1 and limit <= AR_MAX_DIVISOR and limit % 1 == 0 and W >= 1
      and W < AR_MAX_DIVISOR and W % 1 == 0 and now_s >= 0 and now_s < AR_EXACT
      and now_s % 1 == 0 and now_n >= 0 and now_n < AR_NS and now_n % 1 == 0 and cost >= 0
      and cost <= AR_MAX_DIVISOR and cost % 1 == 0) then
    error(rl_format("rl_decide: an argument is out of range: limit %s window_ns %s now_s %s "
      .. "now_n %s cost %s", limit, W, now_s, now_n, cost))
  end
  -- Every branch sets these; ttl is in ns until the end.
  local allowed, remaining, reset, retry, next_state, ttl

  if algo == "sliding_window" then
    -- Two aligned buckets, the previous one weighted by its overlap with the
    -- window ending now; the estimate is rounded down.
    local k, e = ar_time_divmod(now_s, now_n, W)
    local b, c = 0, 0
    if state then
      local sk, sb, sc = rl_match(state, "^S:(%d+):(%d+):(%d+)$")
      if sk then
        sk, sb, sc = sk + 0, sb + 0, sc + 0
        if sb < AR_EXACT and sc < AR_EXACT then
          if sk == k then
            b, c = sb, sc
          elseif sk == k - 1 then
            b = sc
          end
        end
      end
    end
    -- floor(b * (W - e) / W) + c; below 2^52 the product is exact.
    local est = b * (W - e)
    if est < AR_MAX_DIVISOR then
      est = est / W
      est = est - est % 1 + c
    else
      est = ar_muladd_divmod(b, W - e, 0, W) + c
    end
    reset = (c > 0 and 2 * W or W) - e
    if cost <= limit and est <= limit - cost then
      c, allowed, remaining, retry = c + cost, 1, limit - est - cost, 0
    else
      allowed, remaining, retry = 0, est >= limit and 0 or limit - est, -1
      if cost <= limit then
        -- When the request could pass: the smallest elapsed e2 in a bucket
        -- with `prev` units at which floor(prev * (W - e2) / W) <= room is
        -- W + 1 - ceil((room + 1) * W / prev) (limiter.cc
        -- ElapsedWhenWeightFits); room + 1 <= prev below, so that is >= 1.
        local room, prev = limit - cost, c -- the estimate must drop to room
        if c <= room then
          -- Denied with c <= room means b > 0: wait for the weighted previous bucket.
          room, prev = room - c, b
        end
        local e2, rest = ar_muladd_divmod(room + 1, W, 0, prev)
        e2 = W + 1 - (rest > 0 and e2 + 1 or e2)
        if c <= limit - cost then
          retry = e2 - e
          if retry < 1 then retry = 1 end
        else
          -- Next bucket: b' = c, c' = 0; need floor(c * (W - e2) / W) <= room.
          retry = (W - e) + (e2 > 0 and e2 or 0)
        end
      end
    end
    next_state = rl_format("S:%d:%d:%d", k, b, c)
    -- The stored state matters until bucket k + 2 when c > 0, else until k + 1.
    ttl = (c > 0 and 2 * W or W) - e

  elseif algo == "token_bucket" then
    -- GCRA: bursts up to `limit`, then one unit per ceil(W / limit).
    local interval = W / limit
    interval = interval - interval % 1
    if interval * limit < W then interval = interval + 1 end
    local ts, tn = 0, 0
    if state then
      local s, n = rl_match(state, "^G:(%d+):(%d+)$")
      if s then
        s, n = s + 0, n + 0
        if s < AR_EXACT and n < AR_NS then ts, tn = s, n end
      end
    end
    -- ahead = max(tat, now) - now >= 0, in ns.
    local tat_s, tat_n, ahead = ts, tn, 0
    if ts < now_s or (ts == now_s and tn < now_n) then
      tat_s, tat_n = now_s, now_n
    else
      ahead = ts - now_s
      if ahead >= 9007198 then -- ahead in ns would reach 2^53
        error("rl_decide: TAT too far ahead: " .. rl_format("%d", ahead) .. " s")
      end
      ahead = ahead * AR_NS + (tn - now_n)
    end
    -- A denial keeps the input state.
    allowed, reset, retry = 0, ahead, -1
    if cost <= limit then
      -- interval * cost < (W / limit + 1) * limit = W + limit <= 2^53: exact.
      local step = interval * cost
      if step <= W - ahead then -- new_tat - now <= W
        allowed, reset, retry = 1, ahead + step, 0
        -- The new TAT, tat + step (step < 2^52: the floor is exact).
        local q = step / AR_NS
        q = q - q % 1
        ts, tn = tat_s + q, tat_n + (step - q * AR_NS)
        if tn >= AR_NS then ts, tn = ts + 1, tn - AR_NS end
      else
        retry = step - (W - ahead) -- new_tat - now - W
      end
    end
    -- floor((W - reset) / interval), or 0 when reset >= W.
    remaining = 0
    if reset < W then
      remaining = (W - reset) / interval
      remaining = remaining - remaining % 1
    end
    next_state = rl_format("G:%d:%d", ts, tn)
    ttl = reset

  elseif algo == "fixed_window" then
    -- A counter per aligned window [kW, (k+1)W).
    local k, e = ar_time_divmod(now_s, now_n, W)
    local c = 0
    if state then
      local sk, sc = rl_match(state, "^F:(%d+):(%d+)$")
      if sk and sk + 0 == k then
        sc = sc + 0
        if sc < AR_EXACT then c = sc end
      end
    end
    reset = W - e
    allowed, retry = 0, reset
    if cost <= limit and c <= limit - cost then
      c, allowed, retry = c + cost, 1, 0
    elseif cost > limit then
      retry = -1
    end
    remaining = c >= limit and 0 or limit - c
    next_state = rl_format("F:%d:%d", k, c)
    ttl = reset

  else
    error("rl_decide: unknown algorithm: " .. tostring(algo))
  end
  -- ttl_ms = ceil(ttl / 1 ms), at least 1 (ttl < 2^53: the floor is exact).
  if ttl <= 0 then return allowed, remaining, reset, retry, next_state, 1 end
  local ms = ttl / 1000000
  ms = ms - ms % 1
  if ms * 1000000 < ttl then ms = ms + 1 end
  return allowed, remaining, reset, retry, next_state, ms
end
