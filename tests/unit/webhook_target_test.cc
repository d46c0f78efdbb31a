// Webhook URL and address policy: what ParseWebhookUrl refuses, which
// addresses count as non-public, and how allow_hosts lets some back in.
#include "quotum/notify/webhook_target.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>
#include <string>
#include <vector>

namespace quotum::notify {
namespace {

/// A sockaddr for an IPv4 or IPv6 literal; fails the test when it is neither.
sockaddr_storage Addr(const std::string& ip) {
  sockaddr_storage storage{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  if (inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
  } else if (inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
  } else {
    ADD_FAILURE() << "not an IP literal: " << ip;
  }
  return storage;
}

bool Allowed(const std::string& ip, const std::string& host = "example.com",
             const TargetPolicy& policy = {}) {
  sockaddr_storage storage = Addr(ip);
  return AddressAllowed(reinterpret_cast<const sockaddr*>(&storage), host, policy);
}

/// The URL host form of an address: IPv6 in brackets.
std::string UrlFor(const std::string& ip) {
  return ip.find(':') == std::string::npos ? "http://" + ip + "/hook" : "http://[" + ip + "]/hook";
}

const std::vector<std::string> kNonPublic = {"0.0.0.0",
                                             "0.255.255.255",
                                             "10.0.0.1",
                                             "10.255.255.255",
                                             "100.64.0.0",
                                             "100.127.255.255",
                                             "127.0.0.1",
                                             "127.255.255.254",
                                             "169.254.0.1",
                                             "169.254.169.254",
                                             "172.16.0.1",
                                             "172.31.255.255",
                                             "192.168.0.1",
                                             "192.168.255.255",
                                             "224.0.0.1",
                                             "239.255.255.250",
                                             "240.0.0.1",
                                             "255.255.255.254",
                                             "255.255.255.255",
                                             "::",
                                             "::1",
                                             "fc00::1",
                                             "fdff:ffff::1",
                                             "fe80::1",
                                             "febf:ffff::1",
                                             "fec0::1",
                                             "ff02::1",
                                             "ff0e::1",
                                             "::ffff:127.0.0.1",
                                             "::ffff:10.1.2.3",
                                             "::ffff:169.254.169.254",
                                             "64:ff9b::7f00:1",
                                             "64:ff9b::c0a8:101"};

const std::vector<std::string> kPublic = {"1.1.1.1",
                                          "8.8.8.8",
                                          "9.255.255.255",
                                          "11.0.0.0",
                                          "100.63.255.255",
                                          "100.128.0.0",
                                          "126.255.255.255",
                                          "128.0.0.0",
                                          "169.253.255.255",
                                          "169.255.0.0",
                                          "172.15.255.255",
                                          "172.32.0.0",
                                          "192.167.255.255",
                                          "192.169.0.0",
                                          "223.255.255.255",
                                          "::2",
                                          "2001:4860:4860::8888",
                                          "fbff::1",
                                          "fe7f::1",
                                          "fe00::1",
                                          "::ffff:8.8.8.8",
                                          "64:ff9b::808:808"};

TEST(AddressAllowedTest, RefusesEveryNonPublicRange) {
  for (const std::string& ip : kNonPublic) EXPECT_FALSE(Allowed(ip)) << ip;
}

TEST(AddressAllowedTest, AllowsPublicAddressesAtTheRangesEdges) {
  for (const std::string& ip : kPublic) EXPECT_TRUE(Allowed(ip)) << ip;
}

TEST(AddressAllowedTest, RefusesOtherFamiliesAndNull) {
  sockaddr_un unix_addr{};
  unix_addr.sun_family = AF_UNIX;
  EXPECT_FALSE(AddressAllowed(reinterpret_cast<const sockaddr*>(&unix_addr), "x", {}));
  EXPECT_FALSE(AddressAllowed(nullptr, "x", {}));
}

TEST(AddressAllowedTest, PolicyAllowsByHostNameIgnoringCase) {
  const TargetPolicy policy{{"hooks.internal"}};
  EXPECT_TRUE(Allowed("10.0.0.5", "Hooks.INTERNAL", policy));
  EXPECT_TRUE(Allowed("127.0.0.1", "hooks.internal", policy));
  EXPECT_FALSE(Allowed("10.0.0.5", "other.internal", policy));
  EXPECT_FALSE(Allowed("10.0.0.5", "hooks.internal.evil.com", policy));
}

TEST(AddressAllowedTest, PolicyAllowsByIpLiteral) {
  const TargetPolicy policy{{"127.0.0.1", "[::1]"}};
  EXPECT_TRUE(Allowed("127.0.0.1", "localhost", policy));
  EXPECT_TRUE(Allowed("::ffff:127.0.0.1", "localhost", policy));
  EXPECT_TRUE(Allowed("::1", "localhost", policy));
  EXPECT_FALSE(Allowed("127.0.0.2", "localhost", policy));
  EXPECT_FALSE(Allowed("10.0.0.1", "localhost", policy));
}

TEST(AddressAllowedTest, PolicyAllowsByCidr) {
  const TargetPolicy policy{{"10.0.0.0/8", "172.16.0.0/13", "::1/128", "fd00::/8"}};
  EXPECT_TRUE(Allowed("10.255.0.1", "h", policy));
  EXPECT_TRUE(Allowed("::ffff:10.1.1.1", "h", policy));
  EXPECT_TRUE(Allowed("172.23.255.255", "h", policy));
  EXPECT_FALSE(Allowed("172.24.0.0", "h", policy));
  EXPECT_FALSE(Allowed("127.0.0.1", "h", policy));
  EXPECT_TRUE(Allowed("::1", "h", policy));
  EXPECT_TRUE(Allowed("fd00::5", "h", policy));
  EXPECT_FALSE(Allowed("fc00::5", "h", policy));
  EXPECT_FALSE(Allowed("fe80::1", "h", policy));
}

TEST(AddressAllowedTest, MappedCidrAppliesToIpv4) {
  EXPECT_TRUE(Allowed("127.9.9.9", "h", {{"::ffff:127.0.0.0/104"}}));
  EXPECT_FALSE(Allowed("10.0.0.1", "h", {{"::ffff:127.0.0.0/104"}}));
}

TEST(AddressAllowedTest, MalformedEntriesAllowNothing) {
  const TargetPolicy policy{{"10.0.0.0/33", "10.0.0.0/", "10.0.0.300", "::1/129", "bad host"}};
  EXPECT_FALSE(Allowed("10.0.0.1", "h", policy));
  EXPECT_FALSE(Allowed("::1", "h", policy));
}

TEST(CheckTargetPolicyTest, AcceptsNamesIpsAndCidrs) {
  EXPECT_TRUE(CheckTargetPolicy({{"hooks.internal", "127.0.0.1", "::1", "[::1]", "10.0.0.0/8",
                                  "fd00::/8", "0.0.0.0/0"}})
                  .ok());
}

TEST(CheckTargetPolicyTest, NamesTheWrongEntry) {
  for (const std::string entry : {"10.0.0.0/33", "10.0.0.300", "::1/129", "bad host!", "", "a/b"}) {
    absl::Status status = CheckTargetPolicy({{"ok.example", entry}});
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << entry;
    EXPECT_NE(std::string(status.message()).find("\"" + entry + "\""), std::string::npos)
        << status.message();
  }
}

TEST(ParseWebhookUrlTest, AcceptsPublicHttpAndHttps) {
  auto https = ParseWebhookUrl("https://Hooks.Example.COM/in?x=1", {});
  ASSERT_TRUE(https.ok()) << https.status();
  EXPECT_EQ(https->url, "https://Hooks.Example.COM/in?x=1");
  EXPECT_EQ(https->scheme, "https");
  EXPECT_EQ(https->host, "hooks.example.com");
  EXPECT_EQ(https->port, 443);

  auto http = ParseWebhookUrl("HTTP://8.8.8.8:8080", {});
  ASSERT_TRUE(http.ok()) << http.status();
  EXPECT_EQ(http->scheme, "http");
  EXPECT_EQ(http->host, "8.8.8.8");
  EXPECT_EQ(http->port, 8080);

  auto v6 = ParseWebhookUrl("http://[2001:4860::1]:81/", {});
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->host, "2001:4860::1");
  EXPECT_EQ(v6->port, 81);
}

TEST(ParseWebhookUrlTest, DoesNotResolveNames) {
  auto local = ParseWebhookUrl("http://localhost:9000/", {});
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_EQ(local->host, "localhost");
}

/// The refusal message of `url`, or "" when it was accepted.
std::string Refusal(const std::string& url, const TargetPolicy& policy = {}) {
  auto target = ParseWebhookUrl(url, policy);
  if (target.ok()) return "";
  EXPECT_EQ(target.status().code(), absl::StatusCode::kInvalidArgument) << url;
  return std::string(target.status().message());
}

TEST(ParseWebhookUrlTest, RefusesEachBadShape) {
  EXPECT_EQ(Refusal("ftp://example.com/x"), "The webhook URL must use http or https.");
  EXPECT_EQ(Refusal("file:///etc/passwd"), "The webhook URL must use http or https.");
  EXPECT_EQ(Refusal("http:///path"), "The webhook URL must name a host.");
  EXPECT_EQ(Refusal("https:only-a-path"), "The webhook URL must name a host.");
  EXPECT_EQ(Refusal("https://user:pw@example.com/"),
            "The webhook URL must not contain a user name or password.");
  EXPECT_EQ(Refusal("https://@example.com/"),
            "The webhook URL must not contain a user name or password.");
  EXPECT_EQ(Refusal("https://example.com/#frag"),
            "The webhook URL must not contain a fragment (#...).");
  EXPECT_EQ(Refusal("/relative/hook"), "The webhook URL is not a valid absolute URL.");
  EXPECT_EQ(Refusal("https://exa mple.com/"), "The webhook URL is not a valid absolute URL.");
  EXPECT_EQ(Refusal("https://example.com:0/"),
            "The webhook URL's port must be a number from 1 to 65535.");
  EXPECT_EQ(Refusal("https://example.com:65536/"),
            "The webhook URL's port must be a number from 1 to 65535.");
  EXPECT_EQ(Refusal("https://ex%41mple.com/"), "The webhook URL's host is not a valid host name.");
}

TEST(ParseWebhookUrlTest, RefusesUrlsLongerThan2048Bytes) {
  const std::string prefix = "https://example.com/";
  const std::string at_limit = prefix + std::string(2048 - prefix.size(), 'a');
  EXPECT_EQ(Refusal(at_limit), "");
  EXPECT_EQ(Refusal(at_limit + "a"), "The webhook URL is longer than 2048 bytes.");
}

TEST(ParseWebhookUrlTest, RefusesNonPublicIpLiterals) {
  for (const std::string& ip : kNonPublic) {
    const std::string refusal = Refusal(UrlFor(ip));
    EXPECT_NE(refusal.find("is a loopback/private address; an operator allows it with "
                           "[webhooks] allow_hosts"),
              std::string::npos)
        << ip << ": " << refusal;
  }
  for (const std::string& ip : kPublic) EXPECT_EQ(Refusal(UrlFor(ip)), "") << ip;
}

TEST(ParseWebhookUrlTest, RefusesNumericHostsTheResolverReadsAsIpv4) {
  for (const char* host : {"127.1", "2130706433", "0x7f000001", "0177.0.0.1", "10.1"}) {
    EXPECT_NE(Refusal(std::string("http://") + host + "/").find("loopback/private"),
              std::string::npos)
        << host;
  }
}

TEST(ParseWebhookUrlTest, PolicyAllowsNonPublicLiterals) {
  EXPECT_EQ(Refusal("http://127.0.0.1:8080/", {{"127.0.0.1"}}), "");
  EXPECT_EQ(Refusal("http://127.0.0.9:8080/", {{"127.0.0.0/8"}}), "");
  EXPECT_EQ(Refusal("http://[::1]:8080/", {{"::1/128"}}), "");
  EXPECT_EQ(Refusal("http://[::ffff:127.0.0.1]/", {{"127.0.0.1"}}), "");
  EXPECT_NE(Refusal("http://10.0.0.1/", {{"127.0.0.0/8"}}), "");
  EXPECT_NE(Refusal("http://[::1]/", {{"127.0.0.1"}}), "");
}

}  // namespace
}  // namespace quotum::notify
