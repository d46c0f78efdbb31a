#pragma once

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "quotum/testing/postgres_server.h"

namespace quotum::contract {

/// A test suite sharing one real PostgreSQL server (started once per suite,
/// as the postgres OS user when the test runs as root); each test starts on
/// an emptied "quotum" database (server_->url()). A test FAILS, never skips,
/// when the server could not start (e.g. PostgreSQL is not installed:
/// scripts/install-deps.sh). Derived fixtures that override SetUp call this
/// one first.
class PostgresSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = std::make_unique<testing::PostgresServer>();
    start_error_ = server_->Start() ? "" : server_->error();
  }
  static void TearDownTestSuite() { server_.reset(); }
  void SetUp() override {
    ASSERT_TRUE(start_error_.empty()) << start_error_;
    ASSERT_TRUE(server_->ResetDatabase("quotum")) << server_->error();
  }

  inline static std::unique_ptr<testing::PostgresServer> server_;
  inline static std::string start_error_;
};

}  // namespace quotum::contract
