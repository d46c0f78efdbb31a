#pragma once

#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace quotum {

// Debian's Abseil is built with its own absl::string_view, distinct from
// std::string_view (which toml++ and Boost use). These convert at the seams.

inline absl::string_view ToAbsl(std::string_view s) { return {s.data(), s.size()}; }
inline std::string_view ToStd(absl::string_view s) { return {s.data(), s.size()}; }

namespace internal {
inline absl::string_view CatArg(std::string_view s) { return ToAbsl(s); }
template <typename T>
const T& CatArg(const T& t) {
  return t;
}
}  // namespace internal

/// absl::StrCat that also takes std::string_view arguments.
template <typename... T>
std::string Cat(const T&... parts) {
  return absl::StrCat(internal::CatArg(parts)...);
}

}  // namespace quotum
