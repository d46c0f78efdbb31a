#pragma once

#include <boost/beast/http/verb.hpp>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/inlined_vector.h"

namespace quotum::http {

/// Who may call a route.
enum class Access {
  kPublic,
  /// Tenant key; the router applies the general rate rule before the handler.
  kTenant,
  /// Tenant key; the handler's engine call decides every rule itself (all or nothing).
  kTenantDecides,
  kAdmin,
};

/// Maps (method, path) to a route; patterns use "{name}" for one segment.
template <typename Handler>
class Router {
 public:
  struct Route {
    boost::beast::http::verb method;
    std::vector<std::string> segments;
    Access access;
    Handler handler;
    std::string pattern;
    size_t index = 0;  ///< position in routes(), for per-route tables
  };

  struct Match {
    const Route* route = nullptr;
    std::vector<std::string> params;
    /// Methods allowed on this path when it exists but `method` is not one.
    std::string allow;
  };

  void Add(boost::beast::http::verb method, std::string_view pattern, Access access,
           Handler handler) {
    std::vector<std::string> segments;
    for (std::string_view seg : Split(pattern)) segments.emplace_back(seg);
    routes_.push_back(Route{method, std::move(segments), access, std::move(handler),
                            std::string(pattern), routes_.size()});
  }

  Match Find(boost::beast::http::verb method, std::string_view path) const {
    Match m;
    const Segments segs = Split(path);
    for (const Route& r : routes_) {
      std::vector<std::string> params;
      if (!SegmentsMatch(r.segments, segs, &params)) continue;
      if (r.method == method) {
        m.route = &r;
        m.params = std::move(params);
        m.allow.clear();
        return m;
      }
      if (!m.allow.empty()) m.allow += ", ";
      m.allow += std::string(boost::beast::http::to_string(r.method));
    }
    return m;
  }

  const std::vector<Route>& routes() const { return routes_; }

 private:
  using Segments = absl::InlinedVector<std::string_view, 8>;

  // Views into `path`, which must outlive the result.
  static Segments Split(std::string_view path) {
    Segments out;
    size_t i = 0;
    while (i < path.size()) {
      if (path[i] == '/') {
        ++i;
        continue;
      }
      size_t j = path.find('/', i);
      if (j == std::string_view::npos) j = path.size();
      out.push_back(path.substr(i, j - i));
      i = j;
    }
    return out;
  }

  static bool SegmentsMatch(const std::vector<std::string>& pattern, const Segments& path,
                            std::vector<std::string>* params) {
    if (pattern.size() != path.size()) return false;
    for (size_t i = 0; i < pattern.size(); ++i) {
      const std::string& p = pattern[i];
      if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
        params->emplace_back(path[i]);
      } else if (p != path[i]) {
        return false;
      }
    }
    return true;
  }

  std::vector<Route> routes_;
};

}  // namespace quotum::http
