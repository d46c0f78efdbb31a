// RedisLedger: a failed message's charge given back (SPEC §2 "Delivery
// provider"; docs/scale-out.md). One script takes the units back out of the
// period counters and appends the give-back to the facts stream, so the
// reports lose them with the counters; a mark per message makes it happen
// once, and keeps why the message failed for a hand-off that was interrupted
// before the cold store's failed mark.
#include "absl/strings/str_cat.h"
#include "quotum/core/string_views.h"
#include "quotum/store/redis/facts_codec.h"
#include "quotum/store/redis/redis_facts_stream.h"
#include "quotum/store/redis/redis_keys.h"
#include "quotum/store/redis/redis_ledger.h"
#include "quotum/store/redis/redis_script_args.h"

namespace quotum::store::redis {
namespace {

// How long the once-mark is kept: past any retry of the same failure.
constexpr absl::Duration kGivenBackMarkTtl = absl::Hours(24 * 7);

// KEYS: the baseline mark, the meter's counter, the credits counter, the
// facts stream, the once-mark. ARGV: units, credits, the facts, the mark's
// TTL (ms), the reason. Returns 0 without the baseline mark, else 1 (given
// back now or before). Neither counter goes below 0.
constexpr std::string_view kGiveBackLua = R"lua(
if redis.call("EXISTS", KEYS[5]) == 1 then return 1 end
if redis.call("EXISTS", KEYS[1]) == 0 then return 0 end
local units = math.min(tonumber(ARGV[1]), tonumber(redis.call("GET", KEYS[2]) or "0"))
if units > 0 then redis.call("DECRBY", KEYS[2], units) end
local credits = math.min(tonumber(ARGV[2]), tonumber(redis.call("GET", KEYS[3]) or "0"))
if credits > 0 then redis.call("DECRBY", KEYS[3], credits) end
if units > 0 or credits > 0 then
  redis.call("XADD", KEYS[4], "*", "c", string.format("%d", units), "gc",
             string.format("%d", credits), "a", "0", "ok", "1", "f", ARGV[3])
end
redis.call("SET", KEYS[5], ARGV[5], "PX", ARGV[4])
return 1
)lua";

}  // namespace

absl::StatusOr<bool> RedisLedger::GiveBack(const engine::GivenBackCharge& c) {
  const std::string keys[] = {BaselineKey(c.tenant_id),
                              CounterKey(c.tenant_id, c.period_start, c.meter),
                              CounterKey(c.tenant_id, c.period_start, "credits"),
                              FactsStreamKey(c.tenant_id), GivenBackKey(c.tenant_id, c.message_id)};
  engine::UsageFacts facts;
  facts.meter = c.meter;
  facts.channel = c.channel;
  facts.period_start = c.period_start;
  facts.period_end = c.period_end;
  facts.at = c.at;
  facts.now = c.now;
  facts.quantity = c.units;
  facts.give_back = true;
  const std::string args[] = {absl::StrCat(c.units), absl::StrCat(c.credits), EncodeFacts(facts),
                              absl::StrCat(absl::ToInt64Milliseconds(kGivenBackMarkTtl)),
                              c.reason.empty() ? std::string("failed") : c.reason};
  std::vector<std::string_view> argv{"EVAL", kGiveBackLua, "5"};
  argv.insert(argv.end(), std::begin(keys), std::end(keys));
  argv.insert(argv.end(), std::begin(args), std::end(args));
  absl::StatusOr<RedisReply> reply = Call(argv);
  if (!reply.ok()) return reply.status();
  if ((*reply)->is_error()) return StatusOfError(**reply);
  return (*reply)->integer() == 1;
}

absl::StatusOr<std::optional<std::string>> RedisLedger::GivenBackReason(
    absl::string_view tenant_id, absl::string_view message_id) {
  const std::string key = GivenBackKey(tenant_id, message_id);
  std::vector<std::string_view> argv{"GET", key};
  absl::StatusOr<RedisReply> r = Call(argv);
  if (!r.ok()) return r.status();
  if ((*r)->is_error()) return StatusOfError(**r);
  const ReplyView v = **r;
  if (v.is_nil()) return std::nullopt;
  return std::string(v.str());
}

}  // namespace quotum::store::redis
