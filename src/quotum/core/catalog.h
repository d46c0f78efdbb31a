#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "quotum/core/billing_period.h"
#include "quotum/core/messaging_tier.h"

namespace quotum {

/// Dense index of a meter inside a Catalog; hot state is kept in arrays by it.
using MeterId = uint16_t;

enum class MeterKind { kCounter, kGauge };

/// Something counted. Counters accumulate per billing period; gauges are
/// concurrent values that never reset.
struct MeterDef {
  std::string name;
  MeterKind kind = MeterKind::kCounter;
  /// False for meters that are only tracked and can never carry a limit
  /// (messages_received: receiving is free).
  bool limitable = true;
  /// Counted by the server itself (api_calls): clients may not report it.
  bool reported_by_server = false;
};

/// What happens to units that do not fit under a limit.
enum class OnLimit {
  kReject,  ///< refuse them (HTTP 429)
  kAllow,   ///< admit them anyway and flag the overage (soft limit)
  /// Sends only (messages_sent, credits): refused by the decision like
  /// kReject, then held in the tenant's message queue (HTTP 202) and sent
  /// when capacity appears.
  kQueue,
};

absl::string_view OnLimitName(OnLimit p);

/// Usage-percentage thresholds at which the colour band changes.
struct ColourBands {
  double yellow = 70.0;  ///< from this percentage the band is yellow
  double red = 90.0;     ///< from this percentage the band is red
};

enum class Band { kGreen, kYellow, kRed };
absl::string_view BandName(Band b);
Band BandFor(double percentage, const ColourBands& bands);

/// Short-window request limits of a rate-limit profile (per minute / hour).
struct RateLimitProfile {
  std::string name;
  uint32_t general = 100;  ///< requests per minute per API key
  uint32_t messages = 30;  ///< messages per minute per session
  uint32_t sessions = 10;  ///< session creations per hour per API key
};

/// A named tier. Limits are per meter; a meter without an entry is unlimited.
struct Plan {
  std::string name;
  std::string display_name;
  int64_t price_cents = 0;  ///< per billing interval; -1 = custom (priced by contract)
  BillingInterval interval;
  /// Limit per MeterId; std::nullopt = unlimited.
  std::vector<std::optional<uint64_t>> limits;
  /// Policy per MeterId.
  std::vector<OnLimit> on_limit;
  std::vector<int> alert_thresholds{80, 90, 100};
  ColourBands bands;
  std::string rate_limit_profile;
  /// Daily send caps per session by day since it first became working;
  /// empty = warm-up off.
  std::vector<uint64_t> warmup;
  /// Per MeterId: the meter's limit is in shadow mode (decide, record, never deny).
  std::vector<bool> shadow;
  /// The warm-up cap is in shadow mode.
  bool warmup_shadow = false;
  /// Messaging tiers (opt-in): nullopt = the plan caps no unique recipients.
  std::optional<TierPolicy> messaging_tiers;
};

/// One purchasable pack of a counter meter: a recurring add-on, or a one-off
/// top-up (same shape).
struct AddonPack {
  std::string meter;
  uint64_t units = 0;
  int64_t price_cents = 0;
};

/// The kinds of message a send is priced by, in credits (SPEC §1 "credits").
enum class MessageType : uint8_t { kText = 0, kMedia = 1, kTemplate = 2 };
inline constexpr size_t kMessageTypeCount = 3;
/// "text", "media", "template".
absl::string_view MessageTypeName(MessageType t);
/// The type named `name`; nullopt for any other name.
std::optional<MessageType> ParseMessageType(absl::string_view name);

/// Credits one message costs, per message type (index: MessageType).
using CreditCosts = std::array<uint64_t, kMessageTypeCount>;
/// What a channel's messages cost when the configuration does not say.
inline constexpr CreditCosts kDefaultCreditCosts = {1, 2, 3};

/// The immutable product catalog: meters, channels, plans, profiles, add-ons.
/// Built once by config loading; shared read-only between threads.
class Catalog {
 public:
  /// Built-in meters of SPEC §1 in a fixed order (their MeterIds are stable).
  static std::vector<MeterDef> BuiltinMeters();

  std::vector<MeterDef> meters;
  std::vector<std::string> channels;
  /// `channel`, or the first channel when it is empty (a request that names none).
  const std::string& ChannelOr(const std::string& channel) const {
    return channel.empty() ? channels.front() : channel;
  }
  std::vector<Plan> plans;
  std::vector<RateLimitProfile> profiles;
  std::vector<AddonPack> addons;
  /// One-off prepaid packs (SPEC §1 "top-up"), from [[topups.<meter>]].
  std::vector<AddonPack> topups;
  /// Per channel (index into `channels`): what one message of each type costs.
  std::vector<CreditCosts> credit_costs;

  /// Rebuilds the name indexes; call after filling the vectors.
  void Index();

  std::optional<MeterId> FindMeter(absl::string_view name) const;
  const Plan* FindPlan(absl::string_view name) const;
  const RateLimitProfile* FindProfile(absl::string_view name) const;
  bool HasChannel(absl::string_view name) const;
  /// Credits one message of `type` costs on `channel` (a channel of the
  /// catalog; the default costs for any other).
  uint64_t CreditCost(absl::string_view channel, MessageType type) const;
  size_t meter_count() const { return meters.size(); }

 private:
  absl::flat_hash_map<std::string, MeterId> meter_index_;
  absl::flat_hash_map<std::string, size_t> plan_index_;
};

/// Well-known meter names.
namespace meters {
inline constexpr char kMessagesSent[] = "messages_sent";
inline constexpr char kMessagesReceived[] = "messages_received";
inline constexpr char kApiCalls[] = "api_calls";
inline constexpr char kLeadsDetected[] = "leads_detected";
inline constexpr char kChatbotSessions[] = "chatbot_sessions";
inline constexpr char kAiTokens[] = "ai_tokens";
inline constexpr char kCredits[] = "credits";
inline constexpr char kSessionsActive[] = "sessions_active";
inline constexpr char kGroupsActive[] = "groups_active";
inline constexpr char kSubscribers[] = "subscribers";
}  // namespace meters

}  // namespace quotum
