#include "quotum/engine/message_releaser.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "quotum/engine/engine.h"

namespace quotum::engine {
namespace {

std::string SessionKey(const MessageRecord& m) {
  return absl::StrCat(m.tenant_id, "/", m.session_id);
}

}  // namespace

MessageReleaser::MessageReleaser(Store* store, Engine* engine, const Clock* clock,
                                 ReleaserOptions options)
    : store_(store), engine_(engine), clock_(clock), opts_(std::move(options)) {}

MessageReleaser::~MessageReleaser() { Stop(); }

void MessageReleaser::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void MessageReleaser::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  wake_.Signal();
  if (thread_.joinable()) thread_.join();
}

void MessageReleaser::Wake(const std::string& tenant_id) {
  {
    MutexLock lock(&mu_);
    woken_tenants_.push_back(tenant_id);
    woken_ = true;
  }
  wake_.Signal();
}

void MessageReleaser::Loop() {
  bool busy = false;
  for (;;) {
    {
      MutexLock lock(&mu_);
      if (!stop_ && !busy && !woken_) wake_.WaitWithTimeout(&mu_, opts_.every);
      if (stop_) return;
    }
    absl::StatusOr<Round> round = RunRound();
    busy = round.ok() && round->more;
    if (!round.ok()) {
      // Tried again next round (the store or the ledger away).
      std::cerr << "quotum: message releaser: " << round.status().message() << std::endl;
    }
  }
}

absl::StatusOr<size_t> MessageReleaser::RunOnce() {
  absl::StatusOr<Round> r = RunRound();
  if (!r.ok()) return r.status();
  return r->released;
}

bool MessageReleaser::Stopping() const {
  MutexLock lock(&mu_);
  return stop_;
}

// An error that says nothing of the message: the store or the ledger is
// away, or the engine is stopping.
static bool Transient(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnavailable || s.code() == absl::StatusCode::kInternal ||
         s.code() == absl::StatusCode::kDeadlineExceeded ||
         s.code() == absl::StatusCode::kResourceExhausted;
}

static bool WaitsAt(const absl::flat_hash_map<std::string, absl::Time>& waits,
                    const std::string& key, absl::Time now) {
  auto it = waits.find(key);
  return it != waits.end() && it->second > now;
}

bool MessageReleaser::Waits(const MessageRecord& m, absl::Time now) const {
  if (WaitsAt(session_waits_, SessionKey(m), now)) return true;
  if (m.status == "released") return HandOffWaits(m, now);
  return WaitsAt(tenant_waits_, m.tenant_id, now);
}

bool MessageReleaser::HandOffWaits(const MessageRecord& m, absl::Time now) const {
  return WaitsAt(handoff_waits_, SessionKey(m), now);
}

void MessageReleaser::Note(const MessageRecord& m, const ReleaseOutcome& r, absl::Time now) {
  const absl::Duration retry = std::max(r.retry, absl::Milliseconds(1));
  switch (r.kind) {
    case ReleaseOutcome::Kind::kNoCapacity:
      tenant_waits_[m.tenant_id] = now + opts_.recheck;
      break;
    case ReleaseOutcome::Kind::kSessionWaits:
      session_waits_[SessionKey(m)] = now + retry;
      break;
    case ReleaseOutcome::Kind::kHandOffPaced:
      handoff_waits_[SessionKey(m)] = now + retry;
      break;
    default:
      break;
  }
}

absl::StatusOr<MessageReleaser::Round> MessageReleaser::RunRound() {
  {
    MutexLock lock(&mu_);
    for (const std::string& t : woken_tenants_) tenant_waits_.erase(t);
    woken_tenants_.clear();
    woken_ = false;
  }
  absl::StatusOr<bool> held =
      store_->HoldLease("message-queue", opts_.instance_name, opts_.lease_ttl);
  if (!held.ok()) return held.status();
  if (!*held) return Round{};
  const absl::Time now = clock_->Now();
  Round round;
  std::optional<DuePosition> after;
  // A full page of waiting messages (tenants at their limit, sessions at
  // their cap) must not hide the ones behind it: read on, a few pages a round.
  for (int page = 0; page < kPagesPerRound; ++page) {
    absl::StatusOr<Page> p = RunPage(now, after, round);
    if (!p.ok()) return p.status();
    if (p->stopped || p->size < opts_.batch) break;
    if (p->moved > 0) {
      round.more = true;  // read the window again from its start
      break;
    }
    after = p->last;
  }
  // Forget waits that are over, so the maps hold only the waiting.
  for (auto* waits : {&tenant_waits_, &session_waits_, &handoff_waits_}) {
    absl::erase_if(*waits, [&](const auto& e) { return e.second <= now; });
  }
  return round;
}

absl::StatusOr<MessageReleaser::Page> MessageReleaser::RunPage(
    absl::Time now, const std::optional<DuePosition>& after, Round& round) {
  absl::StatusOr<std::vector<MessageRecord>> due =
      store_->DueMessages(now, now - opts_.stale_after, opts_.per_session, opts_.batch, after);
  if (!due.ok()) return due.status();
  Page page;
  page.size = due->size();
  if (!due->empty()) {
    const MessageRecord& last = due->back();
    page.last = DuePosition{last.due_at.value_or(absl::UnixEpoch()), last.seq, last.id};
  }
  absl::StatusOr<bool> held;
  for (const MessageRecord& m : *due) {
    if (Stopping()) {
      page.stopped = true;
      break;
    }
    const absl::Time at = clock_->Now();
    if (Waits(m, at)) continue;
    // Hand-offs take time (up to the provider's timeout each): keep the
    // lease, or stop and leave the rest to its new holder.
    held = store_->HoldLease("message-queue", opts_.instance_name, opts_.lease_ttl);
    if (!held.ok()) return held.status();
    if (!*held) {
      page.stopped = true;
      break;
    }
    absl::StatusOr<ReleaseOutcome> r = engine_->ReleaseMessage(m, !HandOffWaits(m, at));
    if (!r.ok() && Transient(r.status())) return r.status();  // the store or ledger away
    if (!r.ok()) {
      // This message's own trouble (its channel left the catalog, ...):
      // it fails, and holds up no other.
      std::cerr << "quotum: message releaser: " << m.id << ": " << r.status().message()
                << std::endl;
      r = engine_->FailMessage(m, r.status());
      if (!r.ok()) return r.status();
    }
    if (r->kind == ReleaseOutcome::Kind::kSent) ++round.released;
    if (r->kind == ReleaseOutcome::Kind::kSent || r->kind == ReleaseOutcome::Kind::kReleased) {
      ++page.moved;
    }
    Note(m, *r, at);
  }
  return page;
}

}  // namespace quotum::engine
