#include "quotum/engine/tenant_arena.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <new>
#include <system_error>

namespace quotum::engine {

TenantArena::~TenantArena() {
  WaitForPages();
  for (auto chunk = chunks_.rbegin(); chunk != chunks_.rend(); ++chunk) {
    for (size_t i = chunk->used; i > 0; --i) chunk->At(i - 1)->~TenantState();
  }
}

void TenantArena::AddChunk(size_t capacity) {
  Chunk c;
  c.bytes = std::make_unique_for_overwrite<std::byte[]>(capacity * sizeof(TenantState));
  c.capacity = capacity;
  chunks_.push_back(std::move(c));
}

void TenantArena::Reserve(size_t n) {
  if (!chunks_.empty() && chunks_.back().capacity - chunks_.back().used >= n) return;
  AddChunk(n);
  if (n * sizeof(TenantState) >= kFaultAheadBytes) FaultInAhead(chunks_.back());
}

void TenantArena::WaitForPages() {
  if (pages_.joinable()) pages_.join();
}

// MADV_POPULATE_WRITE (Linux 5.14) faults the pages in as a write would,
// without changing what they hold, so it may run while New fills them from
// the front. Where the kernel lacks it, New faults them in itself, as before.
void TenantArena::FaultInAhead(const Chunk& c) {
#ifdef MADV_POPULATE_WRITE
  WaitForPages();
  constexpr uintptr_t kPage = 4096;
  const auto begin = reinterpret_cast<uintptr_t>(c.bytes.get());
  const uintptr_t first = (begin + kPage - 1) / kPage * kPage;
  const uintptr_t last = (begin + c.capacity * sizeof(TenantState)) / kPage * kPage;
  if (last <= first) return;
  try {
    pages_ = std::thread([first, last] {
      madvise(reinterpret_cast<void*>(first), last - first, MADV_POPULATE_WRITE);
    });
  } catch (const std::system_error&) {
    // No thread to spare (a limit on threads): New faults the pages in itself.
  }
#endif
}

TenantState* TenantArena::New(std::string id) {
  if (chunks_.empty() || chunks_.back().used == chunks_.back().capacity) {
    AddChunk(std::clamp(total_, kMinChunk, kMaxChunk));
  }
  Chunk& c = chunks_.back();
  TenantState* t = new (c.At(c.used)) TenantState(std::move(id));
  ++c.used;
  ++total_;
  return t;
}

}  // namespace quotum::engine
