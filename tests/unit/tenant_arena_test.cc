#include "quotum/engine/tenant_arena.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "quotum/base/mutex.h"

namespace quotum::engine {
namespace {

// Tenants keep their address and id as the arena grows past its chunks.
TEST(TenantArenaTest, TenantsKeepTheirAddressesAcrossChunks) {
  TenantArena arena;
  std::vector<TenantState*> made;
  for (int i = 0; i < 10000; ++i) made.push_back(arena.New(absl::StrCat("t", i)));
  for (int i = 0; i < 10000; ++i) EXPECT_EQ(made[i]->id, absl::StrCat("t", i));
}

// A reservation large enough to be faulted in ahead is filled while the
// helper runs (it must change nothing in it), and waited for.
TEST(TenantArenaTest, ALargeReservationIsFilledWhileItsPagesAreFaultedIn) {
  TenantArena arena;
  const size_t n = 200000;  // about 50 MiB of tenants
  arena.Reserve(n);
  std::vector<TenantState*> made;
  for (size_t i = 0; i < n; ++i) {
    made.push_back(arena.New(absl::StrCat("tenant-", i)));
    MutexLock lock(&made.back()->mu);
    made.back()->used.assign(3, i);
  }
  arena.WaitForPages();
  for (size_t i = 1; i < n; ++i) ASSERT_EQ(made[i], made[i - 1] + 1) << "one chunk";
  for (size_t i = 0; i < n; i += 997) {
    ASSERT_EQ(made[i]->id, absl::StrCat("tenant-", i));
    MutexLock lock(&made[i]->mu);
    ASSERT_EQ(made[i]->used, std::vector<uint64_t>(3, i));
  }
}

}  // namespace
}  // namespace quotum::engine
