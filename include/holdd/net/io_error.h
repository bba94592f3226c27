#pragma once
// The one place an Asio or OpenSSL error code becomes a Status (STYLE.md 3:
// Asio results become values at the edge). Both sides of SMTP meet the same
// codes: the session reading a client, the upstream client reading a server.
//
//   no error                                  -> ok
//   operation_aborted                         -> kCancelled: holdd cancelled the
//       operation (close(), shutdown, a deadline that won a race)
//   anything else                             -> kTemporary: the peer closed
//       (EOF; a TLS peer closing TCP without close_notify), a reset, a refused
//       or unreachable connect, a failed resolve, the kernel's ETIMEDOUT, a
//       TLS alert or a refused certificate
//
// Never kPermanent: a network failure is never a message's fault, it is tried
// again. The kernel's ETIMEDOUT is the connection lost (kTemporary, as a
// reset); kTimeout is kept for holdd's own deadlines (command_timeout and the
// like), which the callers report in their own words.
#include <string_view>

#include <boost/system/error_code.hpp>

#include "holdd/base/status.h"

namespace holdd {

// The peer closed the connection: TCP EOF, or a TLS peer that closed TCP
// without a close_notify (ssl::error::stream_truncated: SMTP has its own end of
// message, so a truncated TLS stream loses nothing that was acknowledged).
bool is_eof(const boost::system::error_code& ec);

// holdd cancelled the operation (operation_aborted).
bool is_cancelled(const boost::system::error_code& ec);

// `ec` as a Status (see the table above) whose message is "<context>: <what
// the error says>", e.g. from_io_error(ec, "connect to mx.example.com:25") is
// "connect to mx.example.com:25: Connection refused". A `detail` the code
// cannot carry (why OpenSSL refused a certificate) follows in parentheses.
Status from_io_error(const boost::system::error_code& ec, std::string_view context,
                     std::string_view detail = {});

}  // namespace holdd
