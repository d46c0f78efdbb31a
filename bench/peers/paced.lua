-- wrk: like post.lua, each connection waiting a random 0..2*QUOTUM_BENCH_DELAY_MS
-- (mean QUOTUM_BENCH_DELAY_MS) between requests, to offer a fixed mean rate
-- (connections / delay). The random spread keeps the connections from firing on
-- the same timer tick: with a fixed delay, wrk wakes them in bursts of every
-- connection at once, which measures the burst, not the rate.
wrk.method = "POST"
wrk.body = '{"meter":"messages_sent","quantity":1,"channel":"whatsapp"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("QUOTUM_BENCH_KEY") or "bench")
local wait = tonumber(os.getenv("QUOTUM_BENCH_DELAY_MS") or "1")

function init(args)
  -- A different sequence per wrk thread (each has its own Lua state).
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 1000003)
end

function delay()
  return math.random(0, 2 * wait)
end
