// An optional value kept on the heap: one pointer (8 bytes) when empty, for
// rarely set fields of objects there are millions of (a tenant's pending
// plan change would take 272 bytes inline in every TenantState).
#pragma once

#include <memory>
#include <optional>
#include <utility>

namespace quotum {

/// Reads and assigns like std::optional<T> (and converts to and from it);
/// copies copy the value.
template <typename T>
class HeapOptional {
 public:
  HeapOptional() = default;
  HeapOptional(const HeapOptional& o) : p_(o.p_ ? std::make_unique<T>(*o.p_) : nullptr) {}
  HeapOptional(HeapOptional&&) noexcept = default;
  HeapOptional& operator=(const HeapOptional& o) {
    if (this != &o) p_ = o.p_ ? std::make_unique<T>(*o.p_) : nullptr;
    return *this;
  }
  HeapOptional& operator=(HeapOptional&&) noexcept = default;
  HeapOptional& operator=(const std::optional<T>& o) {
    p_ = o ? std::make_unique<T>(*o) : nullptr;
    return *this;
  }
  HeapOptional& operator=(T v) {
    p_ = std::make_unique<T>(std::move(v));
    return *this;
  }

  operator std::optional<T>() const {  // NOLINT: converts like the optional it stands for
    return p_ ? std::optional<T>(*p_) : std::nullopt;
  }
  explicit operator bool() const { return p_ != nullptr; }
  bool has_value() const { return p_ != nullptr; }
  T& operator*() { return *p_; }
  const T& operator*() const { return *p_; }
  T* operator->() { return p_.get(); }
  const T* operator->() const { return p_.get(); }
  void reset() { p_.reset(); }

 private:
  std::unique_ptr<T> p_;
};

}  // namespace quotum
