#pragma once

#include <boost/json/value.hpp>
#include <string>

namespace quotum::http {

/// Serialises like boost::json::serialize, except that doubles are written in
/// plain decimal notation (98.0, 12.5) rather than Boost 1.81's exponent form
/// (9.8E1), which is what people and dashboards expect to read.
std::string ToJson(const boost::json::value& v);

}  // namespace quotum::http
