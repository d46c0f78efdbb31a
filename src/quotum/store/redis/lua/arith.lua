-- arith.lua: exact non-negative integer arithmetic for Redis Lua 5.1.
--
-- Lua 5.1 numbers are IEEE doubles: integers are exact only below 2^53. Every
-- helper here takes integers below 2^53, never relies on an intermediate value
-- of 2^53 or more being exact, and returns exact integers below 2^53; a result
-- that would not fit raises an error instead of rounding silently.
--
-- Absolute times are pairs (s, n): s = Unix seconds, n = nanoseconds
-- 0..999999999, because Unix nanoseconds (~1.8e18) exceed 2^53. Durations and
-- offsets are plain nanosecond counts below 2^53 (~104 days).
--
-- Print integers with string.format("%d") (exact below 2^63) or "%.0f", never
-- tostring (which gives "1.8e+15").
--
-- This file is concatenated with limiter.lua and a decision script into one
-- script body, so it defines only top-level locals and returns nothing.
--
-- Cost (docs/performance.md): Redis runs the whole body on every EVALSHA, so
-- each top-level function or table here is made again on every call. Hence
-- few functions and no tables outside the rare paths. A call of a C function
-- (math.floor, tonumber, type, string.format) costs about ten arithmetic
-- operations, so the common paths use arithmetic: x - x % 1 is floor(x), and
-- exactly so (x % 1 is x - floor(x), which is exact).
--
-- Floor of a quotient: for integers v < 2^53 and 1 <= c < 2^53, the double
-- v / c rounds to floor(v / c) + f with f < 1 (it could round up to the next
-- integer m only if v = c * m - 1 and c * m = 2^53; but then c is a power of
-- two and v / c is exact), so floor(v / c) is floor of the rounded quotient.

local AR_EXACT = 9007199254740992 -- 2^53: integers below it are exact
local AR_MAX_DIVISOR = 4503599627370496 -- 2^52: largest divisor accepted
local AR_LIMB = 16777216 -- 2^24: limb base of wide products
local AR_LIMB2 = 281474976710656 -- 2^48
local AR_NS = 1000000000 -- nanoseconds per second

