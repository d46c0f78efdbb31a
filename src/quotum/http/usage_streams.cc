#include "quotum/http/usage_streams.h"

#include <pthread.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "quotum/engine/errors.h"
#include "quotum/engine/tenant_state.h"

namespace quotum::http {
namespace {

absl::Status TooManyStreams(const std::string& why) {
  return engine::Error(absl::StatusCode::kResourceExhausted, "too_many_streams",
                       absl::StrCat(why, " Close one (or wait for it to end) and retry."));
}

}  // namespace

UsageStreams::UsageStreams(const Catalog* catalog, ReadUsage read, StreamLimits limits)
    : catalog_(catalog), read_(std::move(read)), limits_(limits) {}

UsageStreams::~UsageStreams() { Stop(); }

void UsageStreams::Stop() {
  EndAll();
  if (thread_.joinable()) thread_.join();
}

int UsageStreams::open() const {
  MutexLock lock(&mu_);
  return open_;
}

absl::StatusOr<std::shared_ptr<PushedBody>> UsageStreams::Open(const engine::Principal& who,
                                                               std::string last_event_id) {
  MutexLock lock(&mu_);
  if (stopping_) return engine::ShuttingDown();
  TenantStreams& t = tenants_[who.tenant->id];
  DropFinished(t);  // a client that left may come back at once
  const bool admin = who.key_id.empty();
  const auto same_kind = std::count_if(t.streams.begin(), t.streams.end(),
                                       [admin](const Stream& s) { return s.admin == admin; });
  const bool tenant_cap = same_kind >= limits_.per_tenant;
  if (tenant_cap || open_ >= limits_.total) {
    return TooManyStreams(tenant_cap ? absl::StrCat("This tenant already has ", limits_.per_tenant,
                                                    " usage streams open on this instance.")
                                     : absl::StrCat("This instance already has ", limits_.total,
                                                    " usage streams open."));
  }
  auto body = std::make_shared<PushedBody>();
  body->Push(kStreamPreamble);
  t.who = who;
  t.idle_since = absl::InfiniteFuture();
  t.streams.push_back(Stream{body, std::move(last_event_id), false, absl::Now(), admin});
  ++open_;
  newcomers_.insert(who.tenant->id);
  StartThread();
  wake_.Signal();
  return body;
}

void UsageStreams::DropFinished(TenantStreams& t) {
  const auto left = std::remove_if(t.streams.begin(), t.streams.end(), [](const Stream& s) {
    return s.body->finished() || s.body.use_count() == 1;
  });
  open_ -= static_cast<int>(t.streams.end() - left);
  t.streams.erase(left, t.streams.end());
  if (t.streams.empty() && t.idle_since == absl::InfiniteFuture()) t.idle_since = absl::Now();
}

void UsageStreams::StartThread() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "quotum-streams");
    Run();
  });
}

void UsageStreams::EndAll() {
  MutexLock lock(&mu_);
  stopping_ = true;
  for (auto& [id, t] : tenants_) {
    for (Stream& s : t.streams) s.body->End();
  }
  tenants_.clear();
  open_ = 0;
  wake_.SignalAll();
}

void UsageStreams::Run() {
  absl::Time next_tick = absl::Now() + limits_.tick;
  for (;;) {
    absl::flat_hash_set<std::string> newcomers;
    bool due = false;
    {
      MutexLock lock(&mu_);
      while (!stopping_ && newcomers_.empty() && absl::Now() < next_tick) {
        wake_.WaitWithTimeout(&mu_, next_tick - absl::Now());
      }
      if (stopping_) return;
      due = absl::Now() >= next_tick;
      newcomers.swap(newcomers_);
    }
    if (due) next_tick = absl::Now() + limits_.tick;
    Tick(due ? nullptr : &newcomers);
  }
}

void UsageStreams::Tick(const absl::flat_hash_set<std::string>* only) {
  std::vector<std::pair<std::string, engine::Principal>> todo;
  {
    MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    todo.reserve(tenants_.size());
    for (auto it = tenants_.begin(); it != tenants_.end();) {
      if (only && !only->contains(it->first)) {
        ++it;
        continue;
      }
      if (!it->second.streams.empty()) {
        todo.emplace_back(it->first, it->second.who);
      } else if (now - it->second.idle_since > kKeepIdle) {
        tenants_.erase(it++);
        continue;
      }
      ++it;
    }
  }
  for (const auto& [id, who] : todo) {
    // The read may wait on the shared ledger: no lock is held across it.
    absl::StatusOr<engine::UsageView> usage = read_(who);
    absl::StatusOr<StreamSnapshot> now =
        usage.ok() ? absl::StatusOr<StreamSnapshot>(SnapshotOf(*catalog_, *usage)) : usage.status();
    MutexLock lock(&mu_);
    auto it = tenants_.find(id);
    if (it != tenants_.end()) Serve(it->second, now, absl::Now());
  }
}

std::string UsageStreams::FirstEvent(const TenantStreams& t, const StreamSnapshot& now,
                                     std::string_view last_event_id) {
  for (const StreamSnapshot& before : t.recent) {
    if (before.id == last_event_id) return ChangeEvent(before, now);
  }
  return FullEvent(now);
}

void UsageStreams::Serve(TenantStreams& t, const absl::StatusOr<StreamSnapshot>& now,
                         absl::Time at) {
  const bool changed = now.ok() && (t.recent.empty() || t.recent.back().id != now->id);
  const std::string change = changed && !t.recent.empty() ? ChangeEvent(t.recent.back(), *now) : "";
  for (Stream& s : t.streams) {
    std::string first;
    std::string_view piece;
    if (!s.started && now.ok()) {
      s.started = true;
      first = FirstEvent(t, *now, s.last_event_id);
      piece = first;
    } else if (s.started) {
      piece = change;
    }
    if (piece.empty() && at - s.last_write >= limits_.heartbeat) piece = kHeartbeat;
    if (piece.empty()) continue;
    if (s.body->Push(piece)) s.last_write = at;
  }
  if (changed) {
    t.recent.push_back(*now);
    if (t.recent.size() > kRecentStates) t.recent.pop_front();
  }
  DropFinished(t);
}

}  // namespace quotum::http
