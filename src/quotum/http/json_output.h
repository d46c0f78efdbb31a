#pragma once

#include <boost/json/value.hpp>
#include <cstddef>
#include <string>
#include <string_view>

namespace quotum::http {

/// Serialises like boost::json::serialize, except that doubles are written in
/// plain decimal notation (98.0, 12.5) rather than Boost 1.81's exponent form
/// (9.8E1), which is what people and dashboards expect to read.
std::string ToJson(const boost::json::value& v);

/// `text` as valid UTF-8 of at most `max_bytes` bytes (plus an ellipsis when
/// cut): each byte that does not start a well-formed UTF-8 sequence becomes
/// U+FFFD, and a cut never splits a character. For echoing client input.
std::string SafeText(std::string_view text, size_t max_bytes);

}  // namespace quotum::http
