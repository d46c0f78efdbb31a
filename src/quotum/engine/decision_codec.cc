#include "quotum/engine/decision_codec.h"

#include <cstdint>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace quotum::engine {
namespace {

// "c:<per unit>:<charged>:<limit or ->:<remaining>"
std::string CreditsText(const CreditsUse& c) {
  return absl::StrCat("c:", c.per_unit, ":", c.charged, ":", c.limit ? absl::StrCat(*c.limit) : "-",
                      ":", c.remaining);
}

// "r:<state>:<units>:<expires Unix ms>:<id>" (the id last: it is free text).
std::string ReservationText(const ReservationUse& r) {
  return absl::StrCat("r:", static_cast<int>(r.state), ":", r.units, ":",
                      absl::ToUnixMillis(r.expires_at), ":", r.id);
}

std::optional<CreditsUse> CreditsFrom(const std::vector<absl::string_view>& f) {
  CreditsUse c;
  if (f.size() != 5 || !absl::SimpleAtoi(f[1], &c.per_unit) ||
      !absl::SimpleAtoi(f[2], &c.charged) || !absl::SimpleAtoi(f[4], &c.remaining)) {
    return std::nullopt;
  }
  uint64_t limit = 0;
  if (f[3] != "-") {
    if (!absl::SimpleAtoi(f[3], &limit)) return std::nullopt;
    c.limit = limit;
  }
  return c;
}

// "t:<level>:<limit or ->:<used>"
std::string TierText(const TierUse& t) {
  return absl::StrCat("t:", t.level, ":", t.limit ? absl::StrCat(*t.limit) : "-", ":", t.used);
}

std::optional<TierUse> TierFrom(const std::vector<absl::string_view>& f) {
  TierUse t;
  if (f.size() != 4 || !absl::SimpleAtoi(f[1], &t.level) || !absl::SimpleAtoi(f[3], &t.used)) {
    return std::nullopt;
  }
  uint64_t limit = 0;
  if (f[2] != "-") {
    if (!absl::SimpleAtoi(f[2], &limit)) return std::nullopt;
    t.limit = limit;
  }
  return t;
}

std::optional<ReservationUse> ReservationFrom(const std::vector<absl::string_view>& f) {
  ReservationUse r;
  int state = 0;
  int64_t expires_ms = 0;
  if (f.size() != 5 || !absl::SimpleAtoi(f[1], &state) || state < 0 || state > 2 ||
      !absl::SimpleAtoi(f[2], &r.units) || !absl::SimpleAtoi(f[3], &expires_ms) || f[4].empty()) {
    return std::nullopt;
  }
  r.state = static_cast<ReservationUse::State>(state);
  r.expires_at = absl::FromUnixMillis(expires_ms);
  r.id = std::string(f[4]);
  return r;
}

}  // namespace

std::string EncodeDecisionExtras(const Decision& d) {
  std::string out;
  if (d.credits) out = CreditsText(*d.credits);
  if (d.reservation) absl::StrAppend(&out, out.empty() ? "" : ";", ReservationText(*d.reservation));
  if (d.tier) absl::StrAppend(&out, out.empty() ? "" : ";", TierText(*d.tier));
  return out;
}

void DecodeDecisionExtras(absl::string_view text, Decision& d) {
  for (absl::string_view part : absl::StrSplit(text, ';', absl::SkipEmpty())) {
    const std::vector<absl::string_view> f = absl::StrSplit(part, absl::MaxSplits(':', 4));
    if (f.empty()) continue;
    if (f[0] == "c") d.credits = CreditsFrom(f);
    if (f[0] == "r") d.reservation = ReservationFrom(f);
    if (f[0] == "t") d.tier = TierFrom(f);
  }
}

}  // namespace quotum::engine
