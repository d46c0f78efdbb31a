#include "quotum/engine/packs.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "quotum/engine/errors.h"

namespace quotum::engine {

absl::StatusOr<const AddonPack*> FindPack(const Catalog& cat, const std::vector<AddonPack>& packs,
                                          PackKind kind, absl::string_view meter,
                                          uint64_t quantity) {
  if (!cat.FindMeter(meter)) {
    return Unprocessable("unknown_meter", absl::StrCat("Unknown meter \"", meter, "\"."));
  }
  const AddonPack* pack = nullptr;
  std::string sizes;
  for (const AddonPack& p : packs) {
    if (p.meter != meter) continue;
    absl::StrAppend(&sizes, sizes.empty() ? "" : ", ", p.units);
    if (p.units == quantity) pack = &p;
  }
  if (sizes.empty()) {
    return Unprocessable(kind.none_code, absl::StrCat("\"", meter, "\" has no ", kind.plural, "."));
  }
  if (!pack) {
    return Unprocessable("invalid_pack_size", absl::StrCat("The ", kind.plural, " of \"", meter,
                                                           "\" come in ", sizes, " units."));
  }
  return pack;
}

}  // namespace quotum::engine
