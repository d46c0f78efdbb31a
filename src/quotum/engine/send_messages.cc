#include "quotum/engine/send_messages.h"

namespace quotum::engine {

void AppendSendMessages(const std::vector<MessageRecord>& messages, uint64_t charged,
                        bool queue_rest, CommitBatch& b) {
  if (charged == 0) return;  // nothing charged: the caller queues them itself
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i < charged) {
      b.messages.push_back(messages[i]);
      continue;
    }
    if (!queue_rest) return;
    MessageRecord held = messages[i];
    held.status = "queued";
    held.reason = "limit_reached";
    held.due_at = held.updated_at;
    held.released_at.reset();
    held.sent_at.reset();
    b.messages.push_back(std::move(held));
  }
}

}  // namespace quotum::engine
