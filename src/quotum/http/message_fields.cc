#include "quotum/http/message_fields.h"

#include <algorithm>

#include "quotum/core/string_views.h"
#include "quotum/engine/errors.h"

namespace quotum::http {

constexpr size_t kMaxText = 65536;

absl::StatusOr<std::string> ChannelField(const Fields& f) {
  auto channel = f.String("channel", 64);
  if (!channel.ok()) return channel.status();
  if (*channel && (*channel)->empty()) {
    return engine::Unprocessable("unknown_channel",
                                 "\"channel\" must name a channel; leave it out for the default.");
  }
  return channel->value_or("");
}

absl::StatusOr<MessageType> TypeField(const Fields& f) {
  auto type = f.String("type", 16);
  if (!type.ok()) return type.status();
  if (!*type) return MessageType::kText;
  std::optional<MessageType> t = ParseMessageType(**type);
  if (!t) {
    return engine::Unprocessable("unknown_message_type", Cat("Unknown message type \"", **type,
                                                             "\"; it is text, media or template."));
  }
  return *t;
}

absl::StatusOr<engine::HeldSend> ReadSendFields(const Fields& f, bool with_to) {
  auto to = f.String("to", 256);
  if (!to.ok()) return to.status();
  auto text = f.String("text", kMaxText);
  if (!text.ok()) return text.status();
  auto channel = ChannelField(f);
  if (!channel.ok()) return channel.status();
  auto session = f.String("session", 64);
  if (!session.ok()) return session.status();
  auto type = TypeField(f);
  if (!type.ok()) return type.status();
  // No NUL in a text (nor any control character in a recipient): stores
  // and upstreams take text, not bytes.
  if (*text && (*text)->find('\0') != std::string::npos) {
    return engine::Unprocessable("invalid_field", "\"text\" must not contain NUL characters.");
  }
  if (*to && std::any_of((*to)->begin(), (*to)->end(),
                         [](char ch) { return static_cast<unsigned char>(ch) < 0x20; })) {
    return engine::Unprocessable("invalid_field", "\"to\" must not contain control characters.");
  }
  if (with_to && (!*to || (*to)->empty())) {
    return engine::BadRequest("missing_field", "\"to\" (the recipient) is required.");
  }
  if (!*session || (*session)->empty()) {
    return engine::BadRequest("missing_field",
                              "\"session\" (a working session of this tenant) is required.");
  }
  engine::HeldSend send;
  send.session_id = std::move(**session);
  send.to = to->value_or("");
  send.text = text->value_or("");
  send.channel = std::move(*channel);
  send.type = *type;
  return send;
}

}  // namespace quotum::http
