#pragma once

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace quotum::http {

/// Stack memory for one request body's JSON; grows onto the heap only for
/// large bodies. Whatever is parsed into it must not outlive it.
class JsonArena {
 public:
  JsonArena() = default;
  JsonArena(const JsonArena&) = delete;
  JsonArena& operator=(const JsonArena&) = delete;
  boost::json::storage_ptr storage() { return &resource_; }

 private:
  unsigned char buffer_[2048];
  boost::json::monotonic_resource resource_{buffer_, sizeof buffer_};
};

/// Parses a request body that must be one JSON object (400 otherwise),
/// allocating from `storage`.
absl::StatusOr<boost::json::object> ParseObject(std::string_view body,
                                                boost::json::storage_ptr storage = {});

/// Typed, validated access to a JSON object's fields. Every getter returns
/// nullopt for an absent (or null) field and an error naming the field for a
/// wrong type or value: 400 for a wrong type, 422 for an unacceptable value.
class Fields {
 public:
  explicit Fields(const boost::json::object& o) : o_(o) {}

  absl::StatusOr<std::optional<std::string>> String(std::string_view name,
                                                    size_t max_len = 1024) const;
  /// A positive integer quantity in [1, 2^64-1].
  absl::StatusOr<std::optional<uint64_t>> Quantity(std::string_view name) const;
  /// A non-negative integer in [0, 2^64-1].
  absl::StatusOr<std::optional<uint64_t>> Count(std::string_view name) const;
  absl::StatusOr<std::optional<bool>> Bool(std::string_view name) const;
  /// An RFC 3339 timestamp string.
  absl::StatusOr<std::optional<absl::Time>> Time(std::string_view name) const;

 private:
  const boost::json::object& o_;
};

}  // namespace quotum::http
