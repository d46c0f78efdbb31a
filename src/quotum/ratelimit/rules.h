#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "quotum/ratelimit/limiter.h"

namespace quotum::ratelimit {

/// The short-window rule categories of SPEC §2 "Rate limits".
enum class Category : uint8_t {
  kGeneral = 0,   ///< requests per API key, every route
  kMessages = 1,  ///< messages per session
  kSessions = 2,  ///< session creations per API key
  kQr = 3,        ///< QR polls per session
};
inline constexpr int kCategoryCount = 4;

/// "general", "messages", "sessions", "qr".
const char* CategoryName(Category c);
/// The category named `name` (as CategoryName spells it); nullopt if none.
std::optional<Category> CategoryFromName(std::string_view name);

/// "sliding_window", "token_bucket", "fixed_window": the names config files,
/// the golden vectors and the Redis limiter script use.
const char* AlgorithmName(Algorithm a);
/// The algorithm named `name` (as AlgorithmName spells it); nullopt if none.
std::optional<Algorithm> AlgorithmFromName(std::string_view name);

/// How one category is limited. The unit count per window comes from the
/// tenant's rate-limit profile or the key's custom limits, unless `limit` fixes it.
struct RuleSpec {
  Algorithm algorithm = Algorithm::kSlidingWindow;
  int64_t window_ns = 60'000'000'000;
  std::optional<uint64_t> limit;
  /// Decide and record, never deny.
  bool shadow = false;
};

/// One spec per category, indexed by Category.
struct RuleSet {
  std::array<RuleSpec, kCategoryCount> rules;

  /// SPEC defaults: general and messages per minute, sessions per hour, qr 1 per 5 s.
  static RuleSet Defaults();
  const RuleSpec& operator[](Category c) const { return rules[static_cast<int>(c)]; }
  RuleSpec& operator[](Category c) { return rules[static_cast<int>(c)]; }
};

}  // namespace quotum::ratelimit