-- q, r with a * b + d = q * c + r and 0 <= r < c.
-- Contract: a, b, d integers in [0, 2^53); c integer in [1, 2^52]; q < 2^53
-- (raises otherwise).
local function ar_muladd_divmod(a, b, d, c)
  -- A non-number fails its first comparison, which raises too.
  if not (a >= 0 and a < AR_EXACT and a % 1 == 0 and b >= 0 and b < AR_EXACT and b % 1 == 0
      and d >= 0 and d < AR_EXACT and d % 1 == 0 and c >= 1 and c <= AR_MAX_DIVISOR
      and c % 1 == 0) then
    error("arith: operands outside the contract: " .. tostring(a) .. " " .. tostring(b) .. " "
      .. tostring(d) .. " " .. tostring(c))
  end
  local p = a * b + d
  local q = p / c
  q = q - q % 1
  if p < AR_MAX_DIVISOR then -- the double value is below 2^52, so a * b + d is exact
    local r = p - q * c
    if r < 0 then return q - 1, r + c end -- a guard: cannot happen (see the top)
    return q, r
  end
  -- The exact product as base-2^24 columns. x < 2^53 is x0 + x1 * 2^24 +
  -- x2 * 2^48 with x0, x1 < 2^24 and x2 < 2^5 (x % 2^k and the divisions by
  -- powers of two are exact), so a column sum stays below 3 * 2^48 + 2^24 < 2^50.
  local L, L2 = AR_LIMB, AR_LIMB2
  local a0, a1, a2 = a % L, (a % L2 - a % L) / L, (a - a % L2) / L2
  local b0, b1, b2 = b % L, (b % L2 - b % L) / L, (b - b % L2) / L2
  local d0, d1, d2 = d % L, (d % L2 - d % L) / L, (d - d % L2) / L2
  local p0, p1 = a0 * b0 + d0, a0 * b1 + a1 * b0 + d1
  local p2, p3, p4 = a0 * b2 + a1 * b1 + a2 * b0 + d2, a1 * b2 + a2 * b1, a2 * b2
  if q < 1125899906842624 then -- 2^50
    -- a * b + d was rounded twice and divided once, each within a relative
    -- 2^-53, so the quotient was within 3 * 2^-53 * 2^50 < 1/2 of the true
    -- one: q is off by one at most, and r = a * b + d - q * c lies in
    -- [-c, 2c), below 2^53 in magnitude. r is summed exactly from the columns
    -- of the two products, most significant first: every partial sum is an
    -- integer below 2^30 in magnitude times 2^24 plus a column (< 2^50), so
    -- each addition is exact.
    local q0, q1, q2 = q % L, (q % L2 - q % L) / L, (q - q % L2) / L2
    local c0, c1, c2 = c % L, (c % L2 - c % L) / L, (c - c % L2) / L2
    local r = (p4 - q2 * c2) * L + (p3 - q1 * c2 - q2 * c1)
    r = r * L + (p2 - q0 * c2 - q1 * c1 - q2 * c0)
    r = r * L + (p1 - q0 * c1 - q1 * c0)
    r = r * L + (p0 - q0 * c0)
    if r < 0 then return q - 1, r + c end
    if r >= c then return q + 1, r - c end
    return q, r
  end
  -- A quotient of 2^50 or more: long division of the normalised limbs
  -- (least significant first) by digits of `base` (a width dividing 24 bits,
  -- so a limb holds whole digits), the widest with c * base <= 2^53, so that
  -- remainder * base + digit stays below 2^53.
  local limbs, carry = {p0, p1, p2, p3, p4}, 0
  for i = 1, 5 do
    local v = limbs[i] + carry
    carry = v / AR_LIMB
    carry = carry - carry % 1
    limbs[i] = v - carry * AR_LIMB
  end -- the top limb holds < 2^11 and carry is 0: a * b + d < 2^107
  local base, per_limb
  if c <= 536870912 then base, per_limb = 16777216, 1 -- c <= 2^29: 24-bit digits
  elseif c <= 2199023255552 then base, per_limb = 4096, 2 -- 2^41
  elseif c <= 35184372088832 then base, per_limb = 256, 3 -- 2^45
  elseif c <= 140737488355328 then base, per_limb = 64, 4 -- 2^47
  elseif c <= 562949953421312 then base, per_limb = 16, 6 -- 2^49
  elseif c <= 1125899906842624 then base, per_limb = 8, 8 -- 2^50
  elseif c <= 2251799813685248 then base, per_limb = 4, 12 -- 2^51
  else base, per_limb = 2, 24 end
  local q_limit = AR_EXACT / base -- q * base + qd < 2^53 iff q < 2^53 / base
  -- Leading limbs whose value stays below c give quotient digits 0: take them
  -- whole (the sum is then < c, so exact; when not, it is >= c even rounded).
  local r, top = 0, 5
  q = 0
  while top >= 1 and r * AR_LIMB + limbs[top] < c do
    r = r * AR_LIMB + limbs[top]
    top = top - 1
  end
  for i = top, 1, -1 do
    local limb, scale = limbs[i], AR_LIMB
    for _ = 1, per_limb do
      scale = scale / base
      local digit = limb / scale -- the next digit, most significant first
      digit = digit - digit % 1
      limb = limb - digit * scale
      -- r * base + digit = qd * c + r' with 0 <= r' < c; r < c and
      -- c * base <= 2^53 keep v below 2^53 (the correction is a guard).
      local v = r * base + digit
      local qd = v / c
      qd = qd - qd % 1
      r = v - qd * c
      if r < 0 then
        qd = qd - 1
        r = r + c
      end
      if q >= q_limit then
        error("arith: quotient reaches 2^53 (divisor " .. string.format("%.0f", c) .. ")")
      end
      q = q * base + qd
    end
  end
  return q, r
end

-- Absolute time (s, n) against a window of w ns: k = floor(T / w), e = T mod w
-- where T = s * 10^9 + n. Contract: s < 2^53, 0 <= n < 10^9, 1 <= w <= 2^52,
-- and k < 2^53 (true for any w >= 1024 ns until the year 2255; raises otherwise).
local function ar_time_divmod(s, n, w)
  if w % AR_NS == 0 and w > 0 and s >= 0 and s < AR_EXACT and s % 1 == 0 and n >= 0
      and n < AR_NS and n % 1 == 0 then
    -- A whole number of seconds (every configured window): divide the seconds.
    local ws = w / AR_NS
    local k = s / ws
    k = k - k % 1
    return k, (s - k * ws) * AR_NS + n
  end
  return ar_muladd_divmod(s, AR_NS, n, w) -- also raises on bad operands
end
