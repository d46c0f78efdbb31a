// Usage routes: current period, daily series, history, channels, plans.
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "quotum/core/billing_period.h"
#include "quotum/core/string_views.h"
#include "quotum/engine/errors.h"
#include "quotum/http/api.h"
#include "quotum/http/call_util.h"
#include "quotum/http/render.h"

namespace quotum::http {
namespace {

std::optional<std::string> QueryParam(const boost::urls::params_view& q, std::string_view name) {
  auto it = q.find(name);
  if (it == q.end()) return std::nullopt;
  return std::string((*it).value);
}

absl::StatusOr<absl::CivilDay> ParseDay(std::string_view name, const std::string& text) {
  absl::CivilDay d;
  if (text.size() != 10 || !absl::ParseCivilTime(text, &d)) {
    return engine::BadRequest("invalid_query", Cat("\"", name, "\" must be a date YYYY-MM-DD."));
  }
  return d;
}

absl::StatusOr<int> IntParam(const boost::urls::params_view& q, std::string_view name, int dflt,
                             int lo, int hi) {
  auto v = QueryParam(q, name);
  if (!v) return dflt;
  int n = 0;
  if (!absl::SimpleAtoi(*v, &n) || n < lo || n > hi) {
    return engine::BadRequest("invalid_query",
                              Cat("\"", name, "\" must be an integer from ", lo, " to ", hi, "."));
  }
  return n;
}

}  // namespace

void Api::UsageCurrent(Call& c) {
  ASSIGN_OR_REPLY(u, engine_->ReadCurrentUsage(c.who), c);
  c.respond(JsonReply(200, UsageJson(engine_->catalog(), u)));
}

void Api::UsageDaily(Call& c) {
  const absl::CivilDay today = absl::ToCivilDay(engine_->clock().Now(), absl::UTCTimeZone());
  absl::CivilDay from, to;
  auto from_text = QueryParam(c.query, "from");
  auto to_text = QueryParam(c.query, "to");
  if (from_text || to_text) {
    if (QueryParam(c.query, "days")) {
      return c.respond(ErrorReply(400, "invalid_query", "Use either days or from/to, not both."));
    }
    ASSIGN_OR_REPLY(
        f, from_text ? ParseDay("from", *from_text) : absl::StatusOr<absl::CivilDay>(today), c);
    ASSIGN_OR_REPLY(t, to_text ? ParseDay("to", *to_text) : absl::StatusOr<absl::CivilDay>(today),
                    c);
    from = f;
    to = t;
  } else {
    ASSIGN_OR_REPLY(days, IntParam(c.query, "days", 30, 1, 366), c);
    to = today;
    from = today - (days - 1);
  }
  ASSIGN_OR_REPLY(rows, engine_->Daily(c.who, from, to), c);
  const Catalog& cat = engine_->catalog();
  boost::json::array arr;
  for (const auto& day : rows) {
    boost::json::object o;
    o["date"] = FormatDate(day.day);
    for (MeterId m = 0; m < cat.meter_count(); ++m) {
      if (cat.meters[m].kind == MeterKind::kCounter) o[cat.meters[m].name] = day.values[m];
    }
    arr.push_back(std::move(o));
  }
  c.respond(JsonReply(200, arr));
}

void Api::UsageHistory(Call& c) {
  ASSIGN_OR_REPLY(months, IntParam(c.query, "months", 12, 1, 24), c);
  ASSIGN_OR_REPLY(periods, engine_->History(c.who, months), c);
  const Catalog& cat = engine_->catalog();
  boost::json::array arr;
  for (const auto& p : periods) {
    boost::json::object o;
    o["period"] = p.period.Label();
    o["period_start"] = FormatRfc3339(p.period.start);
    o["period_end"] = FormatRfc3339(p.period.end);
    o["status"] = p.current ? "current" : "closed";
    for (MeterId m = 0; m < cat.meter_count(); ++m) {
      if (cat.meters[m].kind == MeterKind::kCounter) o[cat.meters[m].name] = p.values[m];
    }
    arr.push_back(std::move(o));
  }
  boost::json::object out;
  out["periods"] = std::move(arr);
  c.respond(JsonReply(200, out));
}

void Api::UsageChannels(Call& c) {
  std::string meter = QueryParam(c.query, "meter").value_or(std::string(meters::kMessagesSent));
  ASSIGN_OR_REPLY(rows, engine_->ChannelBreakdown(c.who, meter), c);
  boost::json::object channels;
  for (const auto& ch : engine_->catalog().channels) channels[ch] = 0;
  uint64_t total = 0;
  for (const auto& [ch, v] : rows) {
    if (!ch.empty()) channels[ch] = v;
    total += v;
  }
  boost::json::object out;
  out["meter"] = meter;
  out["total"] = total;
  out["channels"] = std::move(channels);
  c.respond(JsonReply(200, out));
}

void Api::Plans(Call& c) {
  const Catalog& cat = engine_->catalog();
  boost::json::array arr;
  for (const Plan& p : cat.plans) {
    boost::json::object o;
    o["name"] = p.name;
    o["display_name"] = p.display_name;
    o["price_cents"] = p.price_cents;
    boost::json::object limits;
    for (MeterId m = 0; m < cat.meter_count(); ++m) {
      if (p.limits[m]) limits[cat.meters[m].name] = *p.limits[m];
    }
    o["limits"] = std::move(limits);
    o["rate_limit_profile"] = p.rate_limit_profile;
    arr.push_back(std::move(o));
  }
  boost::json::object out;
  out["plans"] = std::move(arr);
  c.respond(JsonReply(200, out));
}

}  // namespace quotum::http
