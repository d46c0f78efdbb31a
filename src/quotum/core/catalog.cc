#include "quotum/core/catalog.h"

#include <algorithm>

namespace quotum {

absl::string_view OnLimitName(OnLimit p) {
  switch (p) {
    case OnLimit::kAllow:
      return "allow";
    case OnLimit::kQueue:
      return "queue";
    default:
      return "reject";
  }
}

absl::string_view BandName(Band b) {
  switch (b) {
    case Band::kGreen:
      return "green";
    case Band::kYellow:
      return "yellow";
    case Band::kRed:
      return "red";
  }
  return "green";
}

Band BandFor(double percentage, const ColourBands& bands) {
  if (percentage >= bands.red) return Band::kRed;
  if (percentage >= bands.yellow) return Band::kYellow;
  return Band::kGreen;
}

std::vector<MeterDef> Catalog::BuiltinMeters() {
  using K = MeterKind;
  return {
      {std::string(meters::kMessagesSent), K::kCounter, true},
      {std::string(meters::kMessagesReceived), K::kCounter, false},
      {std::string(meters::kApiCalls), K::kCounter, true, /*reported_by_server=*/true},
      {std::string(meters::kLeadsDetected), K::kCounter, true},
      {std::string(meters::kChatbotSessions), K::kCounter, true},
      {std::string(meters::kAiTokens), K::kCounter, true},
      {std::string(meters::kCredits), K::kCounter, true},
      {std::string(meters::kSessionsActive), K::kGauge, true},
      {std::string(meters::kGroupsActive), K::kGauge, true},
      {std::string(meters::kSubscribers), K::kGauge, true},
  };
}

void Catalog::Index() {
  meter_index_.clear();
  plan_index_.clear();
  for (size_t i = 0; i < meters.size(); ++i) meter_index_[meters[i].name] = static_cast<MeterId>(i);
  for (size_t i = 0; i < plans.size(); ++i) plan_index_[plans[i].name] = i;
}

std::optional<MeterId> Catalog::FindMeter(absl::string_view name) const {
  auto it = meter_index_.find(name);
  if (it == meter_index_.end()) return std::nullopt;
  return it->second;
}

const Plan* Catalog::FindPlan(absl::string_view name) const {
  auto it = plan_index_.find(name);
  return it == plan_index_.end() ? nullptr : &plans[it->second];
}

const RateLimitProfile* Catalog::FindProfile(absl::string_view name) const {
  for (const auto& p : profiles)
    if (p.name == name) return &p;
  return nullptr;
}

bool Catalog::HasChannel(absl::string_view name) const {
  return std::find(channels.begin(), channels.end(), name) != channels.end();
}

uint64_t Catalog::CreditCost(absl::string_view channel, MessageType type) const {
  const auto it = std::find(channels.begin(), channels.end(), channel);
  const size_t i = static_cast<size_t>(it - channels.begin());
  const CreditCosts& costs = i < credit_costs.size() ? credit_costs[i] : kDefaultCreditCosts;
  return costs[static_cast<size_t>(type)];
}

absl::string_view MessageTypeName(MessageType t) {
  switch (t) {
    case MessageType::kText:
      return "text";
    case MessageType::kMedia:
      return "media";
    case MessageType::kTemplate:
      return "template";
  }
  return "text";
}

std::optional<MessageType> ParseMessageType(absl::string_view name) {
  for (size_t i = 0; i < kMessageTypeCount; ++i) {
    const auto t = static_cast<MessageType>(i);
    if (MessageTypeName(t) == name) return t;
  }
  return std::nullopt;
}

}  // namespace quotum
