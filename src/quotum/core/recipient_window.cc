#include "quotum/core/recipient_window.h"

#include "quotum/core/messaging_tier.h"

namespace quotum {

int64_t RecipientWindow::Advance(int64_t now_ms) {
  if (now_ms <= now_ms_) return now_ms_;
  now_ms_ = now_ms;
  const int64_t day_edge = now_ms - kTierWindowMs;
  const int64_t week_edge = now_ms - kTierEvaluationMs;
  while (!recent_.empty() && recent_.begin()->first <= day_edge) {
    const Entry e = *recent_.begin();
    recent_.erase(recent_.begin());
    older_.insert(e);
  }
  while (!older_.empty() && older_.begin()->first <= week_edge) {
    const std::string* name = older_.begin()->second;
    older_.erase(older_.begin());
    last_.erase(*name);
  }
  return now_ms_;
}

std::optional<int64_t> RecipientWindow::LastSent(absl::string_view recipient) const {
  auto it = last_.find(recipient);
  if (it == last_.end()) return std::nullopt;
  return it->second.at;
}

bool RecipientWindow::Counted(absl::string_view recipient) const {
  const std::optional<int64_t> last = LastSent(recipient);
  return last && *last > now_ms_ - kTierWindowMs;
}

void RecipientWindow::File(int64_t at, const std::string* name) {
  if (at > now_ms_ - kTierWindowMs) {
    recent_.insert({at, name});
  } else {
    older_.insert({at, name});
  }
}

void RecipientWindow::Unfile(int64_t at, const std::string* name) {
  if (recent_.erase({at, name}) == 0) older_.erase({at, name});
}

uint64_t RecipientWindow::Record(absl::string_view recipient) {
  const uint64_t record = ++records_;
  auto [it, fresh] = last_.try_emplace(std::string(recipient), Last{now_ms_, record});
  if (!fresh) {
    Unfile(it->second.at, &it->first);
    it->second = Last{now_ms_, record};
  }
  File(now_ms_, &it->first);
  return record;
}

void RecipientWindow::Restore(absl::string_view recipient, uint64_t record,
                              std::optional<int64_t> previous) {
  auto it = last_.find(recipient);
  if (it == last_.end() || it->second.record != record) return;
  Unfile(it->second.at, &it->first);
  if (!previous || *previous <= now_ms_ - kTierEvaluationMs) {
    last_.erase(it);
    return;
  }
  it->second = Last{*previous, 0};
  File(*previous, &it->first);
}

std::pair<uint64_t, uint64_t> RecipientWindow::CountsAt(int64_t now_ms) const {
  const int64_t day_edge = now_ms - kTierWindowMs;
  const int64_t week_edge = now_ms - kTierEvaluationMs;
  uint64_t left_day = 0, left_week = 0;
  for (auto it = recent_.begin(); it != recent_.end() && it->first <= day_edge; ++it) {
    ++left_day;
    if (it->first <= week_edge) ++left_week;
  }
  for (auto it = older_.begin(); it != older_.end() && it->first <= week_edge; ++it) ++left_week;
  return {recent_.size() - left_day, unique_7d() - left_week};
}

std::optional<int64_t> RecipientWindow::OldestCounted() const {
  if (recent_.empty()) return std::nullopt;
  return recent_.begin()->first;
}

}  // namespace quotum
