#include "quotum/http/json_input.h"

#include <boost/json/parse.hpp>

#include "absl/strings/str_cat.h"
#include "quotum/core/billing_period.h"
#include "quotum/core/string_views.h"
#include "quotum/engine/errors.h"

namespace quotum::http {

using engine::BadRequest;
using engine::Unprocessable;

absl::StatusOr<boost::json::object> ParseObject(std::string_view body,
                                                boost::json::storage_ptr storage) {
  boost::system::error_code ec;
  boost::json::parse_options opts;
  opts.max_depth = 32;
  boost::json::value v = boost::json::parse(body, ec, std::move(storage), opts);
  if (ec) {
    return BadRequest("invalid_json", Cat("Request body is not valid JSON: ", ec.message(), "."));
  }
  if (!v.is_object()) return BadRequest("invalid_json", "Request body must be a JSON object.");
  return std::move(v.as_object());
}

absl::StatusOr<std::optional<std::string>> Fields::String(std::string_view name,
                                                          size_t max_len) const {
  auto it = o_.find(name);
  if (it == o_.end() || it->value().is_null()) return std::nullopt;
  if (!it->value().is_string()) {
    return BadRequest("invalid_field", Cat("\"", name, "\" must be a string."));
  }
  const auto& s = it->value().get_string();
  if (s.size() > max_len) {
    return Unprocessable("invalid_field",
                         Cat("\"", name, "\" must be at most ", max_len, " characters."));
  }
  return std::string(s.data(), s.size());
}

absl::StatusOr<std::optional<uint64_t>> Fields::Count(std::string_view name) const {
  auto it = o_.find(name);
  if (it == o_.end() || it->value().is_null()) return std::nullopt;
  const boost::json::value& v = it->value();
  if (v.is_uint64()) return v.get_uint64();
  if (v.is_int64()) {
    if (v.get_int64() < 0) {
      return Unprocessable("invalid_quantity", Cat("\"", name, "\" must not be negative."));
    }
    return static_cast<uint64_t>(v.get_int64());
  }
  if (v.is_double()) {
    double d = v.get_double();
    if (d < 0) {
      return Unprocessable("invalid_quantity", Cat("\"", name, "\" must not be negative."));
    }
    return Unprocessable(
        "invalid_quantity",
        Cat("\"", name, "\" must be a whole number between 0 and 18446744073709551615."));
  }
  return BadRequest("invalid_field", Cat("\"", name, "\" must be an integer."));
}

absl::StatusOr<std::optional<uint64_t>> Fields::Quantity(std::string_view name) const {
  auto q = Count(name);
  if (q.ok() && *q && **q == 0) {
    return Unprocessable("invalid_quantity", Cat("\"", name, "\" must be at least 1."));
  }
  return q;
}

absl::StatusOr<std::optional<bool>> Fields::Bool(std::string_view name) const {
  auto it = o_.find(name);
  if (it == o_.end() || it->value().is_null()) return std::nullopt;
  if (!it->value().is_bool()) {
    return BadRequest("invalid_field", Cat("\"", name, "\" must be true or false."));
  }
  return it->value().get_bool();
}

absl::StatusOr<std::optional<absl::Time>> Fields::Time(std::string_view name) const {
  auto s = String(name, 64);
  if (!s.ok()) return s.status();
  if (!*s) return std::nullopt;
  auto t = ParseRfc3339(**s);
  if (!t.ok()) {
    return BadRequest("invalid_field", Cat("\"", name, "\": ", t.status().message()));
  }
  return *t;
}

}  // namespace quotum::http
