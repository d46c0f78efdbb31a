#include "quotum/notify/webhook_target.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <array>
#include <charconv>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "boost/url/parse.hpp"
#include "boost/url/url_view.hpp"
#include "quotum/core/string_views.h"

namespace quotum::notify {
namespace {

constexpr size_t kMaxUrlBytes = 2048;

/// An IPv4 (bytes 0-3) or IPv6 address in network order.
struct Ip {
  bool v4 = false;
  std::array<uint8_t, 16> bytes{};
};

/// An address range: the first `bits` bits of `ip`.
struct Net {
  Ip ip;
  int bits = 0;
};

int Width(const Ip& ip) { return ip.v4 ? 32 : 128; }

/// An IPv4-mapped (::ffff:0:0/96) or NAT64 (64:ff9b::/96) address as the
/// IPv4 address it carries; any other address unchanged.
Ip Unwrap(const Ip& ip) {
  static constexpr std::array<uint8_t, 12> kMapped = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static constexpr std::array<uint8_t, 12> kNat64 = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  if (ip.v4) return ip;
  if (std::memcmp(ip.bytes.data(), kMapped.data(), 12) != 0 &&
      std::memcmp(ip.bytes.data(), kNat64.data(), 12) != 0) {
    return ip;
  }
  Ip out;
  out.v4 = true;
  std::memcpy(out.bytes.data(), ip.bytes.data() + 12, 4);
  return out;
}

bool InNet(const Ip& ip, const Net& net) {
  if (ip.v4 != net.ip.v4) return false;
  const int whole = net.bits / 8;
  if (std::memcmp(ip.bytes.data(), net.ip.bytes.data(), whole) != 0) return false;
  const int rest = net.bits % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (ip.bytes[whole] & mask) == (net.ip.bytes[whole] & mask);
}

/// A dotted-quad IPv4 or an IPv6 literal (brackets optional); nullopt otherwise.
std::optional<Ip> ParseIp(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  const std::string s(text);
  Ip ip;
  if (inet_pton(AF_INET, s.c_str(), ip.bytes.data()) == 1) {
    ip.v4 = true;
    return ip;
  }
  if (inet_pton(AF_INET6, s.c_str(), ip.bytes.data()) == 1) return ip;
  return std::nullopt;
}

/// "a.b.c.d", "v6", "a.b.c.d/n" or "v6/n"; an IPv4-mapped IPv6 range of at
/// least /96 becomes the IPv4 range. Nullopt when malformed.
std::optional<Net> ParseNet(std::string_view text) {
  const size_t slash = text.find('/');
  std::optional<Ip> ip = ParseIp(text.substr(0, slash));
  if (!ip) return std::nullopt;
  Net net{*ip, Width(*ip)};
  if (slash != std::string_view::npos) {
    std::string_view digits = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), net.bits);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() ||
        net.bits < 0 || net.bits > Width(*ip)) {
      return std::nullopt;
    }
  }
  if (!net.ip.v4 && net.bits >= 96 && Unwrap(net.ip).v4) net = {Unwrap(net.ip), net.bits - 96};
  return net;
}

