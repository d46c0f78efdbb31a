#pragma once

#include <array>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"

namespace quotum::engine {

/// A freshly minted key: the secret is shown once, only its hash is kept.
struct MintedKey {
  std::string key_id;  ///< public identifier, "key_" + 16 hex digits
  std::string secret;  ///< "qk_" + 32 hex digits (128 bits from the OS CSPRNG)
  std::string hash;    ///< raw SHA-256 of secret (32 bytes)
};

MintedKey MintApiKey();

/// Raw SHA-256 of `secret` (32 bytes).
std::string HashSecret(absl::string_view secret);

/// A key hash held inline (no heap string per key in the registry).
using KeyHash = std::array<char, 32>;
/// `raw` must be 32 bytes (a HashSecret result).
KeyHash ToKeyHash(absl::string_view raw);

/// Constant-time equality of two byte strings of equal length.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

/// `bytes` random bytes from the OS CSPRNG, hex-encoded.
std::string RandomHex(size_t bytes);

}  // namespace quotum::engine
