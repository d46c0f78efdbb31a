#pragma once

#include <span>
#include <string_view>
#include <utility>

#include "quotum/http/reply.h"

namespace quotum::http {

/// The dashboard's built files (web/dist, committed), embedded at build time by
/// cmake/EmbedText.cmake (quotum_embed_files): {path relative to web/dist, bytes}, e.g.
/// {"index.html", ...}, {"assets/app-<hash>.js", ...}. Static storage.
std::span<const std::pair<std::string_view, std::string_view>> EmbeddedWebFiles();

/// docs/openapi.yaml, embedded at build time the same way: {"openapi.yaml", bytes}.
std::span<const std::pair<std::string_view, std::string_view>> EmbeddedApiDescription();

/// GET /openapi.yaml: the embedded description as `application/yaml`, nosniff,
/// no-cache (it changes with the binary).
Reply ApiDescriptionReply();

/// The reply for the embedded file at `path` ("index.html" or "assets/<name>"):
/// its bytes with the Content-Type of its extension, nosniff, and
/// - index.html: no-cache and the page's Content-Security-Policy;
/// - a content-hashed asset name (IsContentHashed): cached for a year, immutable.
/// A 404 `not_found` error when there is no such file.
Reply StaticFileReply(std::string_view path);

/// The Content-Type for a file name's extension (application/octet-stream if unknown).
std::string_view ContentTypeFor(std::string_view name);

/// True for Vite's content-hashed names: "<stem>-<8 of [A-Za-z0-9_-]>.<ext>", such as
/// "app-DdkJR3nK.js" or "app-C-fqWb5q.js".
bool IsContentHashed(std::string_view name);

}  // namespace quotum::http
