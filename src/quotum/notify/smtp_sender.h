// E-mail through an SMTP server (libcurl): the operator's relay, configured
// in [email]. Used by the outbox relay for webhooks whose URL is mailto:.
#pragma once

#include <string>

#include "absl/time/time.h"

namespace quotum::notify {

struct SmtpOptions {
  /// smtp://HOST[:PORT] or smtps://HOST[:PORT]; empty = e-mail off.
  std::string url;
  /// Require STARTTLS on smtp:// (refuse to send in the clear).
  bool starttls = false;
  std::string user, password;  ///< empty user = no AUTH
  std::string from;            ///< the envelope and header sender
  absl::Duration timeout = absl::Seconds(10);
};

/// One message: plain text, UTF-8.
struct Email {
  std::string to;
  std::string subject;
  std::string text;
  std::string message_id;  ///< without brackets; an event id keeps retries recognisable
};

struct SmtpOutcome {
  bool sent = false;
  int smtp_code = 0;  ///< the server's last reply code; 0 when none came
  std::string error;  ///< empty when sent
};

/// True for an address Quotum mails to: one '@', a non-empty local part and
/// domain, at most 254 bytes, no spaces, control characters, '<', '>', ',' or ';'.
bool IsPlainAddress(std::string_view address);

class SmtpSender {
 public:
  explicit SmtpSender(SmtpOptions options) : options_(std::move(options)) {}
  bool enabled() const { return !options_.url.empty(); }
  /// Thread-safe; blocks for at most options.timeout.
  SmtpOutcome Send(const Email& email) const;

 private:
  SmtpOptions options_;
};

}  // namespace quotum::notify
