#include "quotum/ratelimit/rules.h"

namespace quotum::ratelimit {

const char* CategoryName(Category c) {
  switch (c) {
    case Category::kGeneral:
      return "general";
    case Category::kMessages:
      return "messages";
    case Category::kSessions:
      return "sessions";
    case Category::kQr:
      return "qr";
  }
  return "general";
}

std::optional<Category> CategoryFromName(std::string_view name) {
  for (int i = 0; i < kCategoryCount; ++i) {
    const auto c = static_cast<Category>(i);
    if (name == CategoryName(c)) return c;
  }
  return std::nullopt;
}

const char* AlgorithmName(Algorithm a) {
  switch (a) {
    case Algorithm::kFixedWindow:
      return "fixed_window";
    case Algorithm::kTokenBucket:
      return "token_bucket";
    case Algorithm::kSlidingWindow:
      break;
  }
  return "sliding_window";
}

std::optional<Algorithm> AlgorithmFromName(std::string_view name) {
  for (Algorithm a :
       {Algorithm::kSlidingWindow, Algorithm::kTokenBucket, Algorithm::kFixedWindow}) {
    if (name == AlgorithmName(a)) return a;
  }
  return std::nullopt;
}

RuleSet RuleSet::Defaults() {
  constexpr int64_t kSecond = 1'000'000'000;
  RuleSet s;
  s[Category::kGeneral].window_ns = 60 * kSecond;
  s[Category::kMessages].window_ns = 60 * kSecond;
  s[Category::kSessions].window_ns = 3600 * kSecond;
  s[Category::kQr].window_ns = 5 * kSecond;
  s[Category::kQr].limit = 1;
  // Exactly one poll per window, however the polls fall on bucket boundaries.
  s[Category::kQr].algorithm = Algorithm::kTokenBucket;
  return s;
}

}  // namespace quotum::ratelimit
