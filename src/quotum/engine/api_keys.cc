#include "quotum/engine/api_keys.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace quotum::engine {

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    std::abort();  // no entropy: refusing to mint predictable keys
  }
  return absl::BytesToHexString(raw);
}

MintedKey MintApiKey() {
  MintedKey k;
  k.key_id = absl::StrCat("key_", RandomHex(8));
  k.secret = absl::StrCat("qk_", RandomHex(16));
  k.hash = HashSecret(k.secret);
  return k;
}

std::string HashSecret(absl::string_view secret) {
  // Fetched once: OpenSSL 3's SHA256() looks the algorithm up on every call,
  // which cost more than the hash itself on the per-request key check.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (sha256 == nullptr) std::abort();  // no SHA-256 provider: keys could not be checked
  // A digest context per thread, reused: EVP_Digest makes and frees one per call.
  thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                                 &EVP_MD_CTX_free);
  unsigned char out[SHA256_DIGEST_LENGTH];
  unsigned int len = 0;
  if (!ctx || EVP_DigestInit_ex2(ctx.get(), sha256, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), secret.data(), secret.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), out, &len) != 1) {
    std::abort();
  }
  return std::string(reinterpret_cast<char*>(out), len);
}

KeyHash ToKeyHash(absl::string_view raw) {
  KeyHash h{};
  std::copy_n(raw.data(), std::min(raw.size(), h.size()), h.begin());
  return h;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace quotum::engine
