#include "quotum/engine/facts_drain.h"

#include <pthread.h>

#include <algorithm>
#include <iostream>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace quotum::engine {
namespace {

// Streams named in one read.
constexpr size_t kTenantsPerRead = 256;
// Reads of one chunk per round: a tenant with more waiting is read again on
// the next round.
constexpr int kReadsPerChunk = 8;

}  // namespace

FactsDrain::FactsDrain(FactsStream* stream, FactsDrainStore store, FactsDrainOptions options,
                       EngineStats* stats)
    : stream_(stream), store_(std::move(store)), opts_(options), stats_(stats) {}

FactsDrain::~FactsDrain() { Stop(); }

void FactsDrain::Start() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "quotum-drain");
    Loop();
  });
}

void FactsDrain::Stop() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  wake_.Signal();
  if (thread_.joinable()) thread_.join();
}

void FactsDrain::Notify(absl::string_view tenant_id) {
  MutexLock lock(&mu_);
  notified_.emplace(tenant_id);
}

void FactsDrain::Loop() {
  absl::Time next_sweep = absl::Now();
  for (bool last = false; !last;) {
    {
      MutexLock lock(&mu_);
      if (!stopping_) wake_.WaitWithTimeout(&mu_, opts_.tick);
      last = stopping_;
    }
    const bool sweep = !last && absl::Now() >= next_sweep;
    if (sweep) next_sweep = absl::Now() + opts_.sweep_every;
    absl::StatusOr<size_t> applied = RunOnce(sweep);
    if (!applied.ok()) stats_->facts_drain_failures.Add({});
  }
}

absl::StatusOr<size_t> FactsDrain::RunOnce(bool sweep) {
  size_t applied = 0;
  if (!unapplied_.empty()) {
    absl::StatusOr<size_t> retried = Apply(std::exchange(unapplied_, {}));
    if (!retried.ok()) return retried.status();
    applied += *retried;
  }
  std::vector<std::string> tenants;
  {
    MutexLock lock(&mu_);
    tenants.assign(notified_.begin(), notified_.end());
    notified_.clear();
  }
  if (sweep) {
    absl::StatusOr<bool> leading = store_.lead_sweep();
    if (!leading.ok()) return leading.status();
    sweep = *leading;
  }
  if (sweep) {
    absl::StatusOr<std::vector<std::string>> all = store_.tenant_ids();
    if (!all.ok()) return all.status();
    tenants = std::move(*all);
    absl::StatusOr<size_t> stale = DrainStale(tenants);
    if (!stale.ok()) return stale.status();
    applied += *stale;
    stats_->facts_sweeps.Add({});
    if (store_.reconcile) {
      // Before reading new entries: a reconciled charge appends one.
      if (absl::StatusOr<size_t> r = store_.reconcile(); !r.ok()) return r.status();
    }
  }
  absl::StatusOr<size_t> fresh = DrainNew(tenants);
  if (!fresh.ok()) {
    // Read them again next round: their entries wait in the stream.
    MutexLock lock(&mu_);
    notified_.insert(tenants.begin(), tenants.end());
    return fresh.status();
  }
  return applied + *fresh;
}

absl::StatusOr<size_t> FactsDrain::DrainNew(const std::vector<std::string>& tenants) {
  size_t applied = 0;
  for (size_t from = 0; from < tenants.size(); from += kTenantsPerRead) {
    const size_t n = std::min(kTenantsPerRead, tenants.size() - from);
    const std::span<const std::string> chunk(tenants.data() + from, n);
    for (int read = 0; read < kReadsPerChunk; ++read) {
      absl::StatusOr<std::vector<FactsEntry>> entries = stream_->ReadNew(chunk, opts_.max_entries);
      if (!entries.ok()) return entries.status();
      const bool more = entries->size() >= opts_.max_entries;
      absl::StatusOr<size_t> done = Apply(std::move(*entries));
      if (!done.ok()) return done.status();
      applied += *done;
      if (!more) break;
      if (read + 1 == kReadsPerChunk) {
        MutexLock lock(&mu_);
        notified_.insert(chunk.begin(), chunk.end());
      }
    }
  }
  return applied;
}

absl::StatusOr<size_t> FactsDrain::DrainStale(const std::vector<std::string>& tenants) {
  size_t applied = 0;
  for (const std::string& tenant : tenants) {
    absl::StatusOr<std::vector<FactsEntry>> entries =
        stream_->ClaimStale(tenant, opts_.claim_after, opts_.max_entries);
    if (!entries.ok()) return entries.status();
    absl::StatusOr<size_t> done = Apply(std::move(*entries));
    if (!done.ok()) return done.status();
    applied += *done;
  }
  return applied;
}

absl::StatusOr<size_t> FactsDrain::Apply(std::vector<FactsEntry> entries) {
  size_t applied = 0;
  while (!entries.empty()) {
    const size_t cut = RunLength(entries);
    std::vector<FactsEntry> rest(std::make_move_iterator(entries.begin() + cut),
                                 std::make_move_iterator(entries.end()));
    entries.resize(cut);
    absl::StatusOr<size_t> done = ApplyRun(std::move(entries));
    if (!done.ok()) {
      // Retried next round, after what ApplyRun left unapplied.
      unapplied_.insert(unapplied_.end(), std::make_move_iterator(rest.begin()),
                        std::make_move_iterator(rest.end()));
      return done.status();
    }
    applied += *done;
    entries = std::move(rest);
  }
  return applied;
}

size_t FactsDrain::RunLength(const std::vector<FactsEntry>& entries) {
  absl::flat_hash_set<std::string> subjects;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!entries[i].lease) continue;
    if (!subjects.insert(absl::StrCat(entries[i].tenant_id, "/", entries[i].lease->Subject()))
             .second) {
      return i;
    }
  }
  return entries.size();
}

absl::StatusOr<size_t> FactsDrain::ApplyRun(std::vector<FactsEntry> entries) {
  if (entries.empty()) return 0;
  CommitBatch batch;
  for (const FactsEntry& e : entries) {
    AppendRows(e, batch);
    batch.applied_entries.push_back(e.Id());
  }
  const absl::Status s = store_.commit_alone(std::move(batch));
  if (s.code() == absl::StatusCode::kAlreadyExists) return ApplyOneByOne(std::move(entries));
  if (!s.ok()) {
    unapplied_ = std::move(entries);
    return s;
  }
  if (absl::Status acked = stream_->Acknowledge(entries); !acked.ok()) {
    // Applied: whoever takes them over finds them applied and acknowledges.
    return acked;
  }
  stats_->facts_applied.Add({}, entries.size());
  return entries.size();
}

absl::StatusOr<size_t> FactsDrain::ApplyOneByOne(std::vector<FactsEntry> entries) {
  size_t applied = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    CommitBatch batch;
    AppendRows(entries[i], batch);
    batch.applied_entries.push_back(entries[i].Id());
    const absl::Status s = store_.commit_alone(std::move(batch));
    if (!s.ok() && s.code() != absl::StatusCode::kAlreadyExists) {
      unapplied_.assign(std::make_move_iterator(entries.begin() + i),
                        std::make_move_iterator(entries.end()));
      return s;
    }
    if (absl::Status acked = stream_->Acknowledge({&entries[i], 1}); !acked.ok()) return acked;
    if (s.ok()) {
      stats_->facts_applied.Add({});
      ++applied;
    }
  }
  return applied;
}

}  // namespace quotum::engine
