#include "quotum/http/static_assets.h"

#include <array>

#include "absl/strings/ascii.h"
#include "quotum/core/string_views.h"
#include "quotum/http/json_output.h"

namespace quotum::http {

namespace {

// The page loads only its own files: no inline script or style, no CDN, no
// frames of it elsewhere.
constexpr std::string_view kPagePolicy =
    "default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'self'; "
    "frame-ancestors 'none'";

// Paths quoted in a 404 are cut to this many bytes.
constexpr size_t kMaxEchoedName = 96;

struct Type {
  std::string_view ext;
  std::string_view content_type;
};

constexpr std::array<Type, 10> kTypes = {{
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".json", "application/json"},
    {".txt", "text/plain; charset=utf-8"},
    {".woff2", "font/woff2"},
    {".webmanifest", "application/manifest+json"},
}};

}  // namespace

std::string_view ContentTypeFor(std::string_view name) {
  for (const Type& t : kTypes) {
    if (name.ends_with(t.ext)) return t.content_type;
  }
  return "application/octet-stream";
}

bool IsContentHashed(std::string_view name) {
  const size_t slash = name.rfind('/');
  if (slash != std::string_view::npos) name.remove_prefix(slash + 1);
  const std::string_view stem = name.substr(0, name.find('.'));
  // Vite's [hash]: 8 characters of [A-Za-z0-9_-] (so it may hold a '-' itself).
  constexpr size_t kHash = 8;
  if (stem.size() < kHash + 2 || stem[stem.size() - kHash - 1] != '-') return false;
  for (char ch : stem.substr(stem.size() - kHash)) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '-') {
      return false;
    }
  }
  return true;
}

Reply StaticFileReply(std::string_view path) {
  for (const auto& [name, bytes] : EmbeddedWebFiles()) {
    if (name != path) continue;
    Reply r;
    r.status = 200;
    r.content_type = ContentTypeFor(name);
    r.body.assign(bytes);
    r.Header("X-Content-Type-Options", "nosniff");
    if (name == "index.html") {
      r.Header("Cache-Control", "no-cache");
      r.Header("Content-Security-Policy", kPagePolicy);
      r.Header("Referrer-Policy", "no-referrer");
    } else if (IsContentHashed(name)) {
      r.Header("Cache-Control", "public, max-age=31536000, immutable");
    } else {
      r.Header("Cache-Control", "no-cache");
    }
    return r;
  }
  if (path == "index.html") {
    return ErrorReply(404, "not_found",
                      "The dashboard was not built into this binary (web/dist was empty).");
  }
  return ErrorReply(404, "not_found", Cat("No asset named ", SafeText(path, kMaxEchoedName), "."));
}

Reply ApiDescriptionReply() {
  for (const auto& [name, bytes] : EmbeddedApiDescription()) {
    if (name != "openapi.yaml") continue;
    Reply r;
    r.status = 200;
    r.content_type = "application/yaml";
    r.body.assign(bytes);
    r.Header("X-Content-Type-Options", "nosniff");
    r.Header("Cache-Control", "no-cache");
    return r;
  }
  return ErrorReply(404, "not_found", "The API description was not built into this binary.");
}

}  // namespace quotum::http
