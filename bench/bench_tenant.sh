# Sourced by the bench scripts (bash). create_bench_tenant PORT: makes tenant
# "bench" (plan enterprise) on the Quotum at 127.0.0.1:PORT (admin key
# bench-admin), raises its key's general rate limit out of the way (the quota
# path is under test, not the general rule), and sets KEY to its API key.
# require_free_port PORT: fails when something already listens on PORT (a
# leftover server would otherwise be measured in place of the one started).
# wait_port PORT: waits up to 10 s for PORT to accept connections, else fails.
# median: the median of the numbers on standard input, one per line.
require_free_port() {
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    echo "port $1 is already in use: stop what holds it and run again" >&2
    exit 1
  fi
}

wait_port() {
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "port $1 did not open" >&2
  exit 1
}

median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

create_bench_tenant() {
  local created key_id
  created=$(curl -s -X POST "http://127.0.0.1:$1/admin/tenants" -H "X-API-Key: bench-admin" \
    -d '{"id":"bench","plan":"enterprise"}')
  KEY=$(echo "$created" | sed -E 's/.*"api_key":"([^"]+)".*/\1/')
  key_id=$(echo "$created" | sed -E 's/.*"key_id":"([^"]+)".*/\1/')
  curl -s -o /dev/null -X PUT "http://127.0.0.1:$1/admin/api-keys/$key_id/rate-limits" \
    -H "X-API-Key: bench-admin" -d '{"general":1000000000}'
}
