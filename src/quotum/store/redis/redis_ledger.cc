#include "quotum/store/redis/redis_ledger.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "quotum/core/string_views.h"
#include "quotum/engine/errors.h"
#include "quotum/store/redis/facts_codec.h"
#include "quotum/store/redis/lua_library.h"
#include "quotum/store/redis/redis_facts_stream.h"
#include "quotum/store/redis/redis_keys.h"
#include "quotum/store/redis/redis_script_args.h"

namespace quotum::store::redis {
namespace {

using engine::CheckProgram;
using engine::LedgerResult;

// Reply kinds of decide.lua.
constexpr long long kDecided = 0, kReplayed = 1, kKeyReused = 2, kOverflow = 3, kUnknownKey = 4,
                    kNoSession = 6, kNotWorking = 7, kStaleSession = 8, kHoldMissing = 9,
                    kHoldExists = 10;
// decide.lua's reply: kind, counter_before, warmup_used, charged, refused,
// shadow bits, then four fields per rate check, then the trailing fields:
// the credits counter before, the units held before, the reservation's
// units and its expiry, the unused units of the meter's and the credits'
// top-ups plus one (0: the check had none) (replies stored before credits, reservations or top-ups
// existed have fewer; a missing one reads 0).
// Then five for the tier check: its level + 1 (0: none), cap + 1 (0:
// unlimited), unique recipients counted before, the recipients that fit, and
// when the oldest counted was last messaged (Unix ms).
constexpr size_t kTrailingFields = 11;

std::string Flags(const CheckProgram& p) {
  std::string f;
  for (bool b :
       {p.dry_run, p.partial, p.count_api_call, p.warmup.has_value(), !p.idempotency_key.empty()}) {
    f.push_back(b ? '1' : '0');
  }
  return f;
}

// KEYS: the baseline mark, the meter's counter, the api_calls counter, the
// facts stream, the charge's done mark. ARGV: units, api_call ("1"/"0"), the
// counters' expiry (Unix ms), the facts, the done mark's TTL (ms). Returns 0
// without the baseline mark, else 1 (counted now or before).
constexpr std::string_view kReconcileLua = R"lua(
if redis.call("EXISTS", KEYS[5]) == 1 then return 1 end
if redis.call("EXISTS", KEYS[1]) == 0 then return 0 end
local units = tonumber(ARGV[1])
if units > 0 and redis.call("INCRBY", KEYS[2], ARGV[1]) == units then
  redis.call("PEXPIREAT", KEYS[2], ARGV[3])
end
if ARGV[2] == "1" and redis.call("INCRBY", KEYS[3], 1) == 1 then
  redis.call("PEXPIREAT", KEYS[3], ARGV[3])
end
redis.call("XADD", KEYS[4], "*", "c", ARGV[1], "a", ARGV[2], "ok", "1", "f", ARGV[4])
redis.call("SET", KEYS[5], "1", "PX", ARGV[5])
return 1
)lua";

/// The verdicts of a decided (or replayed) reply; the quota part is judged
/// again here, exactly, from the counters the script read.
absl::StatusOr<engine::Verdicts> VerdictsOf(const CheckProgram& p, ReplyView reply) {
  const size_t size = kReplyHeaderFields + kReplyRateFields * p.rates.size();
  if (reply.size() < size || reply.size() > size + kTrailingFields) {
    return absl::InternalError(absl::StrCat("decide.lua answered ", reply.size(), " fields for ",
                                            p.rates.size(), " rate checks"));
  }
  engine::Verdicts v;
  for (size_t i = 0; i < p.rates.size(); ++i) {
    v.rates.push_back(RateOutcomeOf(p.rates[i], reply, kReplyHeaderFields + kReplyRateFields * i));
  }
  // A late event's closed period is never enforced, and its counter is not
  // held whole here (only what late events added): as in memory, 0.
  v.quota_before = p.quota.late_period ? 0 : static_cast<uint64_t>(reply[1].integer());
  v.refused = static_cast<int>(reply[4].integer()) - 1;
  auto trailing = [&](size_t i) -> int64_t {
    return reply.size() > size + i ? reply[size + i].integer() : 0;
  };
  if (!p.quota.late_period) v.held_before = static_cast<uint64_t>(trailing(1));
  v.hold_units = static_cast<uint64_t>(trailing(2));
  v.hold_expires_at = absl::FromUnixMillis(trailing(3));
  // Bits 0..28: the rate checks (29: credits, 30: warm-up, 31: quota).
  v.rate_shadow_denied = static_cast<uint32_t>(reply[5].integer() & ((1 << 29) - 1));
  // Unused top-up units + 1; 0 when the check had no top-ups.
  for (auto [at, has, left] : {std::tuple{size_t{4}, &v.quota_topups, &v.topup_left},
                               std::tuple{size_t{5}, &v.credits_topups, &v.credits_topup_left}}) {
    const int64_t field = trailing(at);
    *has = field > 0;
    *left = field > 0 ? static_cast<uint64_t>(field - 1) : 0;
  }
  engine::JudgeQuota(p, static_cast<uint64_t>(reply[2].integer()), v.quota_before, v);
  engine::JudgeCredits(p, static_cast<uint64_t>(trailing(0)), v);
  if (p.tier && trailing(6) > 0) {
    v.tier_checked = true;
    v.tier_level = static_cast<uint32_t>(trailing(6) - 1);
    if (trailing(7) > 0) v.tier_limit = static_cast<uint64_t>(trailing(7) - 1);
    v.tier_used = static_cast<uint64_t>(trailing(8));
    v.tier_fit = static_cast<uint64_t>(trailing(9));
    v.tier_oldest_ms = trailing(10);
    engine::JudgeTier(p, v);
  }
  v.charged = static_cast<uint64_t>(reply[3].integer());
  if (p.credits) v.credits_charged = v.charged * p.credits->per_unit;
  return v;
}

absl::StatusOr<LedgerResult> ResultOf(const CheckProgram& p, ReplyView reply, absl::Time now) {
  LedgerResult r;
  const long long kind = reply.size() > 0 ? reply[0].integer() : -1;
  if (kind == kKeyReused) r.replay = LedgerResult::Replay::kKeyReused;
  if (kind == kOverflow) return engine::QuantityOverflow(p.quota.meter_name);
  if (kind == kReplyNoBaseline) r.needs_baseline = true;
  if (kind == kNoSession) r.session = LedgerResult::SessionCheck::kNotFound;
  if (kind == kNotWorking) r.session = LedgerResult::SessionCheck::kNotWorking;
  if (kind == kStaleSession) r.session = LedgerResult::SessionCheck::kStale;
  if (kind == kHoldMissing) r.hold_missing = true;
  if (kind == kHoldExists) r.hold_exists = true;
  if (kind == kKeyReused || kind == kUnknownKey || kind == kReplyNoBaseline || kind == kNoSession ||
      kind == kNotWorking || kind == kStaleSession || kind == kHoldMissing || kind == kHoldExists) {
    return r;
  }
  if (kind != kDecided && kind != kReplayed) {
    return absl::InternalError(absl::StrCat("decide.lua answered kind ", kind));
  }
  absl::StatusOr<engine::Verdicts> v = VerdictsOf(p, reply);
  if (!v.ok()) return v.status();
  r.decision = engine::DecisionOf(p, *v, now);
  if (kind == kReplayed) {
    r.replay = LedgerResult::Replay::kReplayed;
    r.decision.replayed = true;
    return r;
  }
  if (v->charged != r.decision.consumed) {
    return absl::InternalError(absl::StrCat("decide.lua charged ", v->charged, " units where ",
                                            r.decision.consumed, " were decided"));
  }
  r.verdicts = std::move(*v);
  return r;
}

}  // namespace

