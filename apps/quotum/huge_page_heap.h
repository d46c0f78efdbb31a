#pragma once

namespace quotum {

/// Makes tcmalloc take its memory from 2 MiB-aligned regions the kernel may
/// back with transparent huge pages (madvise(MADV_HUGEPAGE)). Loading a
/// million tenants otherwise takes one page fault per 4 KiB it touches, and the
/// hot path one TLB entry per 4 KiB of tenant state. Call once, first thing in
/// main, before any thread starts. A no-op when built without tcmalloc, or
/// when the environment sets QUOTUM_HUGE_PAGES=off.
void UseHugePagesForHeap();

}  // namespace quotum
