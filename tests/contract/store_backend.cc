#include "store_backend.h"

#include <filesystem>
#include <system_error>

#include "quotum/store/postgres/pg_connection.h"
#include "quotum/store/postgres/pg_store.h"
#include "quotum/store/sqlite/db.h"
#include "quotum/store/sqlite/sqlite_store.h"
#include "quotum/testing/server_process.h"

namespace quotum::contract {

void StoreBackendTest::SetUp() {
  if (!is_postgres()) {
    dir_ = testing::MakeTempDir("quotum-store-");
    ASSERT_FALSE(dir_.empty());
    return;
  }
  if (!postgres_) {
    postgres_ = std::make_unique<testing::PostgresServer>();
    ASSERT_TRUE(postgres_->Start()) << postgres_->error();
  }
  ASSERT_TRUE(postgres_->running()) << "the suite's postgres did not start: " << postgres_->error();
  // The suite's tests take turns on the server's "quotum" database.
  ASSERT_TRUE(postgres_->ResetDatabase("quotum")) << postgres_->error();
  url_ = postgres_->url();
}

void StoreBackendTest::TearDown() {
  if (dir_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

absl::StatusOr<std::unique_ptr<engine::Store>> StoreBackendTest::OpenStore() const {
  if (is_postgres()) {
    auto store = store::postgres::PgStore::Open({url_});
    if (!store.ok()) return store.status();
    return std::unique_ptr<engine::Store>(std::move(*store));
  }
  auto store = store::sqlite::SqliteStore::Open({dir_ + "/q.db", false});
  if (!store.ok()) return store.status();
  return std::unique_ptr<engine::Store>(std::move(*store));
}

absl::Status StoreBackendTest::ExecSql(const std::string& sql) const {
  if (is_postgres()) {
    auto conn = store::postgres::PgConnection::Connect(url_, absl::Seconds(5));
    if (!conn.ok()) return conn.status();
    return (*conn)->Exec(sql).status();
  }
  auto db = store::sqlite::Db::Open(dir_ + "/q.db");
  if (!db.ok()) return db.status();
  return (*db)->Exec(sql);
}

}  // namespace quotum::contract