std::string DecisionScript() {
  std::string body(LimiterLuaLibrary());
  body += "\n";
  body += DecideLuaText();
  return body;
}

std::vector<std::string> DecisionKeys(const CheckProgram& p) {
  const std::string tag = absl::StrCat("{", p.tenant_id, "}");
  std::vector<std::string> keys;
  keys.reserve(11 + p.rates.size());
  // A late event's units go to the closed period's counter; its api_call,
  // like every request's, to the request's period.
  keys.push_back(absl::StrCat(tag, ":u:", absl::ToUnixSeconds(p.quota.UnitsPeriod().start), ":",
                              p.quota.meter_name));
  keys.push_back(absl::StrCat(tag, ":u:", absl::ToUnixSeconds(p.quota.period.start), ":api_calls"));
  keys.push_back(p.warmup ? WarmupKey(p.tenant_id, p.warmup->day_end, p.warmup->session_id)
                          : absl::StrCat(tag, ":w:-"));
  keys.push_back(p.idempotency_key.empty() ? absl::StrCat(tag, ":i:-")
                                           : absl::StrCat(tag, ":i:", p.idempotency_key));
  keys.push_back(BaselineKey(p.tenant_id));
  keys.push_back(FactsStreamKey(p.tenant_id));
  keys.push_back(SessionsKey(p.tenant_id));
  keys.push_back(LeasesKey(p.tenant_id));
  for (const engine::RateCheck& r : p.rates) keys.push_back(RateKey(p.tenant_id, r));
  keys.push_back(p.credits
                     ? absl::StrCat(tag, ":u:", absl::ToUnixSeconds(p.quota.UnitsPeriod().start),
                                    ":", p.credits->meter_name)
                     : absl::StrCat(tag, ":c:-"));
  if (p.quota.holdable) {
    keys.push_back(HoldsKey(p.tenant_id, p.quota.meter_name));
    keys.push_back(HoldExpiriesKey(p.tenant_id, p.quota.meter_name));
  } else {
    keys.push_back(absl::StrCat(tag, ":h:-"));
    keys.push_back(absl::StrCat(tag, ":hx:-"));
  }
  keys.push_back(p.quota.topups.empty() ? absl::StrCat(tag, ":tu:-")
                                        : TopupsKey(p.tenant_id, p.quota.meter_name));
  keys.push_back(!p.credits || p.credits->topups.empty()
                     ? absl::StrCat(tag, ":tu:-")
                     : TopupsKey(p.tenant_id, p.credits->meter_name));
  keys.push_back(p.tier ? TierRecipientsKey(p.tenant_id, p.tier->session_id)
                        : absl::StrCat(tag, ":tr:-"));
  keys.push_back(p.tier ? TierLevelKey(p.tenant_id, p.tier->session_id)
                        : absl::StrCat(tag, ":ts:-"));
  return keys;
}

