-- arith.lua: exact non-negative integer arithmetic for Redis Lua 5.1.
--
-- Lua 5.1 numbers are IEEE doubles: integers are exact only below 2^53. Every
-- helper here takes integers below 2^53, never forms an intermediate value of
-- 2^53 or more, and returns exact integers below 2^53; a result that would not
-- fit raises an error instead of rounding silently.
--
-- Absolute times are pairs (s, n): s = Unix seconds, n = nanoseconds
-- 0..999999999, because Unix nanoseconds (~1.8e18) exceed 2^53. Durations and
-- offsets are plain nanosecond counts below 2^53 (~104 days).
--
-- Print integers with ar_fmt, never tostring (which gives "1.8e+15").
--
-- This file is concatenated with limiter.lua and a decision script into one
-- script body, so it defines only top-level locals and returns nothing.

local ar_floor = math.floor
local AR_EXACT = 9007199254740992 -- 2^53: integers below it are exact
local AR_MAX_DIVISOR = 4503599627370496 -- 2^52: largest divisor accepted
local AR_LIMB = 16777216 -- 2^24: limb base of wide products
local AR_LIMB2 = 281474976710656 -- 2^48
local AR_NS = 1000000000 -- nanoseconds per second
-- Long division feeds digits of `bits` bits (a divisor of 24, so a limb holds
-- a whole number of digits); the widest digit with divisor * base <= 2^53 is
-- used, so remainder * base + digit stays below 2^53.
local AR_DIGITS = {
  {bits = 24, base = 16777216}, {bits = 12, base = 4096}, {bits = 8, base = 256},
  {bits = 6, base = 64}, {bits = 4, base = 16}, {bits = 3, base = 8},
  {bits = 2, base = 4}, {bits = 1, base = 2},
}

-- The integer x formatted in full ("1796724000000000000" style, no exponent).
local function ar_fmt(x)
  return string.format("%.0f", x)
end

-- True when x is a number holding an integer 0 <= x < 2^53.
local function ar_is_uint(x)
  return type(x) == "number" and x >= 0 and x < AR_EXACT and ar_floor(x) == x
end

-- x (< 2^53) as three base-2^24 limbs, least significant first.
local function ar_split(x)
  local x2 = ar_floor(x / AR_LIMB2) -- division by a power of two is exact
  local rest = x - x2 * AR_LIMB2
  local x1 = ar_floor(rest / AR_LIMB)
  return rest - x1 * AR_LIMB, x1, x2
end

-- a * b + d (each < 2^53) as five base-2^24 limbs, least significant first.
-- Column sums stay below 3 * 2^48 + 2^24 + carry < 2^50.
local function ar_wide(a, b, d)
  local a0, a1, a2 = ar_split(a)
  local b0, b1, b2 = ar_split(b)
  local d0, d1, d2 = ar_split(d)
  local cols = {
    a0 * b0 + d0,
    a0 * b1 + a1 * b0 + d1,
    a0 * b2 + a1 * b1 + a2 * b0 + d2,
    a1 * b2 + a2 * b1,
    a2 * b2,
  }
  local carry = 0
  for i = 1, 5 do
    local v = cols[i] + carry
    carry = ar_floor(v / AR_LIMB)
    cols[i] = v - carry * AR_LIMB
  end
  return cols -- the top limb holds < 2^11 and carry is 0: a * b + d < 2^107
end

-- The digit size for divisor c (1 <= c <= 2^52).
local function ar_digit_for(c)
  for _, digit in ipairs(AR_DIGITS) do
    if c * digit.base <= AR_EXACT then return digit end
  end
  error("arith: divisor above 2^52: " .. ar_fmt(c))
end

-- One long-division step: r * base + digit = qd * c + rem with 0 <= rem < c.
-- Needs r < c and c * base <= 2^53, so v = r * base + digit < 2^53. For
-- integers v, c below 2^53 the rounded v / c never reaches the next integer
-- (that needs v >= 2^53), so floor gives qd exactly and qd * c <= v; the
-- correction is only a guard (the tests cannot reach it).
local function ar_div_step(r, digit, c, base)
  local v = r * base + digit
  local qd = ar_floor(v / c)
  local rem = v - qd * c
  if rem < 0 then
    qd = qd - 1
    rem = rem + c
  end
  return qd, rem
end

