#pragma once

#include <boost/json/value.hpp>
#include <map>
#include <memory>
#include <string>

namespace quotum::testing {

struct HttpResponse {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  ///< names lower-cased
  /// The body parsed as JSON (null if it is not JSON).
  boost::json::value json() const;
  std::string header(const std::string& name) const;
};

/// A blocking HTTP/1.1 keep-alive client for tests (reconnects when needed:
/// once per request, after a failure on a kept-alive connection).
class HttpClient {
 public:
  explicit HttpClient(int port);
  ~HttpClient();

  HttpResponse Send(const std::string& method, const std::string& target,
                    const std::string& body = "",
                    const std::map<std::string, std::string>& headers = {});
  HttpResponse Get(const std::string& target, const std::map<std::string, std::string>& h = {}) {
    return Send("GET", target, "", h);
  }
  HttpResponse Post(const std::string& target, const std::string& body,
                    const std::map<std::string, std::string>& h = {}) {
    return Send("POST", target, body, h);
  }
  /// How many TCP connections this client has opened so far.
  int connections() const;
  /// The port it talks to.
  int port() const { return port_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace quotum::testing
