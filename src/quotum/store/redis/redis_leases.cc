// RedisLedger: sessions, groups and gauges (lua/lease.lua), and the baseline
// that gives Redis a tenant's counters and leases from the cold store.
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "quotum/core/string_views.h"
#include "quotum/store/redis/facts_codec.h"
#include "quotum/store/redis/lease_codec.h"
#include "quotum/store/redis/lua_library.h"
#include "quotum/store/redis/redis_facts_stream.h"
#include "quotum/store/redis/redis_keys.h"
#include "quotum/store/redis/redis_ledger.h"
#include "quotum/store/redis/redis_script_args.h"

namespace quotum::store::redis {
namespace {

using engine::LeaseOp;
using engine::LeaseOpKind;
using engine::LeaseResult;

// lease.lua's reply: kind, gauge, soonest expiry, refused, shadow bits,
// raised, then four fields per rate check, then id, record pairs.
constexpr long long kDone = 0, kNotFound = 1, kExists = 2, kRefused = 3;

std::string_view OpCode(LeaseOpKind k) {
  switch (k) {
    case LeaseOpKind::kCreateSession:
      return "cs";
    case LeaseOpKind::kSetStatus:
      return "ss";
    case LeaseOpKind::kHeartbeat:
      return "hb";
    case LeaseOpKind::kDeleteSession:
      return "ds";
    case LeaseOpKind::kPollQr:
      return "qr";
    case LeaseOpKind::kCreateGroup:
      return "cg";
    case LeaseOpKind::kDeleteGroup:
      return "dg";
    case LeaseOpKind::kSetSubscribers:
      return "sg";
    case LeaseOpKind::kListSessions:
      return "ls";
    case LeaseOpKind::kListGroups:
      return "lg";
  }
  return "";
}

bool IsGroupOp(LeaseOpKind k) {
  return k == LeaseOpKind::kCreateGroup || k == LeaseOpKind::kDeleteGroup ||
         k == LeaseOpKind::kListGroups;
}

std::vector<std::string> LeaseKeys(const LeaseOp& op) {
  std::vector<std::string> keys{BaselineKey(op.tenant_id),
                                FactsStreamKey(op.tenant_id),
                                CounterKey(op.tenant_id, op.period.start, "api_calls"),
                                SessionsKey(op.tenant_id),
                                LeasesKey(op.tenant_id),
                                GroupsKey(op.tenant_id),
                                GaugesKey(op.tenant_id)};
  for (const engine::RateCheck& r : op.rates) keys.push_back(RateKey(op.tenant_id, r));
  // A session deleted leaves no messaging tier to a session made again under its id.
  const bool session_op = op.kind == LeaseOpKind::kDeleteSession;
  keys.push_back(session_op ? TierRecipientsKey(op.tenant_id, op.id)
                            : absl::StrCat("{", op.tenant_id, "}:tr:-"));
  keys.push_back(session_op ? TierLevelKey(op.tenant_id, op.id)
                            : absl::StrCat("{", op.tenant_id, "}:ts:-"));
  return keys;
}

// The id, record pairs after `from`: sessions or groups.
absl::Status ReadRecords(const LeaseOp& op, ReplyView reply, size_t from, LeaseResult& r) {
  if (op.kind == LeaseOpKind::kSetSubscribers) return absl::OkStatus();
  for (size_t i = from; i + 1 < reply.size(); i += 2) {
    const std::string_view id = reply[i].str(), text = reply[i + 1].str();
    if (IsGroupOp(op.kind)) {
      absl::StatusOr<engine::GroupRecord> g = DecodeGroup(ToStd(op.tenant_id), id, text);
      if (!g.ok()) return g.status();
      r.groups.push_back(std::move(*g));
    } else {
      absl::StatusOr<engine::SessionRecord> s = DecodeSession(ToStd(op.tenant_id), id, text);
      if (!s.ok()) return s.status();
      r.sessions.push_back(std::move(*s));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<LeaseResult> LeaseResultOf(const LeaseOp& op, ReplyView reply) {
  LeaseResult r;
  const long long kind = reply.size() > 0 ? reply[0].integer() : -1;
  if (kind == kReplyNoBaseline) r.outcome = LeaseResult::Outcome::kNeedsBaseline;
  if (kind == kNotFound) r.outcome = LeaseResult::Outcome::kNotFound;
  if (kind == kExists) r.outcome = LeaseResult::Outcome::kExists;
  if (kind == kReplyNoBaseline || kind == kNotFound || kind == kExists) return r;
  if (kind != kDone && kind != kRefused) {
    return absl::InternalError(absl::StrCat("lease.lua answered kind ", kind));
  }
  const size_t records = kReplyHeaderFields + kReplyRateFields * op.rates.size();
  if (reply.size() < records) return absl::InternalError("lease.lua answered short");
  if (kind == kRefused) r.outcome = LeaseResult::Outcome::kRefused;
  r.gauge = static_cast<uint64_t>(reply[1].integer());
  if (reply[2].integer() > 0) r.next_expiry = absl::FromUnixMillis(reply[2].integer());
  r.refused = static_cast<int>(reply[3].integer()) - 1;
  const long long bits = reply[4].integer();
  r.rate_shadow_denied = static_cast<uint32_t>(bits & ((1 << 30) - 1));
  r.gauge_shadow_denied = (bits >> 30) & 1;
  r.raised = reply[5].integer() == 1;
  for (size_t i = 0; i < op.rates.size(); ++i) {
    r.rates.push_back(RateOutcomeOf(op.rates[i], reply, kReplyHeaderFields + kReplyRateFields * i));
  }
  if (absl::Status s = ReadRecords(op, reply, records, r); !s.ok()) return s;
  return r;
}

// KEYS: 1 the baseline mark, 2 sessions, 3 leases, 4 groups, 5 gauges, 6..
// counters. ARGV: 1 the counters' expiry (Unix ms); n sessions, then id,
// record, lease expiry (Unix ms, "" when not working) each; n groups, then
// id, record each; n gauges, then meter, value each; then one value per
// counter. Raises each counter to its value; loads the leases (never over
// what is there) unless the mark says they are here ("2"); sets the mark.
constexpr std::string_view kBaselineLua = R"lua(
local a, load = 2, redis.call("GET", KEYS[1]) ~= "2"
for _ = 1, tonumber(ARGV[a]) do
  if load and redis.call("HSETNX", KEYS[2], ARGV[a + 1], ARGV[a + 2]) == 1 and ARGV[a + 3] ~= "" then
    redis.call("ZADD", KEYS[3], ARGV[a + 3], ARGV[a + 1])
  end
  a = a + 3
end
a = a + 1
for _, key in ipairs({KEYS[4], KEYS[5]}) do
  for _ = 1, tonumber(ARGV[a]) do
    if load then redis.call("HSETNX", key, ARGV[a + 1], ARGV[a + 2]) end
    a = a + 2
  end
  a = a + 1
end
for i = 6, #KEYS do
  local have = tonumber(redis.call("GET", KEYS[i]) or "0")
  if tonumber(ARGV[a]) > have then
    redis.call("SET", KEYS[i], ARGV[a])
    redis.call("PEXPIREAT", KEYS[i], ARGV[1])
  end
  a = a + 1
end
redis.call("SET", KEYS[1], "2")
return 1
)lua";

// The lease arguments of kBaselineLua (after the expiry).
void AppendLeaseBaseline(const engine::LeaseBaseline& b, std::vector<std::string>& args) {
  args.push_back(absl::StrCat(b.rows.sessions.size()));
  for (const engine::SessionRecord& s : b.rows.sessions) {
    args.push_back(s.id);
    args.push_back(EncodeSession(s));
    args.push_back(s.status == "working" ? UnixMillisText(s.last_heartbeat + b.lease_ttl) : "");
  }
  args.push_back(absl::StrCat(b.rows.groups.size()));
  for (const engine::GroupRecord& g : b.rows.groups) {
    args.push_back(g.id);
    args.push_back(EncodeGroup(g));
  }
  args.push_back(absl::StrCat(b.rows.gauges.size()));
  for (const engine::GaugeRecord& g : b.rows.gauges) {
    args.push_back(g.meter);
    args.push_back(absl::StrCat(g.value));
  }
}

// KEYS: the baseline mark, leases, groups, gauges. ARGV: now (Unix ms).
// Returns {working sessions whose lease runs past now, groups, subscribers},
// or {} without the lease baseline.
constexpr std::string_view kGaugesLua = R"lua(
if redis.call("GET", KEYS[1]) ~= "2" then return {} end
return {redis.call("ZCOUNT", KEYS[2], "(" .. ARGV[1], "+inf"), redis.call("HLEN", KEYS[3]),
        tonumber(redis.call("HGET", KEYS[4], "subscribers") or "0")}
)lua";

}  // namespace

std::string LeaseScript() {
  std::string body(LimiterLuaLibrary());
  body += "\n";
  body += LeaseLuaText();
  return body;
}

std::vector<std::string> RedisLedger::LeaseArguments(const LeaseOp& op, absl::Time now) const {
  std::vector<std::string> a;
  const int64_t now_ns = absl::ToUnixNanos(now);
  a.emplace_back(OpCode(op.kind));
  a.push_back(opts_.redis_time ? "" : absl::StrCat(now_ns / 1'000'000'000));
  a.push_back(opts_.redis_time ? "" : absl::StrCat(now_ns % 1'000'000'000));
  a.emplace_back(op.id);
  a.push_back(op.kind == LeaseOpKind::kSetSubscribers ? absl::StrCat(op.value)
                                                      : std::string(op.text));
  a.push_back(absl::StrCat(absl::ToInt64Milliseconds(op.lease_ttl)));
  a.push_back(op.limit ? absl::StrCat(*op.limit) : "");
  a.push_back(op.shadow ? "1" : "0");
  a.push_back(UnixMillisText(op.period.end + opts_.counter_retention));
  a.push_back(op.api_call ? EncodeFacts(*op.api_call) : "");
  AppendRateArguments(op.rates, a);
  return a;
}

absl::StatusOr<LeaseResult> RedisLedger::RunLease(const LeaseOp& op, absl::Time now) {
  if (!op.api_call) return absl::InvalidArgumentError("RunLease: no api_call facts");
  const std::vector<std::string> keys = LeaseKeys(op);
  const std::vector<std::string> args = LeaseArguments(op, now);
  const std::vector<std::string_view> key_views(keys.begin(), keys.end());
  const std::vector<std::string_view> arg_views(args.begin(), args.end());
  absl::StatusOr<RedisConnection> c = Acquire();
  if (!c.ok()) return Unavailable(c.status());
  absl::StatusOr<RedisReply> reply = c->EvalSha(lease_sha_, lease_script_, key_views, arg_views);
  Release(std::move(*c));
  if (!reply.ok()) return Unavailable(reply.status());
  if ((*reply)->is_error()) return StatusOfError(**reply);
  return LeaseResultOf(op, **reply);
}

absl::StatusOr<engine::LeaseGauges> RedisLedger::Gauges(absl::string_view tenant_id,
                                                        absl::Time now) {
  const std::string keys[] = {BaselineKey(tenant_id), LeasesKey(tenant_id), GroupsKey(tenant_id),
                              GaugesKey(tenant_id)};
  const std::string at = UnixMillisText(now);
  std::vector<std::string_view> argv{"EVAL", kGaugesLua, "4"};
  argv.insert(argv.end(), std::begin(keys), std::end(keys));
  argv.push_back(at);
  absl::StatusOr<RedisReply> reply = Call(argv);
  if (!reply.ok()) return reply.status();
  if ((*reply)->size() == 0) {
    return absl::FailedPreconditionError("the tenant has no lease baseline in Redis");
  }
  if ((*reply)->size() != 3) return absl::InternalError("the gauges script answered short");
  return engine::LeaseGauges{static_cast<uint64_t>((**reply)[0].integer()),
                             static_cast<uint64_t>((**reply)[1].integer()),
                             static_cast<uint64_t>((**reply)[2].integer())};
}

absl::Status RedisLedger::SetBaseline(absl::string_view tenant_id, const BillingPeriod& period,
                                      const std::vector<std::pair<std::string, uint64_t>>& values,
                                      const engine::LeaseBaseline& leases) {
  std::vector<std::string> keys{BaselineKey(tenant_id), SessionsKey(tenant_id),
                                LeasesKey(tenant_id), GroupsKey(tenant_id), GaugesKey(tenant_id)};
  std::vector<std::string> args{UnixMillisText(period.end + opts_.counter_retention)};
  AppendLeaseBaseline(leases, args);
  for (const auto& [meter, units] : values) {
    keys.push_back(CounterKey(tenant_id, period.start, meter));
    args.push_back(absl::StrCat(units));
  }
  const std::string numkeys = absl::StrCat(keys.size());
  std::vector<std::string_view> argv{"EVAL", kBaselineLua, numkeys};
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  return Call(argv).status();
}

}  // namespace quotum::store::redis
