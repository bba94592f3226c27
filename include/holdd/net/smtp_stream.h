#pragma once
// An SmtpStream is a session's connection: a TCP socket that STARTTLS may turn
// into a TLS stream (RFC 3207) midway. The session reads and writes through it
// the same way before and after, so the line reader and the DATA/BDAT readers
// never know which one carries their bytes.
//
// Errors are values: read_some() reports EOF as net::error::eof, also when a
// TLS peer closes TCP without a close_notify (ssl::error::stream_truncated:
// SMTP has its own end-of-message marker, so a truncated TLS stream loses
// nothing that was acknowledged).
//
// Use from one coroutine at a time, on the socket's executor. OpenSSL and Asio
// SSL stay in smtp_stream.cpp.
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include "holdd/net/tls_info.h"

namespace holdd {

class TlsContext;

class SmtpStream {
 public:
  explicit SmtpStream(boost::asio::ip::tcp::socket socket);
  ~SmtpStream();
  SmtpStream(const SmtpStream&) = delete;
  SmtpStream& operator=(const SmtpStream&) = delete;

  // The TCP socket under any TLS (addresses, executor). Never read or write it
  // directly once TLS started.
  boost::asio::ip::tcp::socket& socket() { return socket_; }

  // Some bytes into `into`; (error, 0) on EOF, reset, TLS failure, cancel.
  boost::asio::awaitable<std::pair<boost::system::error_code, size_t>> read_some(
      std::span<char> into);
  // All of `bytes`, or the error that stopped it.
  boost::asio::awaitable<boost::system::error_code> write(std::string_view bytes);

  // The server side of the TLS handshake, over `ctx` (kept alive by the stream).
  // From its start on, all I/O goes through TLS; if it fails the stream is
  // unusable and the caller closes it. REQUIRES: !is_tls().
  boost::asio::awaitable<boost::system::error_code> handshake(std::shared_ptr<TlsContext> ctx);

  // A TLS handshake started (whether or not it completed).
  bool is_tls() const { return state_ != State::kPlain; }
  // Protocol and cipher once the handshake completed; nullopt before.
  std::optional<TlsInfo> tls_info() const;

  // Best effort, never blocks: writes what fits into the socket buffer now
  // (a goodbye to a client that may not read). Nothing during a handshake or
  // after TLS failed. REQUIRES: no other operation in progress.
  void write_now(std::string_view bytes);
  // Sends a TLS close_notify when TLS is up (without waiting for the peer's),
  // then shuts TCP down and closes. REQUIRES: no other operation in progress.
  void close();

 private:
  enum class State { kPlain, kHandshaking, kTls, kFailed };
  struct Tls;

  boost::asio::ip::tcp::socket socket_;
  std::unique_ptr<Tls> tls_;
  State state_ = State::kPlain;
};

}  // namespace holdd
