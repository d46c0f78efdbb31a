-- wrk: POST a consume with the key from the environment (QUOTUM_BENCH_KEY).
wrk.method = "POST"
wrk.body = '{"meter":"messages_sent","quantity":1,"channel":"whatsapp"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("QUOTUM_BENCH_KEY") or "bench")
