#include "quotum/engine/events.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "quotum/engine/api_keys.h"

namespace quotum::engine {

std::string EventId(std::initializer_list<std::string_view> parts) {
  std::string joined;
  for (std::string_view p : parts) {
    joined += std::to_string(p.size());
    joined += ':';
    joined += p;
    joined += ';';
  }
  return absl::StrCat("evt_", absl::BytesToHexString(HashSecret(joined)).substr(0, 24));
}

std::string LeaseExpiredEventId(std::string_view tenant_id, std::string_view session_id,
                                absl::Time last_heartbeat) {
  return EventId({tenant_id, "session.lease_expired", session_id,
                  absl::StrCat(absl::ToUnixMillis(last_heartbeat))});
}

bool WebhookWants(const WebhookRecord& webhook, std::string_view type) {
  return std::any_of(webhook.events.begin(), webhook.events.end(),
                     [&](const std::string& e) { return e == "*" || e == type; });
}

std::string EncodeEventFields(const std::vector<EventField>& fields) {
  std::string out;
  for (const EventField& f : fields) {
    out += f.json ? 'j' : f.number ? 'n' : 's';
    out += f.name;
    out += '\x1f';
    out += f.value;
    out += '\x1e';
  }
  return out;
}

absl::StatusOr<std::vector<EventField>> DecodeEventFields(std::string_view text) {
  std::vector<EventField> out;
  while (!text.empty()) {
    const size_t end = text.find('\x1e');
    const size_t sep = text.find('\x1f');
    if (end == std::string_view::npos || sep == std::string_view::npos || sep > end ||
        (text[0] != 'n' && text[0] != 's' && text[0] != 'j')) {
      return absl::InvalidArgumentError("event fields: not what EncodeEventFields writes");
    }
    out.push_back(EventField{std::string(text.substr(1, sep - 1)),
                             std::string(text.substr(sep + 1, end - sep - 1)), text[0] == 'n',
                             text[0] == 'j'});
    text.remove_prefix(end + 1);
  }
  return out;
}

}  // namespace quotum::engine
