#include "tests/fuzz/fuzz_api.h"

#include <stdlib.h>

#include <boost/json/parse.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "quotum/core/billing_period.h"
#include "quotum/core/string_views.h"

namespace quotum::fuzz {
namespace {

namespace bhttp = boost::beast::http;

[[noreturn]] void Die(std::string_view what, std::string_view detail = {}) {
  std::fprintf(stderr, "fuzz: %.*s %.*s\n", static_cast<int>(what.size()), what.data(),
               static_cast<int>(detail.size()), detail.data());
  std::abort();
}

std::string ReadFile(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Die("cannot read", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool IsTokenChar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

}  // namespace

FuzzApi& FuzzApi::Get() {
  // Leaked on purpose: the writer thread may still run while static
  // destructors would; the temp dir goes at exit.
  static FuzzApi* const api = new FuzzApi();
  return *api;
}

FuzzApi::FuzzApi() : clock_(*ParseRfc3339("2026-11-23T12:00:00Z")) {
  // As in the server binary: lock-order checking costs more than the fuzzing.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  auto loaded = config::LoadString(ReadFile(QUOTUM_EXAMPLE_CONFIG), QUOTUM_EXAMPLE_CONFIG);
  if (!loaded.ok()) Die("config:", ToStd(loaded.status().message()));
  cfg_ = *loaded;
  std::string tmpl = (std::filesystem::temp_directory_path() / "quotum-fuzz-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) Die("mkdtemp failed");
  dir_ = tmpl;
  static std::string* const dir_at_exit = new std::string(dir_);
  std::atexit([] {
    std::error_code ec;
    std::filesystem::remove_all(*dir_at_exit, ec);
  });
  Start();
}

void FuzzApi::Start() {
  const std::string db_dir = absl::StrCat(dir_, "/", generation_++);
  std::filesystem::create_directories(db_dir);
  auto store = store::sqlite::SqliteStore::Open({db_dir + "/quotum.db", false});
  if (!store.ok()) Die("store:", ToStd(store.status().message()));
  store_ = std::move(*store);
  engine::EngineOptions o;
  o.catalog = &cfg_->catalog;
  o.idempotency_ttl = cfg_->idempotency_ttl;
  o.default_plan = cfg_->default_plan;
  o.rate_rules = cfg_->rate_rules;
  o.session_lease_ttl = cfg_->session_lease_ttl;
  engine_ = std::make_unique<engine::Engine>(o, store_.get(), &clock_);
  if (absl::Status s = engine_->Start(); !s.ok()) Die("engine:", ToStd(s.message()));
  api_ = std::make_unique<http::Api>(engine_.get(), http::Api::Options{std::string(kAdminKey)});

  std::promise<absl::StatusOr<engine::CreatedTenant>> created;
  engine_->CreateTenant(
      {std::string(kTenantId), "Fuzz Ltd", "", std::nullopt},
      [&created](absl::StatusOr<engine::CreatedTenant> r) { created.set_value(std::move(r)); });
  auto tenant = created.get_future().get();
  if (!tenant.ok()) Die("tenant:", ToStd(tenant.status().message()));
  tenant_key_ = tenant->key.secret;
  key_id_ = tenant->key.key_id;
}

void FuzzApi::Stop() {
  const std::string db_dir = absl::StrCat(dir_, "/", generation_ - 1);
  api_.reset();
  engine_.reset();
  store_.reset();
  std::error_code ec;
  std::filesystem::remove_all(db_dir, ec);
}

http::Reply FuzzApi::Call(const http::Request& req) {
  if (++calls_ % kResetEvery == 0) {
    Stop();
    Start();
  }
  clock_.Advance(absl::Seconds(1));
  // The reply may come from the store's writer thread (group commit).
  auto done = std::make_shared<std::promise<http::Reply>>();
  auto reply = done->get_future();
  api_->Handle(req, [done](http::Reply r) { done->set_value(std::move(r)); });
  if (reply.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    Die("no reply within 10 s for", std::string_view(req.target()));
  }
  http::Reply r = reply.get();
  CheckReply(r);
  static const bool trace = std::getenv("QUOTUM_FUZZ_TRACE") != nullptr;
  if (trace) {
    std::fprintf(stderr, "%s %s -> %u %s\n", std::string(req.method_string()).c_str(),
                 std::string(req.target()).c_str(), r.status, r.body.substr(0, 200).c_str());
  }
  return r;
}

http::Request FuzzApi::MakeRequest(bhttp::verb method, std::string_view target,
                                   std::string_view key, std::string_view body) const {
  http::Request req(method, target, 11);
  req.set(bhttp::field::host, "localhost");
  if (!key.empty()) req.set("X-API-Key", key);
  if (!body.empty()) {
    req.set(bhttp::field::content_type, "application/json");
    req.body() = std::string(body);
    req.prepare_payload();
  }
  return req;
}

void CheckReply(const http::Reply& r) {
  if (r.status < 100 || r.status > 599) Die("reply status out of range:", absl::StrCat(r.status));
  // Each header line is "Name: value\r\n": a CR or LF anywhere else would
  // let a request split the response.
  std::string_view h = r.headers;
  while (!h.empty()) {
    const size_t end = h.find("\r\n");
    if (end == std::string_view::npos) Die("header block not CRLF-terminated:", r.headers);
    std::string_view line = h.substr(0, end);
    h.remove_prefix(end + 2);
    const size_t colon = line.find(": ");
    if (colon == 0 || colon == std::string_view::npos) Die("malformed header line:", line);
    for (char c : line.substr(0, colon)) {
      if (!IsTokenChar(c)) Die("bad header name:", line);
    }
    for (char c : line.substr(colon + 2)) {
      if (c == '\r' || c == '\n' || c == '\0') Die("control character in header value:", line);
    }
  }
  if (r.content_type == "application/json") {
    // Boost.JSON rejects invalid UTF-8 in strings unless told otherwise.
    boost::json::parse_options opts;
    opts.allow_invalid_utf8 = false;
    opts.max_depth = 64;
    boost::system::error_code ec;
    boost::json::parse(r.body, ec, {}, opts);
    if (ec) Die("reply body is not valid JSON:", r.body);
  }
}

std::string ReplaceAll(std::string_view text, std::string_view token, std::string_view value) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  for (size_t hit; (hit = text.find(token, pos)) != std::string_view::npos;
       pos = hit + token.size()) {
    out.append(text.substr(pos, hit - pos)).append(value);
  }
  out.append(text.substr(pos));
  return out;
}

}  // namespace quotum::fuzz
