// The port of an address a server reports it bound ("127.0.0.1:43817").
#pragma once

#include <string>

namespace quotum {

inline int PortOf(const std::string& bound) {
  return std::stoi(bound.substr(bound.rfind(':') + 1));
}

}  // namespace quotum
