#include "huge_page_heap.h"

#ifdef QUOTUM_WITH_TCMALLOC
#include <gperftools/malloc_extension.h>
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string_view>

namespace quotum {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;
// Each region reserved from the kernel; tcmalloc asks for about 1 MiB at a time.
constexpr size_t kRegion = size_t{64} << 20;

size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

// Hands out consecutive pieces of huge-page-aligned regions. The unused tail
// of a region that cannot fit a request is left untouched, which costs
// address space only. Falls back to tcmalloc's own allocator when mmap fails.
class HugePageSysAllocator final : public SysAllocator {
 public:
  explicit HugePageSysAllocator(SysAllocator* fallback) : fallback_(fallback) {}

  void* Alloc(size_t size, size_t* actual_size, size_t alignment) override {
    std::lock_guard<std::mutex> lock(mu_);
    const size_t align = alignment < 4096 ? 4096 : alignment;
    size = RoundUp(size, 4096);
    uintptr_t start = RoundUp(next_, align);
    if (next_ == 0 || start + size > end_) {
      if (!Reserve(size + align)) return fallback_->Alloc(size, actual_size, alignment);
      start = RoundUp(next_, align);
    }
    next_ = start + size;
    if (actual_size) *actual_size = size;
    return reinterpret_cast<void*>(start);
  }

 private:
  // Maps a new region of at least `need` bytes, aligned to a huge page.
  bool Reserve(size_t need) {
    const size_t len = RoundUp(need > kRegion ? need : kRegion, kHugePage);
    void* raw = mmap(nullptr, len + kHugePage, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) return false;
    const uintptr_t base = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t aligned = RoundUp(base, kHugePage);
    // Give back the unaligned head and tail.
    if (aligned > base) munmap(raw, aligned - base);
    const uintptr_t tail = aligned + len;
    if (base + len + kHugePage > tail)
      munmap(reinterpret_cast<void*>(tail), base + len + kHugePage - tail);
    madvise(reinterpret_cast<void*>(aligned), len, MADV_HUGEPAGE);
    next_ = aligned;
    end_ = tail;
    return true;
  }

  SysAllocator* const fallback_;
  std::mutex mu_;
  uintptr_t next_ = 0;
  uintptr_t end_ = 0;
};

}  // namespace

void UseHugePagesForHeap() {
  if (const char* v = std::getenv("QUOTUM_HUGE_PAGES"); v && std::string_view(v) == "off") return;
  MallocExtension* ext = MallocExtension::instance();
  // Never destroyed: tcmalloc may grow the heap during exit, after static
  // destructors have run.
  static auto* allocator = new HugePageSysAllocator(ext->GetSystemAllocator());
  ext->SetSystemAllocator(allocator);
}

}  // namespace quotum

#else

namespace quotum {
void UseHugePagesForHeap() {}
}  // namespace quotum

#endif
