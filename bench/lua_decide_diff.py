#!/usr/bin/env python3
# Differential test of two decide.lua variants, for changes meant to keep its
# behaviour (docs/performance.md): the same random programs run on tenant {a}
# with variant A and tenant {b} with variant B, in one redis-server started
# here; replies, every key (type, value, TTL within 2 s) and the facts
# stream's entries (fields, not ids) must match. Covers the KEYS/ARGV of
# decide.lua's header: modes, flags (also short ones), warm-up, idempotency
# records, quota limits and overflow, 0-3 rate checks of each algorithm, now
# given or from Redis TIME, facts or none, counters near 2^53 - 1, a lost
# baseline mark, odd limiter states.
#
#   bench/lua_decide_diff.py DIR_A DIR_B [PROGRAMS [SEED]]
#
# Each DIR holds arith.lua, limiter.lua and decide.lua (as for bench/lua_cost.sh).
# Exits 1 on any difference. Needs redis-server.
import atexit, os, random, re, shutil, socket, subprocess, sys, tempfile, time

class R:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port)); self.f = self.s.makefile("rb")
    def cmd(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(out)); return self.read()
    def read(self):
        line = self.f.readline()[:-2]; t, rest = line[:1], line[1:]
        if t == b"+": return rest.decode()
        if t == b"-": return ("ERR", rest.decode())
        if t == b":": return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0: return None
            d = self.f.read(n + 2)[:-2]; return d.decode()
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise Exception(line)

def norm(reply):
    # Error texts name the script and line: keep the message only.
    if isinstance(reply, tuple):
        return ("ERR", re.sub(r"user_script:\d+: ", "", re.sub(r"f_[0-9a-f]{40}", "f", reply[1])).split(" script:")[0])
    return reply

def body(d):  # as RedisLedger::DecisionScript() composes it
    read = lambda f: open(os.path.join(d, f)).read()
    return "-- arith.lua\n%s\n-- limiter.lua\n%s\n\n-- decide.lua\n%s\n" % (
        read("arith.lua"), read("limiter.lua"), read("decide.lua"))

if len(sys.argv) < 3:
    sys.exit("usage: %s DIR_A DIR_B [PROGRAMS [SEED]]" % sys.argv[0])
dir_a, dir_b = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 5000
seed = int(sys.argv[4]) if len(sys.argv) > 4 else random.randrange(10**6)
work = tempfile.mkdtemp()
probe = socket.socket(); probe.bind(("127.0.0.1", 0)); port = probe.getsockname()[1]; probe.close()
server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no", "--dir", work], stdout=subprocess.DEVNULL)
atexit.register(lambda: (server.terminate(), server.wait(), shutil.rmtree(work, ignore_errors=True)))
for _ in range(100):
    try:
        r = R(port); break
    except OSError:
        time.sleep(0.05)
