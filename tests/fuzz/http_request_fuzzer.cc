// Raw bytes from a connection, then end of stream -> the server's reading
// (Beast's request parser with its limits, CheckFraming once the header is
// complete) -> Api::Handle (which runs CheckRequest, routes, answers), for up
// to four keep-alive requests per input: the bytes after one request start
// the next, as in the server's read buffer.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "quotum/http/request_checks.h"
#include "tests/fuzz/fuzz_api.h"

namespace {

namespace bhttp = boost::beast::http;

// The limits of Server::Session::BeginRequest with the default max_body_bytes.
constexpr size_t kHeaderLimit = 16 * 1024;
constexpr uint64_t kBodyLimit = 1 << 20;
constexpr int kMaxRequestsPerInput = 4;

// At end of stream: a message that needs no more bytes completes, anything
// else begun is malformed (the server answers 400), nothing begun just closes.
std::optional<quotum::http::Request> EndOfStream(
    bhttp::request_parser<bhttp::string_body>& parser) {
  if (!parser.got_some()) return std::nullopt;
  boost::beast::error_code ec;
  parser.put_eof(ec);
  if (ec || !parser.is_done()) return std::nullopt;
  return parser.release();
}

// Reads one request from the front of `in` as Server::Session::Parse does,
// consuming its bytes. nullopt when the server would answer without routing
// (400, 413, 431, 501) and close, or close at end of stream.
std::optional<quotum::http::Request> ReadOne(std::string_view& in) {
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(kHeaderLimit);
  parser.body_limit(kBodyLimit);
  while (!parser.is_done()) {
    if (in.empty()) return EndOfStream(parser);
    const bool had_header = parser.is_header_done();
    boost::beast::error_code ec;
    const size_t used = parser.put(boost::asio::buffer(in.data(), in.size()), ec);
    in.remove_prefix(used);
    if (ec == bhttp::error::need_more || (!ec && used == 0)) {
      if (used == 0) return EndOfStream(parser);  // what is left is not enough
      continue;
    }
    if (ec) return std::nullopt;
    if (!had_header && parser.is_header_done()) {
      if (auto refused = quotum::http::CheckFraming(parser.get())) {
        quotum::fuzz::CheckReply(*refused);  // the server answers it and closes
        return std::nullopt;
      }
    }
  }
  return parser.release();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& api = quotum::fuzz::FuzzApi::Get();
  std::string bytes =
      quotum::fuzz::ReplaceAll(std::string_view(reinterpret_cast<const char*>(data), size),
                               quotum::fuzz::kTenantKeyToken, api.tenant_key());
  bytes = quotum::fuzz::ReplaceAll(bytes, quotum::fuzz::kKeyIdToken, api.key_id());
  std::string_view in = bytes;
  for (int i = 0; i < kMaxRequestsPerInput && !in.empty(); ++i) {
    std::optional<quotum::http::Request> req = ReadOne(in);
    if (!req) break;
    const quotum::http::Reply reply = api.Call(*req);
    if (!req->keep_alive() || reply.close_connection) break;
  }
  return 0;
}
