#include "quotum/notify/webhook_sender.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "quotum/core/string_views.h"
#include "quotum/notify/curl_easy.h"
#include "quotum/notify/signature.h"

namespace quotum::notify {
namespace {

constexpr size_t kSnippetBytes = 512;
constexpr size_t kMaxResponseBytes = 64 * 1024;

using UrlHandle = std::unique_ptr<CURLU, decltype(&curl_url_cleanup)>;

/// What one transfer's callbacks share with Send; lives on Send's stack.
struct Transfer {
  const std::string* host = nullptr;
  const TargetPolicy* policy = nullptr;
  std::string snippet;
  size_t received = 0;
  bool capped = false;     ///< stopped reading at kMaxResponseBytes
  std::string refused_ip;  ///< the first address the policy refused
};

size_t OnTransferBody(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (t->snippet.size() < kSnippetBytes) {
    t->snippet.append(data, std::min(n, kSnippetBytes - t->snippet.size()));
  }
  t->received += n;
  if (t->received > kMaxResponseBytes) {
    t->capped = true;
    return 0;  // ends the transfer (CURLE_WRITE_ERROR)
  }
  return n;
}

std::string IpText(const sockaddr* addr) {
  std::array<char, INET6_ADDRSTRLEN> text{};
  const void* bytes =
      addr->sa_family == AF_INET6
          ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr)
          : &reinterpret_cast<const sockaddr_in*>(addr)->sin_addr;
  if (inet_ntop(addr->sa_family, bytes, text.data(), text.size()) == nullptr) return "?";
  return text.data();
}

/// The DNS-rebinding defence: curl asks for a socket per resolved address,
/// and gets none for an address the policy refuses.
curl_socket_t OnOpenSocket(void* user, curlsocktype purpose, curl_sockaddr* address) {
  auto* t = static_cast<Transfer*>(user);
  if (!AddressAllowed(&address->addr, *t->host, *t->policy)) {
    if (t->refused_ip.empty()) t->refused_ip = IpText(&address->addr);
    return CURL_SOCKET_BAD;
  }
  return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

/// An IP literal's bytes ("[::1]" and "::1" alike, "127.1" and "127.0.0.1"
/// alike, as curl normalizes IPv4 forms); nullopt for a name.
std::optional<std::array<unsigned char, 16>> LiteralBytes(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string s(host);
  std::array<unsigned char, 16> bytes{};
  if (inet_aton(s.c_str(), reinterpret_cast<in_addr*>(bytes.data())) != 0) return bytes;
  if (inet_pton(AF_INET6, s.c_str(), bytes.data()) == 1) return bytes;
  return std::nullopt;
}

bool SameHost(std::string_view a, std::string_view b) {
  auto a_ip = LiteralBytes(a);
  auto b_ip = LiteralBytes(b);
  if (a_ip || b_ip) return a_ip == b_ip;
  return absl::EqualsIgnoreCase(ToAbsl(a), ToAbsl(b));
}

/// curl's own parse of the URL, refused unless its host is `request.host`:
/// the policy names hosts, so the host curl connects to must be the one the
/// policy was asked about.
UrlHandle ParseForCurl(const WebhookRequest& request, std::string& error) {
  UrlHandle url(curl_url(), &curl_url_cleanup);
  char* host = nullptr;
  if (url == nullptr ||
      curl_url_set(url.get(), CURLUPART_URL, request.url.c_str(), 0) != CURLUE_OK ||
      curl_url_get(url.get(), CURLUPART_HOST, &host, 0) != CURLUE_OK) {
    error = "the webhook URL is not valid";
    return UrlHandle(nullptr, &curl_url_cleanup);
  }
  const bool same = SameHost(host, request.host);
  curl_free(host);
  if (!same) {
    error = absl::StrCat("the webhook URL's host is not ", request.host);
    return UrlHandle(nullptr, &curl_url_cleanup);
  }
  return url;
}

bool PrintableAscii(std::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

HeaderList Headers(const WebhookRequest& request) {
  return HeaderListOf(
      {"Content-Type: application/json", "User-Agent: quotum-webhooks/1",
       absl::StrCat("X-Quotum-Event-Id: ", request.event_id),
       absl::StrCat("X-Quotum-Signature: ",
                    SignatureHeader(request.secret, request.unix_seconds, request.body)),
       "Expect:"});  // "Expect:" with no value: curl sends no Expect header
}

CURLcode Configure(CURL* h, CURLU* url, curl_slist* headers, const WebhookRequest& request,
                   const SendOptions& options, Transfer& transfer, char* error_buffer) {
  CURLcode rc = CURLE_OK;
  auto set = [&](CURLoption option, auto value) {
    if (rc == CURLE_OK) rc = curl_easy_setopt(h, option, value);
  };
  set(CURLOPT_ERRORBUFFER, error_buffer);
  set(CURLOPT_CURLU, url);
  set(CURLOPT_PROTOCOLS_STR, "http,https");
  set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  set(CURLOPT_FOLLOWLOCATION, 0L);
  set(CURLOPT_PROXY, "");  // no proxy from the environment: it would connect unchecked
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_CONNECTTIMEOUT_MS, CurlMillis(options.connect_timeout));
  set(CURLOPT_TIMEOUT_MS, CurlMillis(options.timeout));
  set(CURLOPT_POST, 1L);
  set(CURLOPT_POSTFIELDS, request.body.data());
  set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  set(CURLOPT_HTTPHEADER, headers);
  set(CURLOPT_WRITEFUNCTION, &OnTransferBody);
  set(CURLOPT_WRITEDATA, &transfer);
  set(CURLOPT_OPENSOCKETFUNCTION, &OnOpenSocket);
  set(CURLOPT_OPENSOCKETDATA, &transfer);
  return rc;
}

std::string HttpError(int status) {
  if (status >= 300 && status < 400) {
    return absl::StrCat("the receiver answered ", status, ", a redirect, which is not followed");
  }
  return absl::StrCat("the receiver answered ", status);
}

std::string TransportError(CURLcode rc, const Transfer& transfer, const char* error_buffer) {
  if (rc == CURLE_COULDNT_CONNECT && !transfer.refused_ip.empty()) {
    return absl::StrCat("address not allowed: ", transfer.refused_ip);
  }
  const std::string detail = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(rc);
  if (rc == CURLE_OPERATION_TIMEDOUT) return absl::StrCat("the delivery timed out (", detail, ")");
  if (rc == CURLE_COULDNT_RESOLVE_HOST)
    return absl::StrCat("the host did not resolve (", detail, ")");
  return absl::StrCat("the delivery failed (", detail, ")");
}

SendOutcome Outcome(CURL* h, CURLcode rc, Transfer& transfer, const char* error_buffer) {
  SendOutcome out;
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  out.http_status = static_cast<int>(status);
  out.response_snippet = std::move(transfer.snippet);
  // A response cut at kMaxResponseBytes still counts: its status had arrived.
  const bool answered =
      out.http_status != 0 && (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && transfer.capped));
  out.delivered = answered && out.http_status >= 200 && out.http_status < 300;
  if (!out.delivered) {
    out.error = answered ? HttpError(out.http_status) : TransportError(rc, transfer, error_buffer);
  }
  return out;
}

SendOutcome Failed(std::string error) {
  SendOutcome out;
  out.error = std::move(error);
  return out;
}

/// One attempt, all but its timing.
SendOutcome Attempt(const WebhookRequest& request, const SendOptions& options) {
  if (!PrintableAscii(request.event_id)) {
    return Failed("the event id is empty or holds a character a header cannot carry");
  }
  std::string error;
  UrlHandle url = ParseForCurl(request, error);
  if (url == nullptr) return Failed(std::move(error));
  HeaderList headers = Headers(request);
  EasyHandle easy(curl_easy_init(), &curl_easy_cleanup);
  if (easy == nullptr || headers == nullptr) return Failed("libcurl could not allocate a transfer");

  Transfer transfer;
  transfer.host = &request.host;
  transfer.policy = &options.policy;
  char error_buffer[CURL_ERROR_SIZE] = {};
  CURLcode rc =
      Configure(easy.get(), url.get(), headers.get(), request, options, transfer, error_buffer);
  if (rc != CURLE_OK) {
    return Failed(absl::StrCat("libcurl refused an option (", curl_easy_strerror(rc), ")"));
  }
  rc = curl_easy_perform(easy.get());
  return Outcome(easy.get(), rc, transfer, error_buffer);
}

}  // namespace

WebhookSender::WebhookSender(SendOptions options) : options_(std::move(options)) { InitCurlOnce(); }

SendOutcome WebhookSender::Send(const WebhookRequest& request) const {
  const auto start = std::chrono::steady_clock::now();
  SendOutcome out = Attempt(request, options_);
  out.took = absl::FromChrono(std::chrono::steady_clock::now() - start);
  return out;
}

}  // namespace quotum::notify
