// The FactsStream port on Redis streams: one stream per tenant,
// "{tenant}:f" (in the tenant's slot, so decide.lua appends to it in the
// same call that charges), and one consumer group "quotum" on each, shared
// by every instance. Applied entries are acknowledged and deleted.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "quotum/engine/usage_facts.h"
#include "quotum/store/redis/redis_connection.h"

namespace quotum::store::redis {

/// The facts stream key of a tenant.
std::string FactsStreamKey(absl::string_view tenant_id);

class RedisFactsStream final : public engine::FactsStream {
 public:
  /// `consumer` names this instance in the group: unique per process.
  RedisFactsStream(RedisClientOptions client, std::string consumer);

  absl::StatusOr<std::vector<engine::FactsEntry>> ReadNew(std::span<const std::string> tenants,
                                                          size_t max) override;
  absl::StatusOr<std::vector<engine::FactsEntry>> ClaimStale(const std::string& tenant,
                                                             absl::Duration min_idle,
                                                             size_t max) override;
  absl::Status Acknowledge(std::span<const engine::FactsEntry> entries) override;

  /// A consumer name unique to this process: host, pid and a random part.
  static std::string UniqueConsumerName();

 private:
  /// The connection, (re)connected when needed.
  absl::StatusOr<RedisConnection*> Connection();
  /// Runs one command; transport errors and error replies are statuses.
  absl::StatusOr<RedisReply> Call(std::span<const std::string_view> argv);
  /// Sends `commands` as one pipeline; the first error reply is the status,
  /// except replies starting with `harmless` (when not empty).
  absl::Status RunPipeline(std::span<const std::vector<std::string_view>> commands,
                           std::string_view harmless);
  /// Makes each tenant's stream and group unless made before by this object.
  absl::Status EnsureGroups(std::span<const std::string> tenants);
  /// The entries of one stream's reply entries [[id, [field, value, ...]], ...];
  /// entries that cannot be read are acknowledged and dropped (logged).
  std::vector<engine::FactsEntry> EntriesOf(const std::string& tenant, ReplyView entries);

  const RedisClientOptions client_;
  const std::string consumer_;
  std::optional<RedisConnection> conn_;
  absl::flat_hash_set<std::string> grouped_;
};

}  // namespace quotum::store::redis
