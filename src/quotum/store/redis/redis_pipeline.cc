#include "quotum/store/redis/redis_pipeline.h"

#include <pthread.h>

namespace quotum::store::redis {
namespace {

bool IsNoScript(const absl::StatusOr<RedisReply>& r) {
  return r.ok() && (*r)->is_error() && (*r)->str().starts_with("NOSCRIPT");
}

}  // namespace

RedisPipeline::RedisPipeline(RedisPipelineOptions options, std::string script)
    : opts_(std::move(options)), script_(std::move(script)) {
  for (int i = 0; i < opts_.workers; ++i) {
    workers_.emplace_back([this] {
      pthread_setname_np(pthread_self(), "quotum-redis");
      Work();
    });
  }
}

RedisPipeline::~RedisPipeline() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  wake_.SignalAll();
  for (std::thread& t : workers_) t.join();
  // Workers drain the queue before they stop; nothing is left here.
}

void RedisPipeline::Send(std::vector<std::string> argv, Done done) {
  {
    MutexLock lock(&mu_);
    queue_.push_back(Pending{std::move(argv), std::move(done)});
  }
  wake_.Signal();
}

void RedisPipeline::Work() {
  std::optional<RedisConnection> conn;
  std::vector<Pending> batch;
  while (true) {
    {
      MutexLock lock(&mu_);
      while (queue_.empty() && !stopping_) wake_.Wait(&mu_);
      if (queue_.empty()) return;  // stopping, and nothing left to send
      while (!queue_.empty() && batch.size() < opts_.max_batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    RunBatch(conn, batch);
    batch.clear();
  }
}

void RedisPipeline::RunBatch(std::optional<RedisConnection>& conn, std::vector<Pending>& batch) {
  std::vector<absl::StatusOr<RedisReply>> replies;
  if (!conn || conn->Stale()) {
    conn.reset();
    auto c = RedisConnection::Connect(opts_.client);
    if (c.ok()) {
      conn.emplace(std::move(*c));
    } else {
      for (size_t i = 0; i < batch.size(); ++i) replies.emplace_back(c.status());
    }
  }
  if (conn) {
    std::vector<std::vector<std::string_view>> commands;
    commands.reserve(batch.size());
    for (const Pending& p : batch) commands.emplace_back(p.argv.begin(), p.argv.end());
    auto sent = conn->Pipeline(commands);
    if (sent.ok()) {
      for (RedisReply& r : *sent) replies.emplace_back(std::move(r));
      RetryNoScript(*conn, batch, replies);
    } else {
      for (size_t i = 0; i < batch.size(); ++i) replies.emplace_back(sent.status());
    }
  }
  for (size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(replies[i]));
}

void RedisPipeline::RetryNoScript(RedisConnection& conn, std::vector<Pending>& batch,
                                  std::vector<absl::StatusOr<RedisReply>>& replies) {
  bool loaded = false;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!IsNoScript(replies[i])) continue;
    if (!loaded) {
      absl::StatusOr<std::string> sha = conn.LoadScript(script_);
      if (!sha.ok()) {
        replies[i] = sha.status();
        continue;
      }
      loaded = true;
    }
    std::vector<std::string_view> argv(batch[i].argv.begin(), batch[i].argv.end());
    replies[i] = conn.Command(argv);
  }
}

}  // namespace quotum::store::redis
