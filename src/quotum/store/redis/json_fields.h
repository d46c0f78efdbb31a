// Fields of the JSON records the Redis backend keeps (leases, facts).
#pragma once

#include <boost/json.hpp>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace quotum::store::redis {

/// o[key] when it is a string; otherwise InvalidArgument "<record>: no <key>".
inline absl::StatusOr<std::string> TextField(const boost::json::object& o, std::string_view key,
                                             std::string_view record) {
  const boost::json::value* v = o.if_contains(key);
  if (!v || !v->is_string()) {
    return absl::InvalidArgumentError(std::string(record) + ": no " + std::string(key));
  }
  return std::string(v->get_string());
}

}  // namespace quotum::store::redis
