#include "quotum/http/request_checks.h"

#include <boost/beast/http/field.hpp>
#include <string_view>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "quotum/core/string_views.h"

namespace quotum::http {

namespace bhttp = boost::beast::http;

namespace {

// The transfer codings named by every Transfer-Encoding field, in order,
// lower-cased, without parameters.
std::vector<std::string> TransferCodings(const Request& req) {
  std::vector<std::string> out;
  auto [first, last] = req.equal_range(bhttp::field::transfer_encoding);
  for (auto it = first; it != last; ++it) {
    const auto value = it->value();
    for (absl::string_view item :
         absl::StrSplit(absl::string_view(value.data(), value.size()), ',')) {
      item = absl::StripAsciiWhitespace(item.substr(0, item.find(';')));
      out.push_back(absl::AsciiStrToLower(item));
    }
  }
  return out;
}

std::optional<Reply> CheckTransferEncoding(const Request& req) {
  if (req.count(bhttp::field::transfer_encoding) == 0) return std::nullopt;
  auto refuse = [](unsigned status, std::string_view code, std::string_view message) {
    Reply r = ErrorReply(status, code, message);
    r.close_connection = true;
    return r;
  };
  if (req.version() < 11) {
    return refuse(400, "bad_request", "Transfer-Encoding is not allowed in an HTTP/1.0 request.");
  }
  if (req.count(bhttp::field::content_length) != 0) {
    return refuse(400, "bad_request",
                  "A request may not carry both Transfer-Encoding and Content-Length.");
  }
  const std::vector<std::string> codings = TransferCodings(req);
  for (size_t i = 0; i < codings.size(); ++i) {
    if (codings[i] != "chunked") {
      return refuse(501, "not_implemented",
                    "Only the chunked transfer coding is implemented; send the body chunked or "
                    "with Content-Length.");
    }
    if (i + 1 != codings.size()) {
      return refuse(400, "bad_request", "The chunked transfer coding must be applied once, last.");
    }
  }
  if (codings.empty()) {
    return refuse(400, "bad_request", "Transfer-Encoding names no coding.");
  }
  return std::nullopt;
}

std::optional<Reply> CheckCredentials(const Request& req) {
  const size_t authorizations = req.count(bhttp::field::authorization);
  const size_t api_keys = req.count("X-API-Key");
  if (authorizations > 1 || api_keys > 1) {
    return ErrorReply(400, "bad_request", "Send one credential: Authorization or X-API-Key, once.");
  }
  if (authorizations == 1 && api_keys == 1) {
    const auto key = req["X-API-Key"];
    if (BearerTokenOf(req) != std::string_view(key.data(), key.size())) {
      return ErrorReply(400, "bad_request",
                        "Authorization and X-API-Key name different keys; send one.");
    }
  }
  return std::nullopt;
}

}  // namespace

std::string_view BearerTokenOf(const Request& req) {
  const auto auth = req[bhttp::field::authorization];
  std::string_view v(auth.data(), auth.size());
  if (v.size() <= 7 || !absl::EqualsIgnoreCase(ToAbsl(v.substr(0, 7)), "bearer ")) return {};
  v.remove_prefix(7);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  return v;
}

std::optional<Reply> CheckFraming(const Request& req) {
  if (auto r = CheckTransferEncoding(req)) return r;
  if (req.version() >= 11 && req.count(bhttp::field::host) != 1) {
    return ErrorReply(400, "bad_request", "An HTTP/1.1 request needs exactly one Host header.");
  }
  return std::nullopt;
}

std::optional<Reply> CheckRequest(const Request& req) {
  if (auto r = CheckFraming(req)) return r;
  return CheckCredentials(req);
}

}  // namespace quotum::http
