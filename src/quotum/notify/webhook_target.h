#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace quotum::notify {

/// Where webhooks may go beyond the public internet ([webhooks] allow_hosts).
/// Each entry is a host name (matched exactly, ignoring case), an IP literal
/// ("10.1.2.3", "::1", "[::1]") or a CIDR ("127.0.0.0/8", "fd00::/8"). A
/// listed name or address may be loopback/private and is still allowed.
struct TargetPolicy {
  std::vector<std::string> allow_hosts;
};

/// A webhook URL that passed ParseWebhookUrl.
struct WebhookTarget {
  std::string url;     ///< as given
  std::string scheme;  ///< "http" or "https"
  /// Lowercase host name, or an IP literal without brackets ("::1").
  std::string host;
  uint16_t port = 0;  ///< explicit, or 80/443 from the scheme
};

/// OK when every allow_hosts entry is a host name, an IP literal or a valid
/// CIDR; otherwise says which entry is wrong. An invalid CIDR matches nothing,
/// so a config loader calls this to tell the operator.
absl::Status CheckTargetPolicy(const TargetPolicy& policy);

/// Parses and vets a webhook URL: absolute http/https with a host, no
/// userinfo, no fragment, at most 2048 bytes, and a host that is not a
/// non-public IP literal unless `policy` allows it. Host names are not
/// resolved here: delivery vets each resolved address (AddressAllowed).
/// Refusals are InvalidArgumentError with one human sentence.
absl::StatusOr<WebhookTarget> ParseWebhookUrl(std::string_view url, const TargetPolicy& policy);

/// True when a connection to `addr` (AF_INET or AF_INET6; other families are
/// refused) may be made for the URL host `host`: the address is public, or
/// `host` or the address is in `policy`. Non-public: IPv4 0/8, 10/8,
/// 100.64/10, 127/8, 169.254/16, 172.16/12, 192.168/16, 224/4 and above;
/// IPv6 ::, ::1, fc00::/7, fec0::/10, fe80::/10, ff00::/8; an IPv4-mapped
/// (::ffff:a.b.c.d) or NAT64 (64:ff9b::a.b.c.d) address is judged as its IPv4
/// address, for both the ranges and the policy. Thread-safe; no I/O.
bool AddressAllowed(const sockaddr* addr, std::string_view host, const TargetPolicy& policy);

}  // namespace quotum::notify
