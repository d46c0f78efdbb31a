// WebhookSender against a real HTTP receiver on 127.0.0.1 (port 0): what
// arrives, how answers map to outcomes, the timeout, redirects, the response
// cap and the address policy at connect time.
#include "quotum/notify/webhook_sender.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "support/http_receiver.h"

namespace quotum::notify {
namespace {

using testing::Receiver;

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

Receiver::Answer Status(http::status status, std::string body = "") {
  return [status, body](const Request& request) {
    Response response(status, request.version());
    response.body() = body;
    return response;
  };
}

SendOptions LoopbackAllowed() {
  SendOptions options;
  options.policy.allow_hosts = {"127.0.0.1"};
  return options;
}

WebhookRequest RequestTo(const std::string& url, const std::string& host = "127.0.0.1") {
  WebhookRequest request;
  request.url = url;
  request.host = host;
  request.event_id = "evt_00ff";
  request.secret = "whsec_test";
  request.body = R"({"id":"evt_00ff","type":"threshold.reached"})";
  request.unix_seconds = 1700000000;
  return request;
}

/// HMAC-SHA256 computed here with OpenSSL, apart from SignatureHeader.
std::string HmacHex(const std::string& key, const std::string& text) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(text.data()), text.size(), mac, &size);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(mac), size));
}

std::string Header(const Request& request, const char* name) {
  auto it = request.find(name);
  return it == request.end() ? "" : std::string(it->value());
}

TEST(WebhookSenderTest, PostsSignedBodyWithItsHeaders) {
  Receiver receiver(Status(http::status::ok, "thanks"));
  WebhookRequest request = RequestTo(receiver.Url("/hook?x=1"));
  // Over 1 MiB, where curl would add "Expect: 100-continue" unless told not to.
  request.body = absl::StrCat(R"({"pad":")", std::string(3 << 19, 'p'), R"("})");
  SendOutcome out = WebhookSender(LoopbackAllowed()).Send(request);
  EXPECT_TRUE(out.delivered) << out.error;
  EXPECT_EQ(out.http_status, 200);
  EXPECT_EQ(out.error, "");
  EXPECT_EQ(out.response_snippet, "thanks");

  std::vector<Request> got = receiver.requests();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].method(), http::verb::post);
  EXPECT_EQ(got[0].target(), "/hook?x=1");
  EXPECT_EQ(got[0].body(), request.body);
  EXPECT_EQ(Header(got[0], "Content-Type"), "application/json");
  EXPECT_EQ(Header(got[0], "User-Agent"), "quotum-webhooks/1");
  EXPECT_EQ(Header(got[0], "X-Quotum-Event-Id"), "evt_00ff");
  EXPECT_EQ(got[0].find("Expect"), got[0].end());

  const std::string signature = Header(got[0], "X-Quotum-Signature");
  const size_t comma = signature.find(",v1=");
  ASSERT_EQ(signature.rfind("t=", 0), 0u) << signature;
  ASSERT_NE(comma, std::string::npos) << signature;
  const std::string t = signature.substr(2, comma - 2);
  EXPECT_EQ(t, "1700000000");
  EXPECT_EQ(signature.substr(comma + 4), HmacHex("whsec_test", t + "." + got[0].body()));
}

TEST(WebhookSenderTest, ServerErrorIsNotDelivered) {
  Receiver receiver(Status(http::status::internal_server_error, "boom"));
  SendOutcome out = WebhookSender(LoopbackAllowed()).Send(RequestTo(receiver.Url()));
  EXPECT_FALSE(out.delivered);
  EXPECT_EQ(out.http_status, 500);
  EXPECT_EQ(out.error, "the receiver answered 500");
  EXPECT_EQ(out.response_snippet, "boom");
}

TEST(WebhookSenderTest, SilentReceiverTimesOutWithinTheTimeout) {
  Receiver receiver(nullptr);
  SendOptions options = LoopbackAllowed();
  options.timeout = absl::Milliseconds(300);
  SendOutcome out = WebhookSender(options).Send(RequestTo(receiver.Url()));
  EXPECT_FALSE(out.delivered);
  EXPECT_EQ(out.http_status, 0);
  EXPECT_NE(out.error.find("timed out"), std::string::npos) << out.error;
  EXPECT_GE(out.took, absl::Milliseconds(250));
  EXPECT_LT(out.took, absl::Seconds(2));
  EXPECT_EQ(receiver.requests().size(), 1u);
}

TEST(WebhookSenderTest, RedirectIsNotFollowed) {
  Receiver receiver([](const Request& request) {
    Response response(http::status::found, request.version());
    response.set(http::field::location, "/elsewhere");
    return response;
  });
  SendOutcome out = WebhookSender(LoopbackAllowed()).Send(RequestTo(receiver.Url()));
  EXPECT_FALSE(out.delivered);
  EXPECT_EQ(out.http_status, 302);
  EXPECT_NE(out.error.find("redirect"), std::string::npos) << out.error;
  std::vector<Request> got = receiver.requests();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].target(), "/hook");
}