RedisLedger::RedisLedger(RedisLedgerOptions options)
    : opts_(std::move(options)), script_(DecisionScript()), lease_script_(LeaseScript()) {}

absl::StatusOr<std::unique_ptr<RedisLedger>> RedisLedger::Connect(RedisLedgerOptions options) {
  std::unique_ptr<RedisLedger> ledger(new RedisLedger(std::move(options)));
  absl::StatusOr<RedisConnection> c = ledger->Acquire();
  if (!c.ok()) return c.status();
  absl::StatusOr<std::string> sha = c->LoadScript(ledger->script_);
  if (!sha.ok()) return sha.status();
  ledger->sha_ = *sha;
  absl::StatusOr<std::string> lease_sha = c->LoadScript(ledger->lease_script_);
  if (!lease_sha.ok()) return lease_sha.status();
  ledger->lease_sha_ = *lease_sha;
  ledger->Release(std::move(*c));
  RedisPipelineOptions po;
  po.client = ledger->opts_.client;
  po.workers = ledger->opts_.pipeline_workers;
  ledger->pipeline_ = std::make_unique<RedisPipeline>(po, ledger->script_);
  return ledger;
}

absl::StatusOr<LedgerResult> RedisLedger::Execute(const CheckProgram& p, absl::Time now) {
  return Run(p, now, "x");
}

void RedisLedger::ExecuteAsync(const CheckProgram& p, absl::Time now, Done done) {
  pipeline_->Send(EvalShaCommand(p, now, "x"),
                  [&p, now, done = std::move(done)](absl::StatusOr<RedisReply> reply) mutable {
                    if (!reply.ok()) return done(Unavailable(reply.status()));
                    if ((*reply)->is_error()) return done(StatusOfError(**reply));
                    done(ResultOf(p, **reply, now));
                  });
}

std::vector<std::string> RedisLedger::EvalShaCommand(const CheckProgram& p, absl::Time now,
                                                     absl::string_view mode) const {
  std::vector<std::string> keys = DecisionKeys(p);
  std::vector<std::string> args = Arguments(p, now, mode);
  std::vector<std::string> argv;
  argv.reserve(3 + keys.size() + args.size());
  argv.push_back("EVALSHA");
  argv.push_back(sha_);
  argv.push_back(absl::StrCat(keys.size()));
  for (std::string& k : keys) argv.push_back(std::move(k));
  for (std::string& a : args) argv.push_back(std::move(a));
  return argv;
}

