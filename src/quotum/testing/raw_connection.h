#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace quotum::testing {

/// A plain TCP connection to 127.0.0.1:port for tests that need to write
/// exact bytes (framing, slow clients) and read whatever comes back.
class RawConnection {
 public:
  /// Connects (blocking); `ok()` tells whether it did.
  explicit RawConnection(int port);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool ok() const { return fd_ >= 0; }
  /// Writes all of `bytes`; false on error.
  bool Send(std::string_view bytes);
  /// Reads until the peer closes or `timeout` passes; returns what came.
  std::string ReadUntilClose(std::chrono::milliseconds timeout);
  /// Reads until one whole response (headers and Content-Length body) has
  /// come, the peer closes, or `timeout` passes.
  std::string ReadResponse(std::chrono::milliseconds timeout);
  /// Appends to `out` until it holds `needle` after `from` (true), or the
  /// peer closes or `timeout` passes (false): for responses that stream.
  bool ReadUntil(std::string& out, std::string_view needle, size_t from,
                 std::chrono::milliseconds timeout);
  /// True when the peer has closed the connection (reads EOF or an error
  /// within `timeout`), false if it is still open.
  bool PeerClosed(std::chrono::milliseconds timeout);

 private:
  /// Appends what arrives within `timeout`; false on EOF or error.
  bool ReadSome(std::string& out, std::chrono::milliseconds timeout);
  int fd_ = -1;
};

/// Occurrences of "HTTP/1." at the start of a line: the responses in `bytes`.
int CountResponses(std::string_view bytes);

/// The status code of the first response in `bytes`, or 0.
int StatusOf(std::string_view bytes);

}  // namespace quotum::testing
