// Finding the pack a tenant buys (add-ons and top-ups share the shape).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "quotum/core/catalog.h"

namespace quotum::engine {

/// What a kind of pack is called in its errors.
struct PackKind {
  absl::string_view plural;     ///< "add-on packs", "top-ups"
  absl::string_view none_code;  ///< "no_addon_packs", "no_topup_packs"
};

/// The pack of `packs` for `meter` with `quantity` units. Errors (422):
/// unknown_meter; `kind.none_code` when the meter has no such packs;
/// invalid_pack_size, listing the sizes on sale.
absl::StatusOr<const AddonPack*> FindPack(const Catalog& cat, const std::vector<AddonPack>& packs,
                                          PackKind kind, absl::string_view meter,
                                          uint64_t quantity);

}  // namespace quotum::engine