absl::StatusOr<LedgerResult> RedisLedger::Replay(const CheckProgram& p, absl::Time now) {
  if (p.idempotency_key.empty()) return LedgerResult{};
  return Run(p, now, "r");
}

absl::StatusOr<std::vector<uint64_t>> RedisLedger::Counters(
    absl::string_view tenant_id, absl::Time period_start, const std::vector<std::string>& meters) {
  std::vector<std::string> keys{BaselineKey(tenant_id)};
  for (const std::string& m : meters) keys.push_back(CounterKey(tenant_id, period_start, m));
  std::vector<std::string_view> argv{"MGET"};
  argv.insert(argv.end(), keys.begin(), keys.end());
  absl::StatusOr<RedisReply> reply = Call(argv);
  if (!reply.ok()) return reply.status();
  if ((*reply)->size() != keys.size()) return absl::InternalError("MGET answered short");
  if ((**reply)[0].is_nil()) {
    return absl::FailedPreconditionError("the tenant has no baseline in Redis (SetBaseline)");
  }
  std::vector<uint64_t> values(meters.size(), 0);
  for (size_t i = 0; i < values.size(); ++i) {
    const ReplyView v = (**reply)[i + 1];
    if (!v.is_nil() && !absl::SimpleAtoi(ToAbsl(v.str()), &values[i])) {
      return absl::InternalError(absl::StrCat("counter ", keys[i], " is not a number"));
    }
  }
  return values;
}

absl::StatusOr<bool> RedisLedger::Reconcile(const engine::FailOpenCharge& c) {
  const std::string keys[] = {
      BaselineKey(c.tenant_id), CounterKey(c.tenant_id, c.period_start, c.meter),
      CounterKey(c.tenant_id, c.period_start, "api_calls"), FactsStreamKey(c.tenant_id),
      absl::StrCat("{", c.tenant_id, "}:o:", c.id)};
  const engine::UsageFacts facts{c.meter,      c.channel,   c.period_start, c.at, c.now,
                                 c.units,      {},          std::nullopt,   {},   {},
                                 std::nullopt, std::nullopt};
  const std::string args[] = {absl::StrCat(c.units), c.api_call ? "1" : "0",
                              UnixMillisText(c.period_end + opts_.counter_retention),
                              EncodeFacts(facts),
                              absl::StrCat(absl::ToInt64Milliseconds(absl::Hours(24 * 7)))};
  std::vector<std::string_view> argv{"EVAL", kReconcileLua, "5"};
  argv.insert(argv.end(), std::begin(keys), std::end(keys));
  argv.insert(argv.end(), std::begin(args), std::end(args));
  absl::StatusOr<RedisReply> reply = Call(argv);
  if (!reply.ok()) return reply.status();
  return (*reply)->integer() == 1;
}

namespace {

// Restores what is drawn of a meter's top-ups. KEYS[1] their hash; ARGV[1]
// the last expiry (Unix ms; "" = one never lapses), then (id, drawn) pairs.
// Raises, never lowers; the hash lives as long as its last top-up.
constexpr std::string_view kRestoreTopupsLua = R"lua(
local existed = redis.call("EXISTS", KEYS[1]) == 1
for i = 2, #ARGV, 2 do
  local cur = tonumber(redis.call("HGET", KEYS[1], ARGV[i]) or "0")
  if tonumber(ARGV[i + 1]) > cur then redis.call("HSET", KEYS[1], ARGV[i], ARGV[i + 1]) end
end
if redis.call("EXISTS", KEYS[1]) == 0 then return 0 end
if ARGV[1] == "" then redis.call("PERSIST", KEYS[1])
elseif not existed then redis.call("PEXPIREAT", KEYS[1], ARGV[1])
else
  local cur = redis.call("PEXPIRETIME", KEYS[1])
  if cur >= 0 and cur < tonumber(ARGV[1]) then redis.call("PEXPIREAT", KEYS[1], ARGV[1]) end
end
return 1
)lua";

}  // namespace

