#pragma once
// An SmtpStream is one SMTP connection, either side: a TCP socket that
// STARTTLS may turn into a TLS stream (RFC 3207) midway. The session (server
// side) and the upstream client (client side) read and write through it the
// same way before and after, so the line reader and the DATA/BDAT readers
// never know which one carries their bytes.
//
// Server side: made from an accepted socket; handshake(TlsContext) after "220
// Ready to start TLS"; close() when the conversation ends. Client side: made
// from an executor; connect(), handshake(ClientTlsContext, name) after the
// upstream's 220 to STARTTLS; disconnect() when done, after which connect()
// may be called again.
//
// Errors are values: read_some() reports EOF as net::error::eof, also when a
// TLS peer closes TCP without a close_notify (see is_eof() in io_error.h);
// connect() and handshake() return a Status made by from_io_error().
//
// Use from one coroutine at a time, on the socket's executor. OpenSSL and Asio
// SSL stay in smtp_stream.cpp.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include "holdd/base/status.h"
#include "holdd/net/tls_info.h"

namespace holdd {

class ClientTlsContext;
class TlsContext;

// "host:port", or "[host]:port" for an IPv6 literal: how holdd names a peer it
// connects to, in messages.
std::string host_port(const std::string& host, uint16_t port);

class SmtpStream {
 public:
  // Server side: an accepted connection.
  explicit SmtpStream(boost::asio::ip::tcp::socket socket);
  // Client side: not connected yet; connect() next.
  explicit SmtpStream(const boost::asio::any_io_executor& executor);
  ~SmtpStream();
  SmtpStream(const SmtpStream&) = delete;
  SmtpStream& operator=(const SmtpStream&) = delete;

  // The TCP socket under any TLS (addresses, executor). Never read or write it
  // directly once TLS started.
  boost::asio::ip::tcp::socket& socket() { return socket_; }

  // Client side: resolves `host` (on Asio's resolver thread) and connects to
  // the first of its addresses that accepts. Failures are kTemporary
  // ("resolve mx.example.com: Host not found (authoritative)", "connect to
  // mx.example.com:25: Connection refused"), kCancelled when cancelled.
  // REQUIRES: not connected (new, or after disconnect()).
  boost::asio::awaitable<Status> connect(const std::string& host, uint16_t port);

  // Some bytes into `into`; (error, 0) on EOF, reset, TLS failure, cancel.
  boost::asio::awaitable<std::pair<boost::system::error_code, size_t>> read_some(
      std::span<char> into);
  // All of `bytes`, or the error that stopped it.
  boost::asio::awaitable<boost::system::error_code> write(std::string_view bytes);

  // The server side of the TLS handshake, over `ctx` (kept alive by the
  // stream). From its start on, all I/O goes through TLS; if it fails the
  // stream is unusable and the caller closes it. A failure reads "TLS
  // handshake failed: <why>" (kCancelled when cancelled). REQUIRES: !is_tls().
  boost::asio::awaitable<Status> handshake(std::shared_ptr<TlsContext> ctx);
  // The client side of the TLS handshake, over `ctx` (kept alive by the
  // stream), with the server called `name` (a host name or an IP address): a
  // host name goes out as SNI (RFC 6066 3), and when ctx verifies, the
  // server's certificate must be valid for `name` and chain to ctx's CA store.
  // A failure reads "TLS handshake with <host:port> failed: <why> (<what was
  // wrong with the certificate>)"; then the stream is unusable and the caller
  // disconnects. REQUIRES: connected with connect(), !is_tls().
  boost::asio::awaitable<Status> handshake(std::shared_ptr<ClientTlsContext> ctx,
                                           const std::string& name);

  // A TLS handshake started (whether or not it completed).
  bool is_tls() const { return state_ != State::kPlain; }
  // Protocol and cipher once the handshake completed; nullopt before.
  std::optional<TlsInfo> tls_info() const;

  // Server side. Best effort, never blocks: writes what fits into the socket
  // buffer now (a goodbye to a client that may not read). Nothing during a
  // handshake or after TLS failed. REQUIRES: no other operation in progress.
  void write_now(std::string_view bytes);
  // Server side. Sends a TLS close_notify when TLS is up (without waiting for
  // the peer's), then shuts TCP down and closes. REQUIRES: no other operation
  // in progress.
  void close();
  // Client side. Closes TCP at once, without a TLS close_notify (after QUIT or
  // a failure there is nothing left to protect), and goes back to plain and
  // unconnected, ready for connect(). Safe when not connected. Operations in
  // progress complete with operation_aborted.
  void disconnect();

 private:
  enum class State { kPlain, kHandshaking, kTls, kFailed };
  struct Tls;

  boost::asio::ip::tcp::socket socket_;
  std::unique_ptr<Tls> tls_;
  State state_ = State::kPlain;
  std::string peer_;  // "host:port" given to connect(), for messages
};

}  // namespace holdd
