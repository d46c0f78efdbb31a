// Messaging tiers (SPEC §1 "messaging tier", §2 "Messaging tiers"): a
// session's cap on the unique recipients it messages over a rolling 24
// hours, and how that cap steps up. Pure: instants (Unix milliseconds) and
// counts in, numbers out; both ledgers (memory, decide.lua) follow it.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace quotum {

/// A recipient counts while the session messaged it within this window.
inline constexpr int64_t kTierWindowMs = 24LL * 3600 * 1000;
/// A tier steps up once at least half of it was used within this window.
inline constexpr int64_t kTierEvaluationMs = 7 * kTierWindowMs;

/// A plan's messaging tiers (opt-in: a plan without a policy has none).
struct TierPolicy {
  /// Unique recipients per rolling 24 h at each level; past the last, unlimited.
  std::vector<uint64_t> steps{250, 1000, 10000, 100000};
  /// Channels whose sends count (by name).
  std::vector<std::string> channels{"whatsapp"};
  /// Message types whose sends count (index: MessageType); all by default.
  std::array<bool, 3> types{true, true, true};
  /// How long after qualifying the step up takes effect.
  absl::Duration step_up_delay = absl::Hours(6);
};

/// Where a session stands: its level (an index into steps; steps.size() is
/// unlimited), since when, and when it qualified for the next step (0: not).
struct TierLevel {
  uint32_t level = 0;
  int64_t since_ms = 0;
  int64_t qualified_ms = 0;
  friend bool operator==(const TierLevel&, const TierLevel&) = default;
};

/// The cap at `level`; nullopt past the last step (unlimited).
std::optional<uint64_t> TierLimitAt(const TierPolicy& policy, uint32_t level);

/// Unique recipients over 7 days that qualify a tier of `limit` for the next
/// step: half of it, rounded up.
uint64_t StepUpThreshold(uint64_t limit);

/// Applies the step ups due at `now_ms`: while qualified and the delay has
/// passed, the level rises (since = qualified + delay), and the new level is
/// qualified at once (at its since) if `unique_7d` already reaches its
/// threshold. True when the level changed.
bool AdvanceTier(const TierPolicy& policy, uint64_t unique_7d, int64_t now_ms, TierLevel& t);

/// Marks `t` qualified at `now_ms` when it is not yet, has a next step, and
/// `unique_7d` reaches its threshold. True when it changed.
bool MarkQualified(const TierPolicy& policy, uint64_t unique_7d, int64_t now_ms, TierLevel& t);

/// What a session's tier looks like at an instant (GET sessions).
struct TierView {
  uint32_t level = 0;
  std::optional<uint64_t> limit;  ///< nullopt: unlimited
  uint64_t used_24h = 0;          ///< unique recipients counted now
  uint64_t unique_7d = 0;
  /// The next step's cap (nullopt: unlimited, or no next step), the unique
  /// recipients over 7 days still needed to qualify for it (0 once
  /// qualified), and when it takes effect once qualified.
  bool has_next = false;
  std::optional<uint64_t> next_limit;
  uint64_t needed = 0;
  std::optional<int64_t> next_at_ms;
};

/// The view of `t` (with due step ups applied) given the counts at `now_ms`.
TierView ViewTier(const TierPolicy& policy, TierLevel t, uint64_t used_24h, uint64_t unique_7d,
                  int64_t now_ms);

}  // namespace quotum
