#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace quotum::engine {

/// Builds an error status that carries a machine code (e.g. "unknown_meter")
/// besides the canonical code and the human sentence. The HTTP layer maps the
/// canonical code to a status and shows the machine code as `code`.
absl::Status Error(absl::StatusCode code, absl::string_view machine_code, std::string message);

/// The machine code attached by Error(), or a default derived from the
/// canonical code ("invalid_request", "not_found", ...).
std::string MachineCode(const absl::Status& status);

inline absl::Status BadRequest(absl::string_view machine_code, std::string message) {
  return Error(absl::StatusCode::kInvalidArgument, machine_code, std::move(message));
}
/// Well-formed but semantically unacceptable input (HTTP 422).
inline absl::Status Unprocessable(absl::string_view machine_code, std::string message) {
  return Error(absl::StatusCode::kFailedPrecondition, machine_code, std::move(message));
}

/// The commit queue no longer accepts work (HTTP 503).
absl::Status ShuttingDown();

/// The charge would take `meter` past kMaxCounter (HTTP 422).
absl::Status QuantityOverflow(absl::string_view meter);

/// The store could not serve a read (HTTP 503); `what` names it ("Usage history").
absl::Status StoreUnavailable(absl::string_view what);

/// No reservation `id` held now: unknown, expired, committed or released (HTTP 404).
absl::Status ReservationNotFound(absl::string_view id);

/// A reserve names reservation `id`, which is held already (HTTP 409).
absl::Status ReservationExists(absl::string_view id);

/// No tenant `id` (HTTP 404).
absl::Status TenantNotFound(absl::string_view id);

/// No session or group `id` (HTTP 404), or one already exists (HTTP 409).
absl::Status SessionNotFound(absl::string_view id);
absl::Status GroupNotFound(absl::string_view id);
absl::Status SessionExists(absl::string_view id);
absl::Status GroupExists(absl::string_view id);

}  // namespace quotum::engine