/// Letters, digits, '-', '_' and '.': what a DNS name may hold.
bool IsHostName(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

/// An allow_hosts entry: a host name, or an address range.
struct PolicyEntry {
  std::string_view name;   ///< set for a host name
  std::optional<Net> net;  ///< set for an IP literal or CIDR
  bool valid = false;
};

PolicyEntry ClassifyEntry(std::string_view entry) {
  const bool looks_numeric =
      entry.find_first_not_of("0123456789.") == std::string_view::npos && !entry.empty();
  if (entry.find_first_of("/:[") != std::string_view::npos || looks_numeric) {
    PolicyEntry out;
    out.net = ParseNet(entry);
    out.valid = out.net.has_value();
    return out;
  }
  return PolicyEntry{entry, std::nullopt, IsHostName(entry)};
}

const std::vector<Net>& NonPublicNets() {
  static const std::vector<Net>* const nets = [] {
    auto* out = new std::vector<Net>;
    for (const char* cidr :
         {"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
          "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/3", "::/128", "::1/128", "fc00::/7",
          "fec0::/10", "fe80::/10", "ff00::/8"}) {
      out->push_back(*ParseNet(cidr));
    }
    return out;
  }();
  return *nets;
}

/// `ip` already unwrapped (Unwrap).
bool IpAllowed(const Ip& ip, std::string_view host, const TargetPolicy& policy) {
  bool non_public = false;
  for (const Net& net : NonPublicNets()) non_public = non_public || InNet(ip, net);
  if (!non_public) return true;
  for (const std::string& raw : policy.allow_hosts) {
    PolicyEntry entry = ClassifyEntry(raw);
    if (!entry.valid) continue;
    if (entry.net ? InNet(ip, *entry.net)
                  : absl::EqualsIgnoreCase(ToAbsl(entry.name), ToAbsl(host)))
      return true;
  }
  return false;
}

std::optional<Ip> FromSockaddr(const sockaddr* addr) {
  if (addr == nullptr) return std::nullopt;
  Ip ip;
  if (addr->sa_family == AF_INET) {
    ip.v4 = true;
    std::memcpy(ip.bytes.data(), &reinterpret_cast<const sockaddr_in*>(addr)->sin_addr, 4);
    return ip;
  }
  if (addr->sa_family == AF_INET6) {
    std::memcpy(ip.bytes.data(), &reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr, 16);
    return ip;
  }
  return std::nullopt;
}

absl::Status Refuse(std::string_view sentence) {
  return absl::InvalidArgumentError(ToAbsl(sentence));
}

absl::StatusOr<uint16_t> PortOf(const boost::urls::url_view& u) {
  const bool https = u.scheme_id() == boost::urls::scheme::https;
  if (!u.has_port() || u.port().empty()) return https ? 443 : 80;
  std::string_view digits(u.port().data(), u.port().size());
  unsigned port = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (ec != std::errc() || end != digits.data() + digits.size() || port == 0 || port > 65535) {
    return Refuse("The webhook URL's port must be a number from 1 to 65535.");
  }
  return static_cast<uint16_t>(port);
}

/// The host as WebhookTarget holds it: a lowercase name or a bracket-free
/// IP literal.
absl::StatusOr<std::string> HostOf(const boost::urls::url_view& u) {
  switch (u.host_type()) {
    case boost::urls::host_type::ipv4:
      return u.host_ipv4_address().to_string();
    case boost::urls::host_type::ipv6:
      return u.host_ipv6_address().to_string();
    case boost::urls::host_type::name: {
      // Encoded: a percent-encoded name ("ex%41mple.com") is refused, as
      // other parsers (curl's) may read it differently.
      const std::string name(u.encoded_host_address());
      if (!IsHostName(name)) return Refuse("The webhook URL's host is not a valid host name.");
      return absl::AsciiStrToLower(name);
    }
    default:
      return Refuse("The webhook URL must name a host.");
  }
}

/// The address a host literally names: an IP literal, or a name the system
/// resolver would read as an IPv4 address without asking DNS ("127.1",
/// "2130706433", "0x7f.1").
std::optional<Ip> LiteralAddress(const std::string& host) {
  if (std::optional<Ip> ip = ParseIp(host)) return ip;
  in_addr v4{};
  if (inet_aton(host.c_str(), &v4) == 0) return std::nullopt;
  Ip ip;
  ip.v4 = true;
  std::memcpy(ip.bytes.data(), &v4, 4);
  return ip;
}

absl::Status CheckShape(const boost::urls::url_view& u) {
  const auto scheme = u.scheme_id();
  if (scheme != boost::urls::scheme::http && scheme != boost::urls::scheme::https) {
    return Refuse("The webhook URL must use http or https.");
  }
  if (!u.has_authority() || u.encoded_host().empty()) {
    return Refuse("The webhook URL must name a host.");
  }
  if (u.has_userinfo()) return Refuse("The webhook URL must not contain a user name or password.");
  if (u.has_fragment()) return Refuse("The webhook URL must not contain a fragment (#...).");
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckTargetPolicy(const TargetPolicy& policy) {
  for (const std::string& entry : policy.allow_hosts) {
    if (!ClassifyEntry(entry).valid) {
      return absl::InvalidArgumentError(absl::StrCat(
          "[webhooks] allow_hosts entry \"", entry,
          "\" is neither a host name, an IP address nor a CIDR range (such as 10.0.0.0/8)."));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<WebhookTarget> ParseWebhookUrl(std::string_view url, const TargetPolicy& policy) {
  if (url.size() > kMaxUrlBytes) return Refuse("The webhook URL is longer than 2048 bytes.");
  // parse_uri, not parse_absolute_uri: both require a scheme, but only
  // parse_uri takes a fragment, which is then refused in its own words.
  auto parsed = boost::urls::parse_uri(url);
  if (parsed.has_error()) return Refuse("The webhook URL is not a valid absolute URL.");
  const boost::urls::url_view& u = *parsed;
  if (absl::Status shape = CheckShape(u); !shape.ok()) return shape;
  absl::StatusOr<uint16_t> port = PortOf(u);
  if (!port.ok()) return port.status();
  absl::StatusOr<std::string> host = HostOf(u);
  if (!host.ok()) return host.status();
  if (std::optional<Ip> ip = LiteralAddress(*host); ip && !IpAllowed(Unwrap(*ip), *host, policy)) {
    return Refuse(absl::StrCat("The webhook URL's host ", *host,
                               " is a loopback/private address; an operator allows it with "
                               "[webhooks] allow_hosts."));
  }
  WebhookTarget target;
  target.url = std::string(url);
  target.scheme = u.scheme_id() == boost::urls::scheme::https ? "https" : "http";
  target.host = *std::move(host);
  target.port = *port;
  return target;
}

bool AddressAllowed(const sockaddr* addr, std::string_view host, const TargetPolicy& policy) {
  std::optional<Ip> ip = FromSockaddr(addr);
  return ip.has_value() && IpAllowed(Unwrap(*ip), host, policy);
}

}  // namespace quotum::notify
