#include "quotum/store/redis/redis_script_args.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "quotum/engine/errors.h"

namespace quotum::store::redis {
namespace {

// The limiter script accepts limits and costs up to 2^52.
constexpr uint64_t kMaxRateArgument = uint64_t{1} << 52;

}  // namespace

std::string UnixMillisText(absl::Time t) { return absl::StrCat(absl::ToUnixMillis(t)); }

void AppendRateArguments(const engine::RateChecks& rates, std::vector<std::string>& a) {
  a.push_back(absl::StrCat(rates.size()));
  for (const engine::RateCheck& r : rates) {
    // Above the limit every cost is refused alike (retry never): cap it so
    // the script's arithmetic stays exact.
    const uint64_t limit = std::min(r.rule.limit, kMaxRateArgument);
    a.push_back(ratelimit::AlgorithmName(r.rule.algorithm));
    a.push_back(absl::StrCat(limit));
    a.push_back(absl::StrCat(r.rule.window_ns));
    a.push_back(absl::StrCat(std::min(r.cost, limit + 1)));
    a.push_back(r.shadow ? "1" : "0");
  }
}

void AppendCreditsArguments(const std::optional<engine::CreditsCheck>& c,
                            std::vector<std::string>& a) {
  if (!c) {
    a.insert(a.end(), {"0", "", "0", "0"});
    return;
  }
  a.push_back(absl::StrCat(c->per_unit));
  a.push_back(c->limit ? absl::StrCat(*c->limit) : "");
  a.push_back(c->on_limit == OnLimit::kAllow ? "1" : "0");
  a.push_back(c->shadow ? "1" : "0");
}

void AppendHoldArguments(const std::optional<engine::HoldCheck>& h, bool holdable,
                         std::vector<std::string>& a) {
  if (!h) {
    a.insert(a.end(), {holdable ? "" : "-", "", "0"});
    return;
  }
  using Op = engine::HoldCheck::Op;
  a.push_back(h->op == Op::kReserve ? "s" : h->op == Op::kCommit ? "c" : "l");
  a.emplace_back(h->id);
  a.push_back(absl::StrCat(absl::ToInt64Milliseconds(h->ttl)));
}

absl::Status Unavailable(const absl::Status& cause) {
  return engine::Error(absl::StatusCode::kUnavailable, "store_unavailable",
                       absl::StrCat("The counter store (Redis) is unavailable: ", cause.message()));
}

absl::Status StatusOfError(ReplyView reply) {
  const absl::Status s = ErrorReplyStatus(reply);
  // Out of memory (OOM, maxmemory reached) wrote nothing either: the
  // request may be retried, like any unavailability (not a 429 of a quota).
  if (s.code() == absl::StatusCode::kUnavailable ||
      s.code() == absl::StatusCode::kResourceExhausted) {
    return Unavailable(s);
  }
  return s;
}

void AppendTopupArguments(const engine::TopupGrants& grants, std::vector<std::string>& a) {
  a.push_back(absl::StrCat(grants.size()));
  for (const engine::TopupGrant& g : grants) {
    a.push_back(g.id);
    a.push_back(absl::StrCat(g.units));
    a.push_back(g.expires_at == absl::InfiniteFuture() ? "" : UnixMillisText(g.expires_at));
  }
}

engine::RateOutcome RateOutcomeOf(const engine::RateCheck& check, ReplyView reply, size_t at) {
  engine::RateOutcome o;
  o.category = check.category;
  o.limit = check.rule.limit;
  o.window_ns = check.rule.window_ns;
  o.shadow = check.shadow;
  o.allowed = reply[at].integer() == 1;
  o.remaining = static_cast<uint64_t>(reply[at + 1].integer());
  o.reset_ns = reply[at + 2].integer();
  o.retry_ns = reply[at + 3].integer();
  return o;
}

void AppendTierArguments(const std::optional<engine::TierCheck>& t, std::vector<std::string>& a) {
  if (!t || t->recipients.empty()) {
    a.emplace_back("0");
    return;
  }
  a.push_back(absl::StrCat(t->recipients.size()));
  a.push_back(absl::StrCat(t->policy->steps.size()));
  for (uint64_t step : t->policy->steps) a.push_back(absl::StrCat(step));
  a.push_back(absl::StrCat(absl::ToInt64Milliseconds(t->policy->step_up_delay)));
  for (absl::string_view r : t->recipients) a.emplace_back(r);
}

}  // namespace quotum::store::redis