absl::StatusOr<std::vector<uint64_t>> RedisLedger::TopupsDrawn(
    absl::string_view tenant_id, const std::vector<std::pair<std::string, std::string>>& topups) {
  std::vector<uint64_t> out;
  for (const auto& [meter, id] : topups) {
    const std::string key = TopupsKey(tenant_id, meter);
    const std::string_view argv[] = {"HGET", key, id};
    absl::StatusOr<RedisReply> reply = Call(argv);
    if (!reply.ok()) return reply.status();
    uint64_t drawn = 0;
    if (!(*reply)->is_nil() && !absl::SimpleAtoi(ToAbsl((*reply)->str()), &drawn)) {
      return absl::InternalError(absl::StrCat("top-up ", id, " is not a number in ", key));
    }
    out.push_back(drawn);
  }
  return out;
}

absl::Status RedisLedger::RestoreTopups(absl::string_view tenant_id,
                                        const std::vector<engine::TopupRecord>& topups) {
  std::map<std::string, std::vector<const engine::TopupRecord*>> by_meter;
  for (const engine::TopupRecord& t : topups) by_meter[t.meter].push_back(&t);
  for (const auto& [meter, list] : by_meter) {
    const std::string key = TopupsKey(tenant_id, meter);
    absl::Time last = absl::InfinitePast();
    std::vector<std::string> args{""};
    for (const engine::TopupRecord* t : list) {
      last = std::max(last, t->expires_at);
      if (t->drawn == 0) continue;
      args.push_back(t->id);
      args.push_back(absl::StrCat(t->drawn));
    }
    if (args.size() == 1) continue;
    if (last != absl::InfiniteFuture()) args[0] = UnixMillisText(last);
    std::vector<std::string_view> argv{"EVAL", kRestoreTopupsLua, "1", key};
    argv.insert(argv.end(), args.begin(), args.end());
    if (absl::StatusOr<RedisReply> r = Call(argv); !r.ok()) return r.status();
  }
  return absl::OkStatus();
}

absl::Status RedisLedger::Ping() {
  const std::string_view ping[] = {"PING"};
  return Call(ping).status();
}

absl::StatusOr<RedisReply> RedisLedger::Call(std::span<const std::string_view> argv) {
  absl::StatusOr<RedisConnection> c = Acquire();
  if (!c.ok()) return Unavailable(c.status());
  absl::StatusOr<RedisReply> reply = c->Command(argv);
  Release(std::move(*c));
  if (!reply.ok()) return Unavailable(reply.status());
  if ((*reply)->is_error()) return StatusOfError(**reply);
  return reply;
}

