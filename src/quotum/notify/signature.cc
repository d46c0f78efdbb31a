#include "quotum/notify/signature.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "quotum/core/string_views.h"

namespace quotum::notify {

std::string SignatureHeader(std::string_view secret, int64_t unix_seconds, std::string_view body) {
  const std::string t = absl::StrCat(unix_seconds);
  const std::string signed_text = Cat(t, ".", body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_size = 0;
  // HMAC() only fails on allocation failure; a signature from a null
  // result would be wrong, so that aborts as well.
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(signed_text.data()), signed_text.size(), mac,
           &mac_size) == nullptr) {
    std::fputs("quotum: HMAC-SHA256 failed\n", stderr);
    std::abort();
  }
  const absl::string_view raw(reinterpret_cast<const char*>(mac), mac_size);
  return absl::StrCat("t=", t, ",v1=", absl::BytesToHexString(raw));
}

std::string NewWebhookSecret() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    std::fputs("quotum: the CSPRNG failed to make a webhook secret\n", stderr);
    std::abort();
  }
  const absl::string_view raw(reinterpret_cast<const char*>(bytes), sizeof bytes);
  return absl::StrCat("whsec_", absl::BytesToHexString(raw));
}

}  // namespace quotum::notify
