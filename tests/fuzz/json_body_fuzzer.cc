// Every route that reads a JSON body: the first byte picks the route, the rest
// is the body, sent with the right key through Api::Handle (route decoders are
// members of Api, reachable only there).
#include <boost/beast/http/verb.hpp>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string_view>

#include "tests/fuzz/fuzz_api.h"

namespace {

using boost::beast::http::verb;

struct BodyRoute {
  verb method;
  std::string_view target;  ///< @KEY_ID@ is replaced by the tenant's key id
  bool admin;
};

// In Api's route order; session and group ids match the seeds' ("s1", "g1").
constexpr BodyRoute kRoutes[] = {
    {verb::post, "/admin/tenants", true},
    {verb::put, "/admin/tenants/fuzz/limits", true},
    {verb::post, "/api/v2/quota/check", false},
    {verb::post, "/api/v2/quota/consume", false},
    {verb::post, "/api/v2/events", false},
    {verb::post, "/api/v2/messages/send", false},
    {verb::post, "/api/v2/messages/received", false},
    {verb::post, "/api/v2/chatbot/trigger", false},
    {verb::post, "/api/v2/sessions", false},
    {verb::patch, "/api/v2/sessions/s1", false},
    {verb::post, "/api/v2/groups", false},
    {verb::put, "/api/v2/subscribers/count", false},
    {verb::put, "/admin/api-keys/@KEY_ID@/rate-limits", true},
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  auto& api = quotum::fuzz::FuzzApi::Get();
  const BodyRoute& route = kRoutes[data[0] % std::size(kRoutes)];
  const std::string target =
      quotum::fuzz::ReplaceAll(route.target, quotum::fuzz::kKeyIdToken, api.key_id());
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  api.Call(api.MakeRequest(route.method, target,
                           route.admin ? quotum::fuzz::kAdminKey : api.tenant_key(), body));
  return 0;
}
