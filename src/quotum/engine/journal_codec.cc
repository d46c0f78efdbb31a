#include "quotum/engine/journal_codec.h"

#include <zlib.h>

#include <cstring>
#include <iterator>

#include "quotum/engine/decision_codec.h"

namespace quotum::engine {
namespace {

constexpr uint8_t kVersion = 1;
constexpr size_t kHeaderBytes = 4 + 4 + 8;  // length, checksum, sequence
/// A length past this is corruption, not a record (one decision's effects are
/// a few hundred bytes).
constexpr uint32_t kMaxPayload = 16 << 20;

template <typename T>
void Put(std::string& out, T v) {
  char raw[sizeof(T)];
  std::memcpy(raw, &v, sizeof(T));
  out.append(raw, sizeof(T));
}
void PutStr(std::string& out, absl::string_view s) {
  Put<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out.append(s.data(), s.size());
}
void PutTime(std::string& out, absl::Time t) { Put<int64_t>(out, absl::ToUnixNanos(t)); }

// CRC-32 (ISO-HDLC, as zip and PNG use): zlib computes it several bytes at a
// time, about four times as fast as boost::crc_32_type's byte at a time, with
// the same result (JournalCodecTest pins a known value).
uint32_t Checksum(absl::string_view bytes) {
  return static_cast<uint32_t>(
      ::crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
}

// A bounds-checked cursor over one payload; every read fails once past the end.
class Cursor {
 public:
  explicit Cursor(absl::string_view bytes) : rest_(bytes) {}
  template <typename T>
  bool Get(T& v) {
    if (rest_.size() < sizeof(T)) return false;
    std::memcpy(&v, rest_.data(), sizeof(T));
    rest_.remove_prefix(sizeof(T));
    return true;
  }
  bool Str(std::string& s) {
    uint32_t n = 0;
    if (!Get(n) || rest_.size() < n) return false;
    s.assign(rest_.data(), n);
    rest_.remove_prefix(n);
    return true;
  }
  bool Time(absl::Time& t) {
    int64_t ns = 0;
    if (!Get(ns)) return false;
    t = absl::FromUnixNanos(ns);
    return true;
  }
  bool done() const { return rest_.empty(); }

 private:
  absl::string_view rest_;
};

void PutDecision(std::string& out, const Decision& d) {
  Put<uint8_t>(out, d.allowed);
  Put<uint64_t>(out, d.requested);
  Put<uint64_t>(out, d.consumed);
  Put<uint64_t>(out, d.remaining);
  Put<uint8_t>(out, d.limit.has_value());
  Put<uint64_t>(out, d.limit.value_or(0));
  Put<uint64_t>(out, d.overage);
  PutTime(out, d.period_start);
  PutTime(out, d.reset_at);
  PutStr(out, d.meter);
  Put<uint8_t>(out, static_cast<uint8_t>(d.reason));
  PutStr(out, EncodeDecisionExtras(d));
}

bool GetDecision(Cursor& in, Decision& d) {
  uint8_t allowed = 0, has_limit = 0, reason = 0;
  uint64_t limit = 0;
  std::string extras;
  if (!in.Get(allowed) || !in.Get(d.requested) || !in.Get(d.consumed) || !in.Get(d.remaining) ||
      !in.Get(has_limit) || !in.Get(limit) || !in.Get(d.overage) || !in.Time(d.period_start) ||
      !in.Time(d.reset_at) || !in.Str(d.meter) || !in.Get(reason) || !in.Str(extras)) {
    return false;
  }
  d.allowed = allowed != 0;
  if (has_limit) d.limit = limit;
  d.reason = static_cast<DenyReason>(reason);
  DecodeDecisionExtras(extras, d);
  return true;
}

void PutPayload(std::string& out, const CommitBatch& b) {
  Put<uint8_t>(out, kVersion);
  Put<uint32_t>(out, static_cast<uint32_t>(b.usage.size()));
  for (const UsageDelta& u : b.usage) {
    PutStr(out, u.tenant_id);
    PutStr(out, u.meter);
    PutStr(out, u.channel);
    PutTime(out, u.period_start);
    PutTime(out, u.at);
    Put<uint64_t>(out, u.quantity);
  }
  Put<uint32_t>(out, static_cast<uint32_t>(b.idempotency.size()));
  for (const IdempotencyRecord& r : b.idempotency) {
    PutStr(out, r.tenant_id);
    PutStr(out, r.key);
    Put<uint64_t>(out, r.fingerprint);
    PutTime(out, r.created_at);
    PutDecision(out, r.decision);
  }
  Put<uint32_t>(out, static_cast<uint32_t>(b.topup_draws.size()));
  for (const TopupDraw& t : b.topup_draws) {
    PutStr(out, t.tenant_id);
    PutStr(out, t.id);
    Put<uint64_t>(out, t.units);
  }
  Put<uint32_t>(out, static_cast<uint32_t>(b.alerts.size()));
  for (const AlertRecord& a : b.alerts) {
    PutStr(out, a.tenant_id);
    PutStr(out, a.meter);
    PutTime(out, a.period_start);
    PutTime(out, a.period_end);
    Put<int32_t>(out, a.threshold);
    Put<uint64_t>(out, a.value);
    Put<uint64_t>(out, a.limit);
    PutTime(out, a.at);
  }
}

// Reads a list led by its count, each element with `one`.
template <typename T, typename Fn>
bool GetList(Cursor& in, std::vector<T>& out, Fn one) {
  uint32_t n = 0;
  if (!in.Get(n)) return false;
  for (uint32_t i = 0; i < n; ++i) {
    T v;
    if (!one(v)) return false;
    out.push_back(std::move(v));
  }
  return true;
}

bool GetPayload(absl::string_view payload, CommitBatch& b) {
  Cursor in(payload);
  uint8_t version = 0;
  if (!in.Get(version) || version != kVersion) return false;
  const bool ok = GetList(in, b.usage,
                          [&](UsageDelta& u) {
                            return in.Str(u.tenant_id) && in.Str(u.meter) && in.Str(u.channel) &&
                                   in.Time(u.period_start) && in.Time(u.at) && in.Get(u.quantity);
                          }) &&
                  GetList(in, b.idempotency,
                          [&](IdempotencyRecord& r) {
                            return in.Str(r.tenant_id) && in.Str(r.key) && in.Get(r.fingerprint) &&
                                   in.Time(r.created_at) && GetDecision(in, r.decision);
                          }) &&
                  GetList(in, b.topup_draws,
                          [&](TopupDraw& t) {
                            return in.Str(t.tenant_id) && in.Str(t.id) && in.Get(t.units);
                          }) &&
                  GetList(in, b.alerts, [&](AlertRecord& a) {
                    return in.Str(a.tenant_id) && in.Str(a.meter) && in.Time(a.period_start) &&
                           in.Time(a.period_end) && in.Get(a.threshold) && in.Get(a.value) &&
                           in.Get(a.limit) && in.Time(a.at);
                  });
  return ok && in.done();
}

template <typename T>
void MoveTail(std::vector<T>& from, size_t keep, std::vector<T>& to) {
  if (keep == 0 && to.empty()) {
    to.swap(from);
    return;
  }
  to.insert(to.end(), std::make_move_iterator(from.begin() + static_cast<ptrdiff_t>(keep)),
            std::make_move_iterator(from.end()));
  from.resize(keep);
}

}  // namespace

bool IsJournalable(const CommitBatch& b) { return b.HoldsOnlyJournalKinds(); }

void AppendJournalRecord(uint64_t seq, const CommitBatch& b, std::string& out) {
  const size_t start = out.size();
  Put<uint32_t>(out, 0);  // length, filled in below
  Put<uint32_t>(out, 0);  // checksum, filled in below
  Put<uint64_t>(out, seq);
  PutPayload(out, b);
  const uint32_t length = static_cast<uint32_t>(out.size() - start - kHeaderBytes);
  const uint32_t crc = Checksum(absl::string_view(out).substr(start + 8));
  std::memcpy(&out[start], &length, 4);
  std::memcpy(&out[start + 4], &crc, 4);
}

void ReadJournalRecords(absl::string_view bytes, uint64_t mark, JournalReplay& into,
                        size_t max_rows) {
  size_t at = 0;
  while (at < bytes.size()) {
    if (into.records > 0 && (into.batch.usage.size() >= max_rows || into.records >= max_rows)) {
      into.more = true;
      break;
    }
    uint32_t length = 0, crc = 0;
    uint64_t seq = 0;
    if (bytes.size() - at < kHeaderBytes) break;
    std::memcpy(&length, bytes.data() + at, 4);
    std::memcpy(&crc, bytes.data() + at + 4, 4);
    std::memcpy(&seq, bytes.data() + at + 8, 8);
    if (length > kMaxPayload || bytes.size() - at - kHeaderBytes < length) break;
    if (Checksum(bytes.substr(at + 8, 8 + length)) != crc) break;
    if (seq > mark) {
      CommitBatch one;
      if (!GetPayload(bytes.substr(at + kHeaderBytes, length), one)) break;
      MoveJournalRecords(one, into.batch);
      if (into.records++ == 0) into.first_seq = seq;
    }
    into.last_seq = std::max(into.last_seq, seq);
    at += kHeaderBytes + length;
  }
  into.good_bytes = at;
  into.torn = !into.more && at < bytes.size();
}

void JournalListSizes(const CommitBatch& b, size_t (&out)[4]) {
  out[0] = b.usage.size();
  out[1] = b.idempotency.size();
  out[2] = b.topup_draws.size();
  out[3] = b.alerts.size();
}

void MoveJournalRecords(CommitBatch& from, CommitBatch& to, const size_t (&keep)[4]) {
  MoveTail(from.usage, keep[0], to.usage);
  MoveTail(from.idempotency, keep[1], to.idempotency);
  MoveTail(from.topup_draws, keep[2], to.topup_draws);
  MoveTail(from.alerts, keep[3], to.alerts);
}

}  // namespace quotum::engine