std::vector<std::string> RedisLedger::Arguments(const CheckProgram& p, absl::Time now,
                                                absl::string_view mode) const {
  std::vector<std::string> a;
  a.reserve(25 + 5 * p.rates.size());
  const int64_t now_ns = absl::ToUnixNanos(now);
  a.emplace_back(mode);
  a.push_back(opts_.redis_time ? "" : absl::StrCat(now_ns / 1'000'000'000));
  a.push_back(opts_.redis_time ? "" : absl::StrCat(now_ns % 1'000'000'000));
  a.push_back(Flags(p));
  a.push_back(absl::StrCat(p.fingerprint));
  a.push_back(absl::StrCat(absl::ToInt64Milliseconds(opts_.idempotency_ttl)));
  a.push_back(absl::StrCat(p.quota.quantity));
  a.push_back(p.quota.limit ? absl::StrCat(*p.quota.limit) : "");
  a.push_back(p.quota.on_limit == OnLimit::kAllow ? "1" : "0");
  a.push_back(p.quota.shadow ? "1" : "0");
  a.push_back(UnixMillisText(p.quota.period.end + opts_.counter_retention));
  a.push_back(p.warmup ? absl::StrCat(p.warmup->cap) : "0");
  a.push_back(p.warmup && p.warmup->shadow ? "1" : "0");
  a.push_back(p.warmup ? UnixMillisText(p.warmup->day_end + absl::Hours(1)) : "0");
  a.push_back(p.facts && mode == "x" ? EncodeFacts(*p.facts) : "");
  a.emplace_back(p.sending_session);
  a.push_back(p.sending_first_working ? UnixMillisText(*p.sending_first_working) : "");
  AppendRateArguments(p.rates, a);
  AppendCreditsArguments(p.credits, a);
  AppendHoldArguments(p.hold, p.quota.holdable, a);
  AppendTopupArguments(p.quota.topups, a);
  AppendTopupArguments(p.credits ? p.credits->topups : engine::TopupGrants{}, a);
  AppendTierArguments(p.tier, a);
  return a;
}

absl::StatusOr<LedgerResult> RedisLedger::Run(const CheckProgram& p, absl::Time now,
                                              absl::string_view mode) {
  const std::vector<std::string> keys = DecisionKeys(p);
  const std::vector<std::string> args = Arguments(p, now, mode);
  const std::vector<std::string_view> key_views(keys.begin(), keys.end());
  const std::vector<std::string_view> arg_views(args.begin(), args.end());
  absl::StatusOr<RedisConnection> c = Acquire();
  if (!c.ok()) return Unavailable(c.status());
  absl::StatusOr<RedisReply> reply = c->EvalSha(sha_, script_, key_views, arg_views);
  Release(std::move(*c));
  if (!reply.ok()) return Unavailable(reply.status());
  if ((*reply)->is_error()) return StatusOfError(**reply);
  return ResultOf(p, **reply, now);
}

absl::StatusOr<RedisConnection> RedisLedger::Acquire() {
  {
    MutexLock lock(&mu_);
    while (idle_.empty() && open_ >= opts_.pool_size) idle_cv_.Wait(&mu_);
    while (!idle_.empty()) {
      RedisConnection c = std::move(idle_.back());
      idle_.pop_back();
      if (!c.Stale()) return c;
      --open_;  // closed by the server while idle: connect afresh
    }
    ++open_;
  }
  absl::StatusOr<RedisConnection> c = RedisConnection::Connect(opts_.client);
  if (!c.ok()) {
    MutexLock lock(&mu_);
    --open_;
    idle_cv_.Signal();
  }
  return c;
}

void RedisLedger::Release(RedisConnection c) {
  MutexLock lock(&mu_);
  if (c.broken()) {
    --open_;
  } else {
    idle_.push_back(std::move(c));
  }
  idle_cv_.Signal();
}

absl::StatusOr<engine::SharedLedger::TierState> RedisLedger::TierOf(absl::string_view tenant_id,
                                                                    absl::string_view session_id,
                                                                    absl::Time now) {
  const std::string level_key = TierLevelKey(tenant_id, session_id);
  const std::string recipients_key = TierRecipientsKey(tenant_id, session_id);
  const int64_t at = absl::ToUnixMillis(now);
  const std::string day = absl::StrCat("(", at - kTierWindowMs);
  const std::string week = absl::StrCat("(", at - kTierEvaluationMs);
  TierState out;
  std::vector<std::string_view> argv{"HMGET", level_key, "l", "s", "q"};
  absl::StatusOr<RedisReply> level = Call(argv);
  if (!level.ok()) return level.status();
  int64_t* fields[] = {nullptr, &out.level.since_ms, &out.level.qualified_ms};
  for (size_t i = 0; i < 3 && i < (*level)->size(); ++i) {
    const ReplyView v = (**level)[i];
    int64_t n = 0;
    if (v.is_nil() || !absl::SimpleAtoi(ToAbsl(v.str()), &n)) continue;
    if (i == 0) out.level.level = static_cast<uint32_t>(n);
    if (i > 0) *fields[i] = n;
  }
  for (auto [edge, count] : {std::pair{&day, &out.used_24h}, std::pair{&week, &out.unique_7d}}) {
    std::vector<std::string_view> zcount{"ZCOUNT", recipients_key, *edge, "+inf"};
    absl::StatusOr<RedisReply> n = Call(zcount);
    if (!n.ok()) return n.status();
    if ((*n)->is_error()) return StatusOfError(**n);
    *count = static_cast<uint64_t>((*n)->integer());
  }
  return out;
}

absl::StatusOr<uint64_t> RedisLedger::WarmupSent(absl::string_view tenant_id,
                                                 absl::string_view session_id, absl::Time day_end) {
  const std::string key = WarmupKey(tenant_id, day_end, session_id);
  std::vector<std::string_view> argv{"GET", key};
  absl::StatusOr<RedisReply> r = Call(argv);
  if (!r.ok()) return r.status();
  if ((*r)->is_error()) return StatusOfError(**r);
  uint64_t n = 0;
  const ReplyView v = **r;
  if (!v.is_nil() && !absl::SimpleAtoi(ToAbsl(v.str()), &n)) {
    return absl::InternalError("redis: a warm-up count is not a number");
  }
  return n;
}

}  // namespace quotum::store::redis
