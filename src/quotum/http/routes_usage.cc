// Usage routes: current period, daily and hourly series, history, channels, plans.
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "quotum/core/billing_period.h"
#include "quotum/core/string_views.h"
#include "quotum/engine/errors.h"
#include "quotum/http/api.h"
#include "quotum/http/call_util.h"
#include "quotum/http/render.h"
#include "quotum/http/report_query.h"

namespace quotum::http {
namespace {

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

// Adds every counter meter's value, by name.
void AddCounters(const Catalog& cat, const std::vector<uint64_t>& values, boost::json::object& o) {
  for (MeterId m = 0; m < cat.meter_count(); ++m) {
    if (cat.meters[m].kind == MeterKind::kCounter) o[cat.meters[m].name] = values[m];
  }
}

}  // namespace

void Api::UsageCurrent(Call& c) {
  ASSIGN_OR_REPLY(u, engine_->ReadCurrentUsage(c.who), c);
  c.respond(JsonReply(200, UsageJson(engine_->catalog(), u)));
}

void Api::UsageStream(Call& c) {
  Reply r;
  r.content_type = "text/event-stream";
  r.Header("Cache-Control", "no-store");
  r.Header("X-Accel-Buffering", "no");  // proxies such as nginx must not hold events back
  if (c.req.method() == boost::beast::http::verb::head) return c.respond(std::move(r));
  // An id is 16 hex digits; anything much longer cannot name a state.
  const auto header = c.req["Last-Event-ID"];
  std::string last = header.size() <= 64 ? std::string(header) : std::string();
  ASSIGN_OR_REPLY(body, streams_->Open(c.who, std::move(last)), c);
  r.pushed = std::move(body);
  c.respond(std::move(r));
}

absl::CivilDay Api::Today() const {
  return absl::ToCivilDay(engine_->clock().Now(), absl::UTCTimeZone());
}

void Api::UsageDaily(Call& c) {
  const absl::CivilDay today = Today();
  const bool ranged =
      QueryParam(c.query, "range") || QueryParam(c.query, "from") || QueryParam(c.query, "to");
  const bool by_days = QueryParam(c.query, "days").has_value();
  absl::CivilDay from, to;
  if (ranged && by_days) {
    return c.respond(
        ErrorReply(400, "invalid_query", "Use either days or range/from/to, not both."));
  }
  if (!by_days) {  // a report range; none: the current period
    ASSIGN_OR_REPLY(r, ParseReportRange(c.query, today, engine_->CurrentPeriod(c.who)), c);
    from = r.from;
    to = r.to;
  } else {
    ASSIGN_OR_REPLY(days, IntParam(c.query, "days", 30, 1, engine::kMaxReportDays), c);
    to = today;
    from = today - (days - 1);
  }
  ASSIGN_OR_REPLY(rows, engine_->Daily(c.who, from, to), c);
  const Catalog& cat = engine_->catalog();
  boost::json::array arr;
  for (const auto& day : rows) {
    boost::json::object o;
    o["date"] = FormatDate(day.day);
    AddCounters(cat, day.values, o);
    arr.push_back(std::move(o));
  }
  c.respond(JsonReply(200, arr));
}

void Api::UsageHourly(Call& c) {
  absl::CivilDay day = Today();
  if (auto text = QueryParam(c.query, "date")) {
    ASSIGN_OR_REPLY(d, ParseDay("date", *text), c);
    day = d;
  }
  ASSIGN_OR_REPLY(hours, engine_->Hourly(c.who, day), c);
  const Catalog& cat = engine_->catalog();
  boost::json::array arr;
  for (const auto& h : hours) {
    boost::json::object o;
    o["hour"] = FormatRfc3339(h.hour);
    AddCounters(cat, h.values, o);
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
    AddCounters(cat, p.values, o);
    arr.push_back(std::move(o));
  }
  boost::json::object out;
  out["periods"] = std::move(arr);
  c.respond(JsonReply(200, out));
}

void Api::UsageChannels(Call& c) {
  std::string meter = QueryParam(c.query, "meter").value_or(std::string(meters::kMessagesSent));
  ASSIGN_OR_REPLY(chosen, engine_->CounterMeter(meter), c);
  ASSIGN_OR_REPLY(range, ParseReportRange(c.query, Today(), engine_->CurrentPeriod(c.who)), c);
  ASSIGN_OR_REPLY(rows, engine_->ChannelsBetween(c.who, range.start, range.end), c);
  const Catalog& cat = engine_->catalog();
  // Per counter meter: its total and every catalog channel (0 when unused).
  boost::json::object by_meter;
  for (MeterId m = 0; m < cat.meter_count(); ++m) {
    if (cat.meters[m].kind != MeterKind::kCounter) continue;
    boost::json::object channels;
    for (const auto& ch : cat.channels) channels[ch] = 0;
    by_meter[cat.meters[m].name] = boost::json::object{{"total", 0}, {"channels", channels}};
  }
  for (const engine::ChannelUsage& r : rows) {
    boost::json::object& e = by_meter[cat.meters[r.meter].name].as_object();
    e["total"] = e["total"].to_number<uint64_t>() + r.value;
    if (!r.channel.empty()) e["channels"].as_object()[r.channel] = r.value;
  }
  boost::json::object out = by_meter[cat.meters[chosen].name].as_object();
  out["meter"] = meter;
  out["from"] = FormatDate(range.from);
  out["to"] = FormatDate(range.to);
  out["start"] = FormatRfc3339(range.start);
  out["end"] = FormatRfc3339(range.end);
  out["meters"] = std::move(by_meter);
  c.respond(JsonReply(200, out));
}

void Api::Plans(Call& c) {
  const Catalog& cat = engine_->catalog();
  boost::json::array arr;
  for (const Plan& p : cat.plans) arr.push_back(PlanJson(cat, p));
  boost::json::object out;
  out["plans"] = std::move(arr);
  c.respond(JsonReply(200, out));
}

}  // namespace quotum::http
