#pragma once

#include <boost/beast/http/verb.hpp>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
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
/// A parameter never matches a word that is a literal at the same place in
/// another route (or reserved with Reserve): `/messages/bulk` is not message
/// "bulk". HEAD is served by the GET route of a path.
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
    for (size_t i = 0; i < segments.size(); ++i) {
      if (!IsParam(segments[i])) reserved_.insert(ReservedKey(segments, i, segments[i]));
    }
    routes_.push_back(Route{method, std::move(segments), access, std::move(handler),
                            std::string(pattern), routes_.size()});
  }

  /// Keeps `word` from matching a parameter right after the literal `prefix`
  /// (a sub-resource that has no route yet answers 404, not 405).
  void Reserve(std::string_view prefix, std::initializer_list<std::string_view> words) {
    std::vector<std::string> segments;
    for (std::string_view seg : Split(prefix)) segments.emplace_back(seg);
    for (std::string_view w : words) reserved_.insert(ReservedKey(segments, segments.size(), w));
  }

  Match Find(boost::beast::http::verb method, std::string_view path) const {
    using boost::beast::http::verb;
    if (method == verb::head) method = verb::get;
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
      if (r.method == verb::get) m.allow += ", HEAD";
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

  static bool IsParam(std::string_view seg) {
    return seg.size() > 2 && seg.front() == '{' && seg.back() == '}';
  }

  // "<pattern segments before i>/<word>", the key of a literal at position i.
  static std::string ReservedKey(const std::vector<std::string>& pattern, size_t i,
                                 std::string_view word) {
    std::string key;
    for (size_t j = 0; j < i && j < pattern.size(); ++j) key.append(pattern[j]).push_back('/');
    key.append(word);
    return key;
  }

  bool SegmentsMatch(const std::vector<std::string>& pattern, const Segments& path,
                     std::vector<std::string>* params) const {
    if (pattern.size() != path.size()) return false;
    for (size_t i = 0; i < pattern.size(); ++i) {
      if (!IsParam(pattern[i]) && pattern[i] != path[i]) return false;
    }
    for (size_t i = 0; i < pattern.size(); ++i) {
      if (!IsParam(pattern[i])) continue;
      if (reserved_.contains(ReservedKey(pattern, i, path[i]))) return false;
      params->emplace_back(path[i]);
    }
    return true;
  }

  std::vector<Route> routes_;
  absl::flat_hash_set<std::string> reserved_;
};

}  // namespace quotum::http
