#pragma once

// What the usage stream (GET /api/v2/usage/stream) says, as text: pure
// functions from a tenant's usage to Server-Sent Events. The stream is
// state-based: each event carries the latest state of what changed, and its
// id names the whole state after it, so a client that reconnects with the id
// of the current state has missed nothing.

#include <boost/json/object.hpp>
#include <string>
#include <utility>
#include <vector>

#include "quotum/core/catalog.h"
#include "quotum/engine/engine.h"

namespace quotum::http {

/// A tenant's usage as the stream shows it.
struct StreamSnapshot {
  /// tenant_id, plan, period, period_start, period_end, source.
  boost::json::object header;
  /// Per meter, in catalog order: its name and its MeterUsageJson entry.
  std::vector<std::pair<std::string, boost::json::object>> meters;
  /// 16 lowercase hex digits: FNV-1a (64 bit) of the header and every entry.
  std::string id;
};

StreamSnapshot SnapshotOf(const Catalog& cat, const engine::UsageView& u);

/// The event with every meter ("full": true).
std::string FullEvent(const StreamSnapshot& now);

/// The event with the meters whose entry differs from `before` ("full":
/// false), or a full event when the header changed (a new period or plan);
/// empty when nothing changed.
std::string ChangeEvent(const StreamSnapshot& before, const StreamSnapshot& now);

/// The comment a quiet stream sends so that proxies and clients see it alive.
inline constexpr std::string_view kHeartbeat = ": heartbeat\n\n";
/// The first bytes of every stream: how long a client waits to reconnect.
inline constexpr std::string_view kStreamPreamble = "retry: 2000\n\n";

}  // namespace quotum::http
