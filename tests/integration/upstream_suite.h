// A suite sharing one server whose [delivery] provider is "http", posting to
// an upstream the suite runs on loopback (tests/support/http_receiver.h), on
// the backend BackendArgs picks.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "harness.h"
#include "support/http_receiver.h"

namespace quotum::itest {

/// `Name` keeps each suite's server and upstream its own.
template <typename Name>
class UpstreamSuite : public ::testing::Test {
 protected:
  using Receiver = testing::Receiver;

  /// Starts the upstream, answering with `answer`, and the server; `delivery`
  /// holds more [delivery] lines (retries, give_back).
  static void StartWithUpstream(Receiver::Answer answer, const std::string& delivery) {
    upstream_ = new Receiver(std::move(answer));
    dir_ = new std::string(testing::MakeTempDir("quotum-upstream-"));
    server_ =
        StartServerWithToml(*dir_, absl::StrCat("[delivery]\nprovider = \"http\"\nurl = \"",
                                                upstream_->Url("/messages"), "\"\n", delivery))
            .release();
  }
  static void TearDownTestSuite() {
    EXPECT_EQ(server_->Stop(), 0);
    delete server_;
    delete dir_;
    delete upstream_;
  }
  testing::HttpClient Client() { return testing::HttpClient(server_->port()); }

  /// The upstream's requests for message `id`.
  static std::vector<Receiver::Request> RequestsFor(const std::string& id) {
    std::vector<Receiver::Request> out;
    for (const auto& r : upstream_->requests()) {
      if (std::string(r["Idempotency-Key"]) == id) out.push_back(r);
    }
    return out;
  }

  inline static Receiver* upstream_ = nullptr;
  inline static std::string* dir_ = nullptr;
  inline static testing::ServerProcess* server_ = nullptr;
};

}  // namespace quotum::itest
