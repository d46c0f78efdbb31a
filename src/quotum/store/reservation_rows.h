// How both cold stores read the reservations table, which they share.
#pragma once

#include "quotum/engine/store.h"
#include "quotum/store/column_values.h"

namespace quotum::store {

/// Every reservation, in the column order ReservationFromRow reads.
inline constexpr char kSelectReservations[] =
    "SELECT tenant_id,id,meter,units,created_at_ms,expires_at_ms FROM reservations";

/// One row of kSelectReservations. `Row` has Text(col) and Int(col)
/// (sqlite::Stmt, postgres::PgRow).
template <typename Row>
engine::ReservationRecord ReservationFromRow(const Row& r) {
  return engine::ReservationRecord{r.Text(0),
                                   r.Text(1),
                                   r.Text(2),
                                   AsUnsigned(r.Int(3)),
                                   absl::FromUnixMillis(r.Int(4)),
                                   absl::FromUnixMillis(r.Int(5))};
}

}  // namespace quotum::store
