#include "quotum/notify/smtp_sender.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "quotum/core/billing_period.h"
#include "quotum/notify/curl_easy.h"

namespace quotum::notify {
namespace {

using Recipients = std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)>;

// The message curl reads out, a piece at a time.
struct Outgoing {
  std::string text;
  size_t sent = 0;
};

size_t OnRead(char* buffer, size_t size, size_t count, void* user) {
  auto* o = static_cast<Outgoing*>(user);
  const size_t n = std::min(size * count, o->text.size() - o->sent);
  std::memcpy(buffer, o->text.data() + o->sent, n);
  o->sent += n;
  return n;
}

// RFC 5322 with CRLF line ends; the subject is plain ASCII or encoded as
// UTF-8 base64 (RFC 2047) when it is not.
std::string MessageText(const SmtpOptions& o, const Email& e) {
  std::string body;
  for (char c : e.text) {
    if (c == '\n')
      body += "\r\n";
    else
      body += c;
  }
  const bool ascii = std::all_of(e.subject.begin(), e.subject.end(),
                                 [](unsigned char c) { return c >= 0x20 && c < 0x7f; });
  std::string subject = e.subject;
  if (!ascii) {
    std::string b64;
    absl::Base64Escape(e.subject, &b64);
    subject = absl::StrCat("=?UTF-8?B?", b64, "?=");
  }
  return absl::StrCat(
      "Date: ", absl::FormatTime("%a, %d %b %Y %H:%M:%S +0000", absl::Now(), absl::UTCTimeZone()),
      "\r\nFrom: ", o.from, "\r\nTo: ", e.to, "\r\nSubject: ", subject, "\r\nMessage-ID: <",
      e.message_id, "@quotum>", "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8",
      "\r\nContent-Transfer-Encoding: 8bit\r\n\r\n", body, "\r\n");
}

}  // namespace

bool IsPlainAddress(std::string_view a) {
  const size_t at = a.find('@');
  if (a.empty() || a.size() > 254 || at == 0 || at == std::string_view::npos ||
      at + 1 == a.size() || a.find('@', at + 1) != std::string_view::npos) {
    return false;
  }
  return std::none_of(a.begin(), a.end(), [](unsigned char c) {
    return c <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == ',' || c == ';';
  });
}

SmtpOutcome SmtpSender::Send(const Email& email) const {
  InitCurlOnce();
  if (!IsPlainAddress(email.to)) return {false, 0, "not a plain e-mail address"};
  EasyHandle curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) return {false, 0, "could not start a transfer"};
  Recipients rcpt(curl_slist_append(nullptr, email.to.c_str()), &curl_slist_free_all);
  Outgoing out{MessageText(options_, email)};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, options_.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROXY, "");
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, CurlMillis(options_.timeout));
  curl_easy_setopt(c, CURLOPT_MAIL_FROM, options_.from.c_str());
  curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt.get());
  curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(c, CURLOPT_READFUNCTION, &OnRead);
  curl_easy_setopt(c, CURLOPT_READDATA, &out);
  if (options_.starttls) curl_easy_setopt(c, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
  if (!options_.user.empty()) {
    curl_easy_setopt(c, CURLOPT_USERNAME, options_.user.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, options_.password.c_str());
  }
  const CURLcode rc = curl_easy_perform(c);
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  if (rc != CURLE_OK) {
    return {false, static_cast<int>(code), absl::StrCat("SMTP: ", curl_easy_strerror(rc))};
  }
  return {true, static_cast<int>(code), ""};
}

}  // namespace quotum::notify
