#include "quotum/notify/http_provider.h"

#include <curl/curl.h>

#include <boost/json.hpp>
#include <memory>
#include <mutex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "quotum/notify/curl_easy.h"

namespace quotum::notify {
namespace {

constexpr size_t kMaxSnippet = 256;

// `s` with every byte outside printable ASCII as '?': a reason any store
// keeps as text (an upstream's body may hold cut UTF-8, or NUL).
std::string Printable(std::string s) {
  for (char& c : s) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return s;
}

// What one attempt read back: the start of the body and Retry-After.
struct Reply {
  std::string body;
  std::string retry_after;
};

size_t OnReplyBody(char* data, size_t size, size_t count, void* user) {
  auto* r = static_cast<Reply*>(user);
  const size_t n = size * count;
  if (r->body.size() < kMaxSnippet) r->body.append(data, std::min(n, kMaxSnippet - r->body.size()));
  return n;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* r = static_cast<Reply*>(user);
  const size_t n = size * count;
  std::string_view line(data, n);
  constexpr std::string_view kName = "retry-after:";
  if (line.size() > kName.size()) {
    std::string lower(line.substr(0, kName.size()));
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower == kName) {
      std::string value(line.substr(kName.size()));
      absl::StripAsciiWhitespace(&value);
      r->retry_after = std::move(value);
    }
  }
  return n;
}

HeaderList Headers(const engine::MessageRecord& m, const std::string& token) {
  return HeaderListOf(
      {"Content-Type: application/json", absl::StrCat("Idempotency-Key: ", m.id),
       "Expect:",  // no 100-continue round trip
       token.empty() ? std::string() : absl::StrCat("Authorization: Bearer ", token)});
}

engine::DeliveryAnswer AnswerOf(long status, const Reply& reply) {
  engine::DeliveryAnswer a;
  a.status = static_cast<int>(status);
  a.delivered = status >= 200 && status < 300;
  if (a.delivered) return a;
  // Worth another try: the upstream's own trouble (5xx), too many requests,
  // a timeout, and credentials or routes an operator may be fixing (401,
  // 403, 404); any other 4xx refuses this message.
  a.retryable = status >= 500 || status == 429 || status == 408 || status == 425 || status == 401 ||
                status == 403 || status == 404;
  a.retry_after = ParseRetryAfter(reply.retry_after, absl::Now());
  a.error = absl::StrCat("upstream answered ", status,
                         reply.body.empty() ? "" : absl::StrCat(": ", Printable(reply.body)));
  return a;
}

}  // namespace

std::string DeliveryBody(const engine::MessageRecord& m) {
  return boost::json::serialize(boost::json::object{{"id", m.id},
                                                    {"tenant", m.tenant_id},
                                                    {"session", m.session_id},
                                                    {"to", m.to},
                                                    {"text", m.text},
                                                    {"channel", m.channel},
                                                    {"type", m.type}});
}

std::optional<absl::Duration> ParseRetryAfter(std::string_view value, absl::Time now) {
  if (value.empty()) return std::nullopt;
  int64_t seconds = 0;
  if (absl::SimpleAtoi(std::string(value), &seconds)) {
    if (seconds < 0) return std::nullopt;
    return absl::Seconds(seconds);
  }
  absl::Time at;
  std::string error;
  if (!absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", std::string(value), absl::UTCTimeZone(), &at,
                       &error)) {
    return std::nullopt;
  }
  return std::max(at - now, absl::ZeroDuration());
}

engine::DeliveryAnswer HttpProvider::Deliver(const engine::MessageRecord& m) {
  InitCurlOnce();
  engine::DeliveryAnswer failed;
  failed.retryable = true;
  EasyHandle easy(curl_easy_init(), &curl_easy_cleanup);
  HeaderList headers = Headers(m, opts_.token);
  if (!easy || !headers) {
    failed.error = "libcurl could not start a transfer";
    return failed;
  }
  const std::string body = DeliveryBody(m);
  Reply reply;
  char error_buffer[CURL_ERROR_SIZE] = {0};
  CURL* h = easy.get();
  CURLcode rc = CURLE_OK;
  auto set = [&](CURLoption option, auto value) {
    if (rc == CURLE_OK) rc = curl_easy_setopt(h, option, value);
  };
  set(CURLOPT_ERRORBUFFER, error_buffer);
  set(CURLOPT_URL, opts_.url.c_str());
  set(CURLOPT_PROTOCOLS_STR, "http,https");
  set(CURLOPT_FOLLOWLOCATION, 0L);
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_CONNECTTIMEOUT_MS, CurlMillis(opts_.connect_timeout));
  set(CURLOPT_TIMEOUT_MS, CurlMillis(opts_.timeout));
  set(CURLOPT_POST, 1L);
  set(CURLOPT_POSTFIELDS, body.data());
  set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  set(CURLOPT_HTTPHEADER, headers.get());
  set(CURLOPT_WRITEFUNCTION, &OnReplyBody);
  set(CURLOPT_WRITEDATA, &reply);
  set(CURLOPT_HEADERFUNCTION, &OnHeader);
  set(CURLOPT_HEADERDATA, &reply);
  if (rc == CURLE_OK) rc = curl_easy_perform(h);
  if (rc != CURLE_OK) {
    failed.error =
        Printable(absl::StrCat("no answer from the upstream: ",
                               error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(rc)));
    return failed;
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  return AnswerOf(status, reply);
}

}  // namespace quotum::notify
