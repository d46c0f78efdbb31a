// The messages a send decision writes in its commit (MeterRequest::messages).
#pragma once

#include <cstdint>
#include <vector>

#include "quotum/engine/store.h"

namespace quotum::engine {

/// Appends to `b` the first `charged` of `messages` as they are (each unit
/// charged admits one); when `queue_rest`, the others too, as queued
/// (reason limit_reached, due at their updated_at), so that a bulk's rest is
/// held in the same commit that charges its first part; else none of them.
/// Nothing when nothing is charged (a decision that charges nothing may
/// write nothing in scale-out): the caller queues a refused bulk itself.
void AppendSendMessages(const std::vector<MessageRecord>& messages, uint64_t charged,
                        bool queue_rest, CommitBatch& b);

}  // namespace quotum::engine