// 32 MiB is more than the loopback socket buffers hold, so the receiver's
// write fails when the sender stops reading.
TEST(WebhookSenderTest, ReadsAtMost64KiBOfTheResponse) {
  Receiver receiver(Status(http::status::ok, std::string(32 << 20, 'r')));
  SendOutcome out = WebhookSender(LoopbackAllowed()).Send(RequestTo(receiver.Url()));
  EXPECT_TRUE(out.delivered) << out.error;
  EXPECT_EQ(out.http_status, 200);
  EXPECT_EQ(out.response_snippet, std::string(512, 'r'));
  receiver.Stop();  // the answer's write has ended, one way or the other
  EXPECT_EQ(receiver.unsent_answers(), 1);
}

TEST(WebhookSenderTest, LoopbackRefusedWhenThePolicyDoesNotAllowIt) {
  Receiver receiver(Status(http::status::ok));
  SendOutcome out = WebhookSender(SendOptions{}).Send(RequestTo(receiver.Url()));
  EXPECT_FALSE(out.delivered);
  EXPECT_EQ(out.http_status, 0);
  EXPECT_EQ(out.error, "address not allowed: 127.0.0.1");

  SendOptions other;
  other.policy.allow_hosts = {"127.0.0.2", "10.0.0.0/8", "hooks.internal"};
  out = WebhookSender(other).Send(RequestTo(receiver.Url()));
  EXPECT_EQ(out.error, "address not allowed: 127.0.0.1");
  EXPECT_TRUE(receiver.requests().empty());
}

TEST(WebhookSenderTest, NameResolvingToLoopbackIsRefused) {
  Receiver receiver(Status(http::status::ok));
  const std::string url = absl::StrCat("http://localhost:", receiver.port(), "/hook");
  SendOutcome out = WebhookSender(SendOptions{}).Send(RequestTo(url, "localhost"));
  EXPECT_FALSE(out.delivered);
  EXPECT_EQ(out.error.rfind("address not allowed: ", 0), 0u) << out.error;
  EXPECT_TRUE(receiver.requests().empty());
}

TEST(WebhookSenderTest, PolicyAllowsLoopbackByAddressOrName) {
  Receiver receiver(Status(http::status::no_content));
  SendOutcome by_ip = WebhookSender(LoopbackAllowed()).Send(RequestTo(receiver.Url()));
  EXPECT_TRUE(by_ip.delivered) << by_ip.error;
  EXPECT_EQ(by_ip.http_status, 204);

  SendOptions by_name;
  by_name.policy.allow_hosts = {"LOCALHOST"};
  const std::string url = absl::StrCat("http://localhost:", receiver.port(), "/hook");
  SendOutcome out = WebhookSender(by_name).Send(RequestTo(url, "localhost"));
  EXPECT_TRUE(out.delivered) << out.error;
  EXPECT_EQ(receiver.requests().size(), 2u);
}

TEST(WebhookSenderTest, RefusesAHostOtherThanTheUrlsOwn) {
  Receiver receiver(Status(http::status::ok));
  SendOptions options;
  options.policy.allow_hosts = {"hooks.internal"};
  SendOutcome out = WebhookSender(options).Send(RequestTo(receiver.Url(), "hooks.internal"));
  EXPECT_FALSE(out.delivered);
  EXPECT_EQ(out.error, "the webhook URL's host is not hooks.internal");
  EXPECT_TRUE(receiver.requests().empty());
}

TEST(WebhookSenderTest, AcceptsTheHostInAnotherIpv4Form) {
  Receiver receiver(Status(http::status::ok));
  SendOptions options;
  options.policy.allow_hosts = {"127.0.0.0/8"};
  const std::string url = absl::StrCat("http://127.1:", receiver.port(), "/hook");
  SendOutcome out = WebhookSender(options).Send(RequestTo(url, "127.1"));
  EXPECT_TRUE(out.delivered) << out.error;
}

TEST(WebhookSenderTest, RefusesAnEventIdAHeaderCannotCarry) {
  Receiver receiver(Status(http::status::ok));
  WebhookRequest request = RequestTo(receiver.Url());
  request.event_id = "evt_1\r\nX-Injected: 1";
  SendOutcome out = WebhookSender(LoopbackAllowed()).Send(request);
  EXPECT_FALSE(out.delivered);
  EXPECT_NE(out.error.find("event id"), std::string::npos) << out.error;
  EXPECT_TRUE(receiver.requests().empty());
}

TEST(WebhookSenderTest, SendsConcurrentlyFromManyThreads) {
  Receiver receiver(Status(http::status::ok));
  const WebhookSender sender(LoopbackAllowed());
  std::atomic<int> delivered{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 5; ++j) delivered += sender.Send(RequestTo(receiver.Url())).delivered;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(delivered.load(), 20);
  EXPECT_EQ(receiver.requests().size(), 20u);
}

}  // namespace
}  // namespace quotum::notify
