-- wrk: like post.lua, each connection waiting QUOTUM_BENCH_DELAY_MS between
-- requests, to hold a fixed offered rate (connections / delay).
wrk.method = "POST"
wrk.body = '{"meter":"messages_sent","quantity":1,"channel":"whatsapp"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("QUOTUM_BENCH_KEY") or "bench")
local wait = tonumber(os.getenv("QUOTUM_BENCH_DELAY_MS") or "1")
function delay() return wait end
