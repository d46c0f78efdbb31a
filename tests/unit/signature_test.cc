// Webhook signatures: a known-answer vector and the secret's shape.
#include "quotum/notify/signature.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace quotum::notify {
namespace {

// Computed once, independently of this code, with
//   printf '%s' '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_x
// (and checked with Python's hmac module).
TEST(SignatureTest, MatchesAnIndependentlyComputedHmac) {
  EXPECT_EQ(SignatureHeader("whsec_x", 1700000000, R"({"a":1})"),
            "t=1700000000,v1=b3438763ab46d9634b9844c8722818eaf523f803db1327484c6067462a5fd6d1");
}

TEST(SignatureTest, CoversTheTimestampTheBodyAndTheSecret) {
  const std::string base = SignatureHeader("whsec_x", 1700000000, R"({"a":1})");
  EXPECT_NE(SignatureHeader("whsec_x", 1700000001, R"({"a":1})").substr(17), base.substr(17));
  EXPECT_NE(SignatureHeader("whsec_x", 1700000000, R"({"a":2})"), base);
  EXPECT_NE(SignatureHeader("whsec_y", 1700000000, R"({"a":1})"), base);
}

TEST(SignatureTest, SecretIsPrefixedHexOf32Bytes) {
  std::set<std::string> seen;
  for (int i = 0; i < 20; ++i) {
    const std::string secret = NewWebhookSecret();
    ASSERT_EQ(secret.size(), 6u + 64u) << secret;
    EXPECT_EQ(secret.substr(0, 6), "whsec_");
    EXPECT_EQ(secret.find_first_not_of("0123456789abcdef", 6), std::string::npos) << secret;
    seen.insert(secret);
  }
  EXPECT_EQ(seen.size(), 20u);
}

}  // namespace
}  // namespace quotum::notify
