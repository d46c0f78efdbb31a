#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

namespace quotum::report {

/// Appends one RFC 4180 record: fields separated by commas, a field quoted
/// (with inner quotes doubled) when it holds a comma, a quote, CR or LF, and
/// the record ended by CRLF.
void AppendCsvRecord(std::string& out, std::initializer_list<std::string_view> fields);

}  // namespace quotum::report
