// Shared set-up for the fuzzers that drive the HTTP API: the server's real
// Api over a real Engine and SQLite store, as apps/quotum/main.cc wires them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "quotum/config/config.h"
#include "quotum/core/clock.h"
#include "quotum/engine/engine.h"
#include "quotum/http/api.h"
#include "quotum/http/reply.h"
#include "quotum/http/server.h"
#include "quotum/store/sqlite/sqlite_store.h"

namespace quotum::fuzz {

/// The fixed admin key of every FuzzApi.
inline constexpr std::string_view kAdminKey = "fuzz-admin-key";
/// The tenant created at start-up (plan "starter", as on a default install).
inline constexpr std::string_view kTenantId = "fuzz";
/// In raw request bytes, replaced by the tenant's API key and key id before
/// parsing, so that committed seeds can authenticate.
inline constexpr std::string_view kTenantKeyToken = "@TENANT_KEY@";
inline constexpr std::string_view kKeyIdToken = "@KEY_ID@";

/// One process-wide API stack: examples/quotum.toml, a SQLite store in a temp
/// dir (removed at exit), a fake clock and one tenant. State carries over from
/// one input to the next, as in a running server; every kResetEvery calls the
/// store, engine and API are rebuilt from empty so that it stays bounded.
/// Not thread-safe: one fuzzing thread calls it.
class FuzzApi {
 public:
  static constexpr uint64_t kResetEvery = 20000;

  /// The process's instance, created on first use (aborts if set-up fails).
  static FuzzApi& Get();

  /// Runs `req` through Api::Handle as the server does and waits (at most
  /// 10 s, else aborts: a lost reply is a finding) for its reply, which
  /// CheckReply has checked. Advances the clock by one second first. With
  /// QUOTUM_FUZZ_TRACE set, prints each request line and reply to stderr.
  http::Reply Call(const http::Request& req);

  /// A request for `target` carrying `key` (X-API-Key unless empty) and `body`.
  http::Request MakeRequest(boost::beast::http::verb method, std::string_view target,
                            std::string_view key, std::string_view body) const;

  const std::string& tenant_key() const { return tenant_key_; }
  const std::string& key_id() const { return key_id_; }

 private:
  FuzzApi();
  void Start();
  void Stop();

  std::string dir_;
  std::shared_ptr<const config::Config> cfg_;
  FakeClock clock_;
  std::unique_ptr<store::sqlite::SqliteStore> store_;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<http::Api> api_;
  std::string tenant_key_;
  std::string key_id_;
  uint64_t calls_ = 0;
  uint64_t generation_ = 0;
};

/// Aborts (with the reason on stderr) unless `r` is a well-formed reply: status
/// 100-599, header lines "Name: value\r\n" without stray CR/LF, and a JSON body
/// (when the content type says so) that is valid UTF-8 and parses.
void CheckReply(const http::Reply& r);

/// Replaces every `token` in `text` by `value`.
std::string ReplaceAll(std::string_view text, std::string_view token, std::string_view value);

}  // namespace quotum::fuzz
