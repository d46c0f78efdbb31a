// What the libcurl senders (webhooks, the HTTP provider, SMTP) share: handles
// that clean up after themselves, one global initialisation, and timeouts
// and header lists in libcurl's terms.
#pragma once

#include <curl/curl.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace quotum::notify {

using EasyHandle = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;
using HeaderList = std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)>;

/// curl_global_init, once per process, before the first easy handle.
inline void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

/// `d` in milliseconds for a *_TIMEOUT_MS option: at least 1, because curl
/// reads 0 as "no limit".
inline long CurlMillis(absl::Duration d) {
  return static_cast<long>(std::max<int64_t>(1, absl::ToInt64Milliseconds(d)));
}

/// `lines` ("Name: value", empty ones left out) as a header list; null when
/// curl could not allocate it.
inline HeaderList HeaderListOf(const std::vector<std::string>& lines) {
  curl_slist* list = nullptr;
  for (const std::string& line : lines) {
    if (line.empty()) continue;
    curl_slist* grown = curl_slist_append(list, line.c_str());
    if (grown == nullptr) {
      curl_slist_free_all(list);
      return HeaderList(nullptr, &curl_slist_free_all);
    }
    list = grown;
  }
  return HeaderList(list, &curl_slist_free_all);
}

}  // namespace quotum::notify
