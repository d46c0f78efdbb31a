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
-- top-level locals only, no return at the end.

-- ceil(x ns / 1 ms), at least 1.
local function rl_ttl_ms(x_ns)
  if x_ns <= 0 then return 1 end
  return ar_div_ceil(x_ns, 1000000)
end

-- The argument as a number satisfying lo <= x <= hi and integral; raises with
-- its name otherwise.
local function rl_arg(x, name, lo, hi)
  local v = tonumber(x)
  if not v or v < lo or v > hi or ar_floor(v) ~= v then
    error("rl_decide: " .. name .. " out of range: " .. tostring(x))
  end
  return v
end

local RL_STATE_PATTERNS = {
  S = "^S:(%d+):(%d+):(%d+)$",
  F = "^F:(%d+):(%d+)$",
  G = "^G:(%d+):(%d+)$",
}

-- The integer fields of a state of tag `tag` ("S:1:2:3" -> 1, 2, 3), or nil
-- when the state is missing, malformed or has another tag.
local function rl_parse(state, tag)
  if type(state) ~= "string" then return nil end
  local a, b, c = state:match(RL_STATE_PATTERNS[tag])
  a, b, c = tonumber(a), tonumber(b), tonumber(c)
  if not (ar_is_uint(a) and ar_is_uint(b)) or (tag == "S" and not ar_is_uint(c)) then
    return nil
  end
  return a, b, c
end

-- Fixed window: a counter per aligned window [kW, (k+1)W).
local function rl_fixed(limit, W, state, now_s, now_n, cost)
  local k, e = ar_time_divmod(now_s, now_n, W)
  local sk, sc = rl_parse(state, "F")
  local c = sk == k and sc or 0
  local reset = W - e
  local allowed, retry = 0, reset
  if cost <= limit and c <= limit - cost then
    c, allowed, retry = c + cost, 1, 0
  elseif cost > limit then
    retry = -1
  end
  local remaining = c >= limit and 0 or limit - c
  return allowed, remaining, reset, retry, "F:" .. ar_fmt(k) .. ":" .. ar_fmt(c), rl_ttl_ms(reset)
end

-- Smallest elapsed e in a bucket with `prev` units at which
-- floor(prev * (W - e) / W) <= room (limiter.cc ElapsedWhenWeightFits).
local function rl_elapsed_when_weight_fits(prev, room, W)
  return W + 1 - ar_muldiv_ceil(room + 1, W, prev)
end

-- When a sliding-window request of `cost` (<= limit) denied at elapsed e
-- could pass: b, c are the rolled-over counts of bucket k.
local function rl_sliding_retry(limit, W, b, c, e, cost)
  local room_now = limit - cost -- the estimate must drop to this
  if c <= room_now then
    -- Denied with c <= room means b > 0: wait for the weighted previous bucket.
    local e2 = rl_elapsed_when_weight_fits(b, room_now - c, W)
    return math.max(1, e2 - e)
  end
  -- Next bucket: b' = c, c' = 0; need floor(c * (W - e) / W) <= room.
  local e2 = rl_elapsed_when_weight_fits(c, room_now, W)
  return (W - e) + math.max(0, e2)
end

-- Sliding window: two aligned buckets, the previous one weighted by its
-- overlap with the window ending now; the estimate is rounded down.
local function rl_sliding(limit, W, state, now_s, now_n, cost)
  local k, e = ar_time_divmod(now_s, now_n, W)
  local sk, sb, sc = rl_parse(state, "S")
  local b, c = 0, 0
  if sk == k then
    b, c = sb, sc
  elseif sk == k - 1 then
    b = sc
  end
  local est = ar_muldiv_floor(b, W - e, W) + c
  local reset = (c > 0 and 2 * W or W) - e
  local allowed, remaining, retry = 0, 0, -1
  if cost <= limit and est <= limit - cost then
    c, allowed, remaining, retry = c + cost, 1, limit - est - cost, 0
  else
    remaining = est >= limit and 0 or limit - est
    if cost <= limit then retry = rl_sliding_retry(limit, W, b, c, e, cost) end
  end
  -- The stored state matters until bucket k + 2 when c > 0, else until k + 1.
  local ttl = rl_ttl_ms((c > 0 and 2 * W or W) - e)
  local next_state = "S:" .. ar_fmt(k) .. ":" .. ar_fmt(b) .. ":" .. ar_fmt(c)
  return allowed, remaining, reset, retry, next_state, ttl
end

-- floor((W - ahead) / interval), or 0 when ahead >= W.
local function rl_gcra_remaining(W, ahead, interval)
  if ahead >= W then return 0 end
  return ar_div_floor(W - ahead, interval)
end

-- GCRA (token bucket): bursts up to `limit`, then one unit per ceil(W / limit).
local function rl_gcra(limit, W, state, now_s, now_n, cost)
  local interval = ar_div_ceil(W, limit)
  local ts, tn = rl_parse(state, "G")
  if not ts or tn >= AR_NS then ts, tn = 0, 0 end
  local kept = "G:" .. ar_fmt(ts) .. ":" .. ar_fmt(tn) -- the input, for denials
  local tat_s, tat_n = ts, tn
  if ar_time_cmp(ts, tn, now_s, now_n) < 0 then tat_s, tat_n = now_s, now_n end
  local ahead = ar_time_diff(tat_s, tat_n, now_s, now_n) -- tat - now >= 0
  local ttl = rl_ttl_ms(ahead)
  if cost > limit then
    return 0, rl_gcra_remaining(W, ahead, interval), ahead, -1, kept, ttl
  end
  -- interval * cost < (W / limit + 1) * limit = W + limit <= 2^53: exact.
  local step = interval * cost
  if step <= W - ahead then -- new_tat - now <= W
    local reset = ahead + step
    local new_s, new_n = ar_time_add(tat_s, tat_n, step)
    return 1, ar_div_floor(W - reset, interval), reset, 0,
        "G:" .. ar_fmt(new_s) .. ":" .. ar_fmt(new_n), rl_ttl_ms(reset)
  end
  local retry = step - (W - ahead) -- new_tat - now - W
  return 0, rl_gcra_remaining(W, ahead, interval), ahead, retry, kept, ttl
end

local RL_ALGORITHMS = {
  sliding_window = rl_sliding,
  token_bucket = rl_gcra,
  fixed_window = rl_fixed,
}

local function rl_decide(algo, limit, window_ns, state, now_s, now_n, cost)
  local decide = RL_ALGORITHMS[algo]
  if not decide then error("rl_decide: unknown algorithm: " .. tostring(algo)) end
  return decide(rl_arg(limit, "limit", 1, AR_MAX_DIVISOR),
    rl_arg(window_ns, "window_ns", 1, AR_MAX_DIVISOR - 1), state,
    rl_arg(now_s, "now_s", 0, AR_EXACT - 1), rl_arg(now_n, "now_n", 0, AR_NS - 1),
    rl_arg(cost, "cost", 0, AR_MAX_DIVISOR))
end
