#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"
#include "quotum/engine/tenant_state.h"

namespace quotum::engine {

/// Owns the TenantStates an Engine makes, placed one after another in chunks
/// that grow to kMaxChunk tenants: a million tenants cost a few hundred
/// allocations instead of a million, without per-object size rounding.
/// A tenant lives as long as the arena, so pointers to it stay valid (one
/// whose creation failed stays too, unreachable). Not thread-safe: callers
/// hold the lock that guards the registry.
class TenantArena {
 public:
  TenantArena() = default;
  TenantArena(const TenantArena&) = delete;
  TenantArena& operator=(const TenantArena&) = delete;
  ~TenantArena();

  /// A new tenant with this id, owned by the arena.
  TenantState* New(std::string id);
  /// Makes room for `n` more tenants in one chunk. The pages of a large one
  /// (start-up with many tenants) are faulted in by a helper thread meanwhile,
  /// so that the kernel zeroes them there rather than on the thread making
  /// the tenants; nothing in them changes.
  void Reserve(size_t n);
  /// Waits for that helper, if any (the destructor waits too).
  void WaitForPages();

 private:
  static constexpr size_t kMinChunk = 16;
  static constexpr size_t kMaxChunk = 4096;
  /// A chunk at least this large is faulted in ahead of use.
  static constexpr size_t kFaultAheadBytes = size_t{32} << 20;
  struct Chunk {
    std::unique_ptr<std::byte[]> bytes;
    size_t capacity = 0;
    size_t used = 0;
    TenantState* At(size_t i) { return reinterpret_cast<TenantState*>(bytes.get()) + i; }
  };
  void AddChunk(size_t capacity);

  void FaultInAhead(const Chunk& c);

  std::vector<Chunk> chunks_;
  size_t total_ = 0;
  std::thread pages_;  ///< the helper of FaultInAhead, while it runs
};

/// Hash and equality for a set of pointers to objects that carry their own id
/// (`kId`, a pointer to a std::string member), looked up by that id:
/// `absl::flat_hash_set<T*, ById<&T::id>, ById<&T::id>>` costs 8 bytes a slot
/// where a map from a view of the id to the pointer costs 24.
template <auto kId>
struct ById {
  using is_transparent = void;
  template <typename T>
  static absl::string_view IdOf(const T* p) {
    return p->*kId;
  }
  static absl::string_view IdOf(absl::string_view id) { return id; }

  template <typename A>
  size_t operator()(const A& a) const {
    return absl::Hash<absl::string_view>()(IdOf(a));
  }
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    return IdOf(a) == IdOf(b);
  }
};

}  // namespace quotum::engine
