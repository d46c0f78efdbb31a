// The dashboard: its page at / and its built files at /assets/<name>, public
// (the page signs in with a tenant key in the browser; see docs/dashboard.md);
// and the API's OpenAPI description at /openapi.yaml, public too.
#include "quotum/http/api.h"
#include "quotum/http/static_assets.h"

namespace quotum::http {

void Api::DashboardPage(Call& c) { c.respond(StaticFileReply("index.html")); }

void Api::DashboardAsset(Call& c) { c.respond(StaticFileReply("assets/" + c.params[0])); }

void Api::ApiDescription(Call& c) { c.respond(ApiDescriptionReply()); }

}  // namespace quotum::http
