// The HTTP server's threading contract: a reply may come from any thread, in
// any order, in bursts, and still reaches the connection that asked; a reply
// made on the I/O thread itself is written at once; shutdown waits for replies.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "quotum/http/server.h"
#include "quotum/testing/http_client.h"

namespace quotum::http {
namespace {

int PortOf(const std::string& bound) { return std::stoi(bound.substr(bound.rfind(':') + 1)); }

Reply TextReply(std::string body) {
  Reply r;
  r.content_type = "text/plain";
  r.body = std::move(body);
  return r;
}

// Collects requests and answers them from its own thread, a shuffled burst at
// a time, echoing each request's target.
class ForeignReplier {
 public:
  ForeignReplier() : thread_([this] { Run(); }) {}
  ~ForeignReplier() {
    stop_ = true;
    thread_.join();
  }

  void Take(std::string target, Respond respond) {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.emplace_back(std::move(target), std::move(respond));
  }

  std::atomic<std::chrono::milliseconds> delay{std::chrono::milliseconds(1)};

 private:
  void Run() {
    std::mt19937 rng(7);
    while (!stop_) {
      std::this_thread::sleep_for(delay.load());
      std::vector<std::pair<std::string, Respond>> burst;
      {
        std::lock_guard<std::mutex> lock(mu_);
        burst.swap(pending_);
      }
      std::shuffle(burst.begin(), burst.end(), rng);
      for (auto& [target, respond] : burst) respond(TextReply(target));
    }
  }

  std::mutex mu_;
  std::vector<std::pair<std::string, Respond>> pending_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(HttpServerTest, RepliesFromAnotherThreadReachTheConnectionThatAsked) {
  ForeignReplier replier;
  Server server({"127.0.0.1", 0, 2, 1 << 20}, [&](const Request& req, Respond respond) {
    replier.Take(std::string(req.target()), std::move(respond));
  });
  auto bound = server.Listen();
  ASSERT_TRUE(bound.ok()) << bound.status();
  server.Run();

  constexpr int kClients = 8;
  constexpr int kRequests = 60;
  std::atomic<int> wrong{0};
  std::mutex wrong_mu;
  std::string first_wrong;
  std::atomic<int> answered{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      testing::HttpClient client(PortOf(*bound));
      for (int i = 0; i < kRequests; ++i) {
        const std::string target = "/echo/" + std::to_string(c) + "/" + std::to_string(i);
        auto r = client.Get(target);
        if (r.status != 200 || r.body != target) {
          std::lock_guard<std::mutex> lock(wrong_mu);
          if (wrong++ == 0)
            first_wrong = std::to_string(r.status) + " " + r.body + " for " + target;
        }
        answered++;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(wrong.load(), 0) << "first wrong answer: " << first_wrong;
  EXPECT_EQ(answered.load(), kClients * kRequests);
  // The count drops when the server's write completes, which may be just after
  // the client has read the reply.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (server.in_flight() != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(server.in_flight(), 0);
  server.Shutdown(std::chrono::seconds(1));
}

TEST(HttpServerTest, AReplyMadeOnTheIoThreadIsWrittenAtOnce) {
  Server server({"127.0.0.1", 0, 2, 1 << 20}, [](const Request& req, Respond respond) {
    respond(TextReply("inline " + std::string(req.target())));
  });
  auto bound = server.Listen();
  ASSERT_TRUE(bound.ok()) << bound.status();
  server.Run();
  testing::HttpClient client(PortOf(*bound));
  for (int i = 0; i < 20; ++i) {
    auto r = client.Get("/x" + std::to_string(i));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "inline /x" + std::to_string(i));
  }
  server.Shutdown(std::chrono::seconds(1));
}

TEST(HttpServerTest, ShutdownWaitsForARequestStillBeingAnswered) {
  ForeignReplier replier;
  replier.delay = std::chrono::milliseconds(300);
  Server server({"127.0.0.1", 0, 2, 1 << 20}, [&](const Request& req, Respond respond) {
    replier.Take(std::string(req.target()), std::move(respond));
  });
  auto bound = server.Listen();
  ASSERT_TRUE(bound.ok()) << bound.status();
  server.Run();

  testing::HttpResponse response;
  std::thread client([&] { response = testing::HttpClient(PortOf(*bound)).Get("/slow"); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (server.in_flight() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(server.in_flight(), 1);
  server.Shutdown(std::chrono::seconds(5));
  client.join();
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "/slow");
  EXPECT_EQ(server.in_flight(), 0);
}

// A handler that answers only after the drain timed out (a read stuck past
// drain_timeout, finished as the API's pools stop) delivers into a stopped
// worker; destroying the server afterwards must free that connection without
// touching freed memory (AddressSanitizer reported a use after free here).
TEST(HttpServerTest, AReplyAfterATimedOutDrainIsDroppedSafely) {
  std::mutex mu;
  std::optional<Respond> stuck;
  std::thread client;
  absl::Cleanup join_client = [&] {
    if (client.joinable()) client.join();
  };
  {
    Server server({"127.0.0.1", 0, 2, 1 << 20}, [&](const Request&, Respond respond) {
      std::lock_guard<std::mutex> lock(mu);
      stuck = std::move(respond);
    });
    auto bound = server.Listen();
    ASSERT_TRUE(bound.ok()) << bound.status();
    server.Run();
    client = std::thread([port = PortOf(*bound)] { testing::HttpClient(port).Get("/stuck"); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (server.in_flight() == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_EQ(server.in_flight(), 1);
    server.Shutdown(std::chrono::milliseconds(50));
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_TRUE(stuck.has_value());
    (*stuck)(TextReply("late"));
    stuck.reset();
  }  // the server is destroyed with the late reply in a stopped worker's inbox
}

}  // namespace
}  // namespace quotum::http