rnd = random.Random(seed)
sha = {t: r.cmd("SCRIPT", "LOAD", body(d)) for t, d in (("a", dir_a), ("b", dir_b))}
for s in sha.values(): assert not isinstance(s, tuple), s
MAX = 2**53 - 1
now = 1796724000 * 10**9 + 123456789
mism = 0; kinds = {}; stats = {"time": 0, "facts": 0, "entries": 0, "errors": 0, "rate_checks": 0}
FACTS = ['{"meter":"m","channel":"api","period":1,"at":2,"now":3,"qty":1}', "x", "a b|c d", "ü ñ %d %s", "0"]
for it in range(n):
    now += rnd.choice([0, 1, 1000, 10**6, 10**8, 10**9, 3 * 10**10, 7 * 10**10])
    meter = rnd.choice(["m", "m", "m", "api_calls"])
    warm = rnd.random() < 0.3; idem = rnd.random() < 0.3
    flags = "".join("1" if b else "0" for b in [rnd.random() < 0.2, rnd.random() < 0.3, rnd.random() < 0.7, warm, idem])
    if rnd.random() < 0.01: flags = rnd.choice(["", "1", "11", "0010"])  # short flags
    use_time = rnd.random() < 0.15
    if use_time and idem:
        # Records made on Redis' clock would differ by the microseconds between the two calls.
        idem, flags = False, flags[:4] + "0"
    rates = []
    for i in range(rnd.choice([0, 0, 1, 1, 2, 3])):
        algos = ["sliding_window", "fixed_window"] if use_time else ["sliding_window", "token_bucket", "fixed_window"]
        rates.append((rnd.choice(algos), rnd.choice([1, 2, 3, 5, 10]),
                      36 * 10**11 if use_time else rnd.choice([6 * 10**10, 36 * 10**11]),
                      rnd.choice([0, 1, 1, 2, 11]), rnd.choice(["0", "0", "1"]), rnd.choice(["k1", "k2"])))
    ops = []
    if rnd.random() < 0.03: ops.append(("DEL", "baseline"))
    if it % 7 == 0 or rnd.random() < 0.3: ops.append(("SET", "baseline", "1"))
    if rnd.random() < 0.02: ops.append(("SET", "u:1:api_calls", str(rnd.choice([MAX - 1, MAX, MAX + 5]))))
    if rnd.random() < 0.02: ops.append(("SET", "u:1:m", str(rnd.choice([MAX - 3, MAX - 1, MAX]))))
    if rnd.random() < 0.05: ops.append(("DEL", "u:1:m"))
    if rnd.random() < 0.03: ops.append(("DEL", "w:5:s"))
    if rnd.random() < 0.02: ops.append(("DEL", "u:1:api_calls"))
    if rnd.random() < 0.01: ops.append(("SET", "w:5:s", str(rnd.choice([2, 9, 10, 11]))))
    if rnd.random() < 0.01: ops.append(("SET", "r:s:3600000000000:k1", rnd.choice(["junk", "S:1:2:3", "F:0:1"])))
    limit = rnd.choice(["", "5", "20", "0", str(MAX)])
    qty = rnd.choice([0, 1, 1, 2, 7] * 5 + [MAX, MAX - 1])
    facts = "" if rnd.random() < 0.25 else rnd.choice(FACTS)
    if use_time: stats["time"] += 1
    if facts: stats["facts"] += 1
    stats["rate_checks"] += len(rates)
    args = [rnd.choice(["x"] * 9 + ["r"]), "" if use_time else str(now // 10**9), "" if use_time else str(now % 10**9),
            flags, str(rnd.choice([1, 2, 3])), "60000", str(qty), limit, rnd.choice(["0", "1"]),
            rnd.choice(["0", "0", "1"]), "1801000000000", str(rnd.choice([0, 3, 10])), rnd.choice(["0", "1"]),
            "1800000000000", facts, str(len(rates))]
    for a in rates: args += [a[0], str(a[1]), str(a[2]), str(a[3]), a[4]]
    idem_key = str(rnd.randrange(40))
    replies = {}
    for t in ("a", "b"):
        tag = "{%s}" % t
        for o in ops:
            r.cmd(o[0], tag + ":" + o[1], *o[2:])
        keys = [tag + ":u:1:" + meter, tag + ":u:1:api_calls", tag + (":w:5:s" if warm else ":w:-"),
                tag + (":i:" + idem_key if idem else ":i:-"), tag + ":baseline", tag + ":f"]
        keys += [tag + ":r:%s:%d:%s" % (a[0][0], a[2], a[5]) for a in rates]
        replies[t] = norm(r.cmd("EVALSHA", sha[t], len(keys), *keys, *args))
    ra, rb = replies["a"], replies["b"]
    k = ra[0] if isinstance(ra, list) and ra else "err"
    if k == "err": stats["errors"] += 1
    kinds[k] = kinds.get(k, 0) + 1
    same = ra == rb
    if not same and use_time and isinstance(ra, list) and isinstance(rb, list) and len(ra) == len(rb) and ra[0] in (0, 1):
        # On Redis' clock the two calls differ by microseconds: reset/retry may differ a little.
        same = ra[:6] == rb[:6] and all(
            ra[i] == rb[i] if (i - 6) % 4 in (0, 1) else abs(ra[i] - rb[i]) < 10**8 for i in range(6, len(ra)))
    if not same:
        mism += 1
        if mism <= 5: print("reply mismatch", it, args, replies)
    ka = set(x[3:] for x in r.cmd("KEYS", "{a}*")); kb = set(x[3:] for x in r.cmd("KEYS", "{b}*"))
    for suf in sorted(ka | kb):
        ta, tb = r.cmd("TYPE", "{a}" + suf), r.cmd("TYPE", "{b}" + suf)
        if ta == "stream" or tb == "stream":
            ea = [e[1] for e in (r.cmd("XRANGE", "{a}" + suf, "-", "+") or [])]
            eb = [e[1] for e in (r.cmd("XRANGE", "{b}" + suf, "-", "+") or [])]
            stats["entries"] = len(ea)
            if ta != tb or ea != eb:
                mism += 1
                if mism <= 5: print("stream differs", it, suf, ea[-3:], eb[-3:], args)
            continue
        va, vb = r.cmd("GET", "{a}" + suf), r.cmd("GET", "{b}" + suf)
        pa, pb = r.cmd("PTTL", "{a}" + suf), r.cmd("PTTL", "{b}" + suf)
        # A key about to expire (a 1 ms token-bucket state) may be gone on one side only.
        # (or just expired between the GET and the PTTL: -2).
        near = lambda p: p == -2 or 0 <= p < 5000
        if (va is None or vb is None or -2 in (pa, pb)) and (near(pa) or near(pb)):
            continue
        if va != vb or (pa < 0) != (pb < 0) or abs(pa - pb) > 2000:
            mism += 1
            if mism <= 5: print("key differs", it, suf, va, vb, pa, pb, args)
    # Keep the stream short so that comparing it stays cheap; both sides alike.
    if it % 200 == 199:
        for t in "ab": r.cmd("DEL", "{%s}:f" % t)
print("seed", seed, "programs", n, "mismatches", mism, "reply kinds", kinds, stats)
sys.exit(1 if mism else 0)