-- Divides the limbs (least significant first) by c; returns q, r. Raises when
-- q would reach 2^53.
local function ar_divide_limbs(limbs, c)
  local digit = ar_digit_for(c)
  local base, per_limb = digit.base, 24 / digit.bits
  local q_limit = AR_EXACT / base -- q * base + qd < 2^53 iff q < 2^53 / base
  -- Leading limbs whose value stays below c give quotient digits 0: take them
  -- whole (the sum is then < c, so exact; when not, it is >= c even rounded).
  local q, r, top = 0, 0, #limbs
  while top >= 1 and r * AR_LIMB + limbs[top] < c do
    r = r * AR_LIMB + limbs[top]
    top = top - 1
  end
  for i = top, 1, -1 do
    local limb, scale = limbs[i], AR_LIMB
    for _ = 1, per_limb do
      scale = scale / base
      local d = ar_floor(limb / scale) -- the next digit, most significant first
      limb = limb - d * scale
      local qd
      qd, r = ar_div_step(r, d, c, base)
      if q >= q_limit then error("arith: quotient reaches 2^53 (divisor " .. ar_fmt(c) .. ")") end
      q = q * base + qd
    end
  end
  return q, r
end

-- q, r with a * b + d = q * c + r and 0 <= r < c.
-- Contract: a, b, d integers in [0, 2^53); c integer in [1, 2^52]; q < 2^53
-- (raises otherwise).
local function ar_muladd_divmod(a, b, d, c)
  if not (ar_is_uint(a) and ar_is_uint(b) and ar_is_uint(d) and ar_is_uint(c))
      or c < 1 or c > AR_MAX_DIVISOR then
    error("arith: operands outside the contract: " .. tostring(a) .. " " .. tostring(b) .. " "
      .. tostring(d) .. " " .. tostring(c))
  end
  local p = a * b + d
  if p < AR_MAX_DIVISOR then -- the double value is below 2^52, so a * b + d is exact
    local q = ar_floor(p / c) -- exact, as in ar_div_step
    local r = p - q * c
    if r < 0 then return q - 1, r + c end
    return q, r
  end
  return ar_divide_limbs(ar_wide(a, b, d), c)
end

-- floor(a * b / c); contract of ar_muladd_divmod.
local function ar_muldiv_floor(a, b, c)
  local q = ar_muladd_divmod(a, b, 0, c)
  return q
end

-- ceil(a * b / c); contract of ar_muladd_divmod, and the result < 2^53.
local function ar_muldiv_ceil(a, b, c)
  local q, r = ar_muladd_divmod(a, b, 0, c)
  if r == 0 then return q end
  if q + 1 >= AR_EXACT then error("arith: ceil quotient reaches 2^53") end
  return q + 1
end

-- floor(a / c) and ceil(a / c) for a < 2^53, 1 <= c <= 2^52.
local function ar_div_floor(a, c) return ar_muldiv_floor(a, 1, c) end
local function ar_div_ceil(a, c) return ar_muldiv_ceil(a, 1, c) end

-- Absolute time (s, n) against a window of w ns: k = floor(T / w), e = T mod w
-- where T = s * 10^9 + n. Contract: s < 2^53, 0 <= n < 10^9, 1 <= w <= 2^52,
-- and k < 2^53 (true for any w >= 1024 ns until the year 2255; raises otherwise).
local function ar_time_divmod(s, n, w)
  if w % AR_NS ~= 0 or not ar_is_uint(s) or not ar_is_uint(n) or n >= AR_NS then
    return ar_muladd_divmod(s, AR_NS, n, w) -- also raises on bad operands
  end
  -- A whole number of seconds (every configured window): divide the seconds.
  local ws = w / AR_NS
  local k = ar_floor(s / ws) -- exact, as in ar_div_step
  return k, (s - k * ws) * AR_NS + n
end

-- -1, 0 or 1 as (s1, n1) is before, equal to or after (s2, n2).
local function ar_time_cmp(s1, n1, s2, n2)
  if s1 ~= s2 then return s1 < s2 and -1 or 1 end
  if n1 ~= n2 then return n1 < n2 and -1 or 1 end
  return 0
end

-- (s1, n1) - (s2, n2) in ns, signed. Raises when |difference| is not below
-- 9007198 s (so the result is within +-2^53, ~104 days).
local function ar_time_diff(s1, n1, s2, n2)
  local ds = s1 - s2
  if ds >= 9007198 or ds <= -9007198 then
    error("arith: time difference too large: " .. ar_fmt(ds) .. " s")
  end
  return ds * AR_NS + (n1 - n2)
end

-- (s, n) + off for 0 <= off < 2^53 ns; returns the normalised pair.
local function ar_time_add(s, n, off)
  local q, r = ar_muladd_divmod(off, 1, 0, AR_NS)
  s, n = s + q, n + r
  if n >= AR_NS then s, n = s + 1, n - AR_NS end
  return s, n
end
