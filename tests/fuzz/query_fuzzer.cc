// Query strings as the usage routes read them (boost::urls params, then the
// routes' own parsing of days, from, to, months, meter): the first byte picks
// the route, the rest is the query after '?', through Api::Handle.
#include <boost/beast/http/verb.hpp>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>

#include "tests/fuzz/fuzz_api.h"

namespace {

constexpr std::string_view kPaths[] = {
    "/api/v2/usage/daily",
    "/api/v2/usage/history",
    "/api/v2/usage/channels",
    "/api/v2/usage/current",
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  auto& api = quotum::fuzz::FuzzApi::Get();
  std::string target(kPaths[data[0] % std::size(kPaths)]);
  target.append("?").append(reinterpret_cast<const char*>(data + 1), size - 1);
  api.Call(api.MakeRequest(boost::beast::http::verb::get, target, api.tenant_key(), ""));
  return 0;
}
