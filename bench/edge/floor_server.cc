// The floor of an HTTP server of our own on this machine, for bench/edge.sh:
// one edge-triggered epoll loop per thread (SO_REUSEPORT listeners), one recv
// per readiness edge unless the buffer filled, a request framed by its blank
// line and Content-Length, and a constant JSON reply with one send. It decides
// nothing and checks nothing: a measuring instrument, not a server.
//   floor_server PORT [THREADS]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr char kReply[] =
    "HTTP/1.1 200 OK\r\nServer: floor\r\nContent-Type: application/json\r\n"
    "Content-Length: 122\r\n\r\n"
    "{\"allowed\":true,\"consumed\":1,\"remaining\":999999,\"limit\":1000000,"
    "\"reset_at\":\"2026-12-08T10:00:00Z\",\"meter\":\"messages_sent\"}";

struct Connection {
  int fd;
  std::string in;
};

int Listen(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 1024) != 0) {
    perror("floor_server: listen");
    std::exit(1);
  }
  return fd;
}

void AcceptAll(int listener, int epoll_fd) {
  const int one = 1;
  for (;;) {
    const int fd = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK);
    if (fd < 0) return;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = new Connection{fd, {}};
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev);
  }
}

// Answers every whole request buffered; false once the connection is closed.
bool Serve(Connection& c) {
  char buf[4096];
  for (;;) {
    const ssize_t n = recv(c.fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EAGAIN) return true;
    if (n <= 0) return false;
    c.in.append(buf, static_cast<size_t>(n));
    for (size_t end; (end = c.in.find("\r\n\r\n")) != std::string::npos;) {
      const size_t at = c.in.find("Content-Length: ");
      const size_t body = at < end ? std::strtoul(c.in.c_str() + at + 16, nullptr, 10) : 0;
      if (c.in.size() < end + 4 + body) break;
      c.in.erase(0, end + 4 + body);
      if (send(c.fd, kReply, sizeof kReply - 1, MSG_NOSIGNAL) < 0) return false;
    }
    if (static_cast<size_t>(n) < sizeof buf) return true;  // drained: wait for the next edge
  }
}

void Loop(int port) {
  const int listener = Listen(port);
  const int epoll_fd = epoll_create1(0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listener, &ev);
  epoll_event ready[256];
  for (;;) {
    const int n = epoll_wait(epoll_fd, ready, 256, -1);
    for (int i = 0; i < n; ++i) {
      auto* c = static_cast<Connection*>(ready[i].data.ptr);
      if (c == nullptr) {
        AcceptAll(listener, epoll_fd);
      } else if (!Serve(*c)) {
        close(c->fd);
        delete c;
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const int port = std::atoi(argv[1]);
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  std::vector<std::thread> loops;
  for (int i = 0; i < threads; ++i) loops.emplace_back(Loop, port);
  for (auto& t : loops) t.join();
}
