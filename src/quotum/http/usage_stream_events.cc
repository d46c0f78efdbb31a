#include "quotum/http/usage_stream_events.h"

#include <boost/json/serialize.hpp>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "quotum/core/billing_period.h"
#include "quotum/http/render.h"

namespace quotum::http {
namespace {

void Fnv1a(uint64_t& h, std::string_view bytes) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
}

std::string Event(const StreamSnapshot& now, bool full, boost::json::object meters) {
  boost::json::object data = now.header;
  data["full"] = full;
  data["meters"] = std::move(meters);
  return absl::StrCat("id: ", now.id, "\nevent: usage\ndata: ", boost::json::serialize(data),
                      "\n\n");
}

}  // namespace

StreamSnapshot SnapshotOf(const Catalog& cat, const engine::UsageView& u) {
  StreamSnapshot s;
  const BillingPeriod& period = u.tenant.period;
  s.header["tenant_id"] = u.tenant.id;
  s.header["plan"] = u.tenant.plan;
  s.header["period"] = period.Label();
  s.header["period_start"] = FormatRfc3339(period.start);
  s.header["period_end"] = FormatRfc3339(period.end);
  s.header["source"] = u.from_aggregate ? "aggregate" : "live";
  uint64_t h = 0xcbf29ce484222325ULL;
  Fnv1a(h, boost::json::serialize(s.header));
  s.meters.reserve(cat.meter_count());
  for (MeterId m = 0; m < cat.meter_count(); ++m) {
    s.meters.emplace_back(cat.meters[m].name, MeterUsageJson(cat, u, m));
    Fnv1a(h, s.meters.back().first);
    Fnv1a(h, boost::json::serialize(s.meters.back().second));
  }
  s.id = absl::StrFormat("%016x", h);
  return s;
}

std::string FullEvent(const StreamSnapshot& now) {
  boost::json::object meters;
  for (const auto& [name, entry] : now.meters) meters[name] = entry;
  return Event(now, true, std::move(meters));
}

std::string ChangeEvent(const StreamSnapshot& before, const StreamSnapshot& now) {
  if (before.id == now.id) return "";
  if (before.header != now.header || before.meters.size() != now.meters.size()) {
    return FullEvent(now);
  }
  boost::json::object changed;
  for (size_t i = 0; i < now.meters.size(); ++i) {
    if (now.meters[i] != before.meters[i]) changed[now.meters[i].first] = now.meters[i].second;
  }
  if (changed.empty()) return "";
  return Event(now, false, std::move(changed));
}

}  // namespace quotum::http
