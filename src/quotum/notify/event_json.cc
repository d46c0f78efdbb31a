#include "quotum/notify/event_json.h"

#include <charconv>
#include <cstdint>
#include <string_view>

#include "absl/time/time.h"
#include "boost/json/parse.hpp"
#include "boost/json/serialize.hpp"
#include "boost/json/value.hpp"

namespace quotum::notify {
namespace {

/// Parses all of `text` as a decimal integer; false when it is not one.
template <typename Int>
bool ParseWhole(std::string_view text, Int& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return !text.empty() && ec == std::errc() && end == text.data() + text.size();
}

boost::json::value FieldValue(const quotum::engine::EventField& field) {
  if (field.json) {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(field.value, ec);
    if (!ec) return v;
  }
  if (field.number) {
    if (int64_t i = 0; ParseWhole(field.value, i)) return boost::json::value(i);
    if (uint64_t u = 0; ParseWhole(field.value, u)) return boost::json::value(u);
  }
  return boost::json::value(field.value);
}

}  // namespace

std::string EventJson(const quotum::engine::EventRecord& e) {
  boost::json::object o;
  o.emplace("id", e.id);
  o.emplace("type", e.type);
  o.emplace("tenant", e.tenant_id);
  o.emplace("at", absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", e.at, absl::UTCTimeZone()));
  o.emplace("subject", e.subject);
  o.emplace("detail", e.detail);
  for (const quotum::engine::EventField& field : e.fields) {
    o.emplace(field.name, FieldValue(field));  // keeps an existing key
  }
  return boost::json::serialize(o);
}

}  // namespace quotum::notify
