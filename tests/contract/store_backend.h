#pragma once

// Value-parameterised tests over every engine::Store implementation: "sqlite"
// (a file in a temp dir) and "postgres" (an emptied database on a real
// PostgreSQL server that the suite starts on first need, as the postgres OS
// user when the test runs as root). A test FAILS, never skips, when the
// server cannot start (e.g. PostgreSQL is not installed:
// scripts/install-deps.sh).

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "quotum/engine/store.h"
#include "quotum/testing/postgres_server.h"

namespace quotum::contract {

class StoreBackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void TearDownTestSuite() { postgres_.reset(); }
  /// Prepares this test's empty place (derived fixtures call it first).
  void SetUp() override;
  /// Removes the SQLite temp dir (close the store before).
  void TearDown() override;

  bool is_postgres() const { return GetParam() == "postgres"; }
  /// Opens this test's store; again after closing it: the same data.
  absl::StatusOr<std::unique_ptr<engine::Store>> OpenStore() const;
  /// Runs `sql` directly on this test's database, behind the store's back
  /// (the backends share table and column names).
  absl::Status ExecSql(const std::string& sql) const;
  /// This test's PostgreSQL URL ("" for sqlite).
  const std::string& postgres_url() const { return url_; }

  /// The suite's server (started by the first postgres test of the suite).
  inline static std::unique_ptr<testing::PostgresServer> postgres_;

 private:
  std::string dir_;  // sqlite
  std::string url_;  // postgres
};

/// "sqlite", "postgres": the test name suffix.
inline std::string StoreName(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

}  // namespace quotum::contract

/// Runs every TEST_P of `suite` on each store.
#define QUOTUM_FOR_EVERY_STORE(suite)                                              \
  INSTANTIATE_TEST_SUITE_P(Stores, suite, ::testing::Values("sqlite", "postgres"), \
                           ::quotum::contract::StoreName)
