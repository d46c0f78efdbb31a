-- wrk: a consume with the API key of a random one of TENANTS tenants
-- (qk_bench_<i>, as bench/million_tenants.cc makes them), so that the load
-- lands all over a large data set instead of on one warm tenant.
local n = tonumber(os.getenv("TENANTS") or "1000000")
local body = '{"meter":"messages_sent","quantity":1,"channel":"whatsapp"}'

function init(args)
  -- Each wrk thread gets a seed of its own (its table address differs).
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 1000003)
end

function request()
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer qk_bench_" .. math.random(0, n - 1),
  }
  return wrk.format("POST", "/api/v2/quota/consume", headers, body)
end
