#include "quotum/engine/tenant_arena.h"

#include <algorithm>
#include <new>

namespace quotum::engine {

TenantArena::~TenantArena() {
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
