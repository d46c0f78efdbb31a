-- Test-only entry (tests/contract), appended to LimiterLuaLibrary(): runs one arith.lua
-- helper over a batch of inputs for the C++ test to check against __int128.
--
-- ARGV[1] = the helper's name, then the operands of each call in turn (the
-- helper's arity each). Returns one string per call: its results as decimal
-- integers separated by spaces, or "error" when the helper raised.
--
-- The floors and ceilings of products are not helpers of their own: the
-- limiter takes them from ar_muladd_divmod's q and r as below. (It adds,
-- compares and subtracts time pairs inline.)
local AR_EXACT_PROBE = 9007199254740992
local function muldiv_floor(a, b, c)
  local q = ar_muladd_divmod(a, b, 0, c)
  return q
end
local function muldiv_ceil(a, b, c)
  local q, r = ar_muladd_divmod(a, b, 0, c)
  if r > 0 then q = q + 1 end
  if q >= AR_EXACT_PROBE then error("ceil quotient reaches 2^53") end
  return q
end
local AR_PROBES = {
  muladd_divmod = {4, ar_muladd_divmod},
  muldiv_floor = {3, muldiv_floor},
  muldiv_ceil = {3, muldiv_ceil},
  time_divmod = {3, ar_time_divmod},
}
local probe = AR_PROBES[ARGV[1]]
if not probe then return redis.error_reply("unknown helper " .. tostring(ARGV[1])) end
local arity, helper = probe[1], probe[2]
local out = {}
for i = 2, #ARGV - arity + 1, arity do
  local args = {}
  for j = 1, arity do args[j] = tonumber(ARGV[i + j - 1]) end
  local results = {pcall(helper, unpack(args))}
  if results[1] then
    local parts = {}
    for j = 2, #results do parts[#parts + 1] = string.format("%.0f", results[j]) end
    out[#out + 1] = table.concat(parts, " ")
  else
    out[#out + 1] = "error"
  end
end
return out
