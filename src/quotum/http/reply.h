#pragma once

#include <boost/json/value.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace quotum::http {

class PushedBody;

/// Produces a streamed body a piece at a time, on the connection's I/O
/// thread (or Reply::stream_runner's), never two pieces at once: appends the next piece to `out`
/// (the caller keeps each piece small, e.g. a page of rows) and returns true while more follows,
/// false once the body is complete. An error, once the headers are sent, can only abort the
/// response: the connection closes without the final chunk, so the client sees an incomplete
/// transfer rather than a short file.
using BodySource = absl::AnyInvocable<absl::StatusOr<bool>(std::string& out)>;

/// Runs a task, once, on a thread of its choosing (Reply::stream_runner).
using PieceRunner = absl::AnyInvocable<void(absl::AnyInvocable<void()> task)>;

/// An HTTP response before it is put on the wire.
struct Reply {
  unsigned status = 200;
  std::string body;
  /// Must point to static storage (a literal).
  std::string_view content_type = "application/json";
  /// Extra header lines, each "Name: value\r\n", in the order added.
  std::string headers;
  /// Close the connection after this reply (framing the server cannot trust).
  bool close_connection = false;
  /// When set, the body is `stream`'s pieces instead of `body`: sent with
  /// "Transfer-Encoding: chunked" to HTTP/1.1 clients (one chunk per piece),
  /// or delimited by closing the connection for HTTP/1.0; never for HEAD.
  BodySource stream;
  /// When set with `stream`, each piece is made by a task handed to it (a
  /// pool whose threads may wait on a store) instead of on the I/O thread,
  /// which serves its other connections meanwhile; the piece is sent once
  /// the task is done.
  PieceRunner stream_runner;
  /// When set (and `stream` is not), the body is what another thread pushes
  /// into it (pushed_body.h), sent as `stream` is, until it ends or the
  /// client leaves; the connection is then closed.
  std::shared_ptr<PushedBody> pushed;

  Reply& Header(std::string_view name, std::string_view value) {
    headers.append(name).append(": ").append(value).append("\r\n");
    return *this;
  }
};

/// Completes a request; callable once, from any thread.
using Respond = absl::AnyInvocable<void(Reply)>;

/// A JSON reply with the serialised `value`.
Reply JsonReply(unsigned status, const boost::json::value& value);

/// The error shape of every failure:
/// {"success": false, "error": "<sentence>", "code": "<machine_code>"}.
Reply ErrorReply(unsigned status, std::string_view code, std::string_view message);

/// The one mapping from engine errors to HTTP: status by canonical code,
/// `code` from the error's machine code, `error` from its message.
Reply ReplyForStatus(const absl::Status& status);

}  // namespace quotum::http
