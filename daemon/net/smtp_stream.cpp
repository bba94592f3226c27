#include "holdd/net/smtp_stream.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <openssl/ssl.h>

#include "holdd/net/tls_context.h"

namespace holdd {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using net::ip::tcp;
using boost::system::error_code;
constexpr auto kAsTuple = net::as_tuple(net::use_awaitable);

bool is_eof(const error_code& ec) {
  return ec == net::error::eof || ec == ssl::error::stream_truncated;
}

}  // namespace

struct SmtpStream::Tls {
  Tls(tcp::socket& socket, std::shared_ptr<TlsContext> c)
      : context(std::move(c)), stream(socket, context->native()) {}

  std::shared_ptr<TlsContext> context;  // outlives the SSL* made from it
  ssl::stream<tcp::socket&> stream;
};

SmtpStream::SmtpStream(tcp::socket socket) : socket_(std::move(socket)) {}

SmtpStream::~SmtpStream() = default;

net::awaitable<std::pair<error_code, size_t>> SmtpStream::read_some(std::span<char> into) {
  const net::mutable_buffer buffer(into.data(), into.size());
  if (state_ == State::kPlain) {
    auto [ec, n] = co_await socket_.async_read_some(buffer, kAsTuple);
    co_return std::make_pair(ec, n);
  }
  if (state_ != State::kTls) co_return std::make_pair(error_code(net::error::not_connected), 0);
  auto [ec, n] = co_await tls_->stream.async_read_some(buffer, kAsTuple);
  if (!ec) co_return std::make_pair(ec, n);
  if (ec != net::error::operation_aborted) state_ = State::kFailed;
  // A TLS peer that closes TCP without close_notify is an ordinary EOF here.
  if (is_eof(ec)) co_return std::make_pair(error_code(net::error::eof), size_t{0});
  co_return std::make_pair(ec, size_t{0});
}

net::awaitable<error_code> SmtpStream::write(std::string_view bytes) {
  const net::const_buffer buffer(bytes.data(), bytes.size());
  if (state_ == State::kPlain) {
    auto [ec, n] = co_await net::async_write(socket_, buffer, kAsTuple);
    (void)n;
    co_return ec;
  }
  if (state_ != State::kTls) co_return error_code(net::error::not_connected);
  auto [ec, n] = co_await net::async_write(tls_->stream, buffer, kAsTuple);
  (void)n;
  if (ec && ec != net::error::operation_aborted) state_ = State::kFailed;
  co_return ec;
}

net::awaitable<error_code> SmtpStream::handshake(std::shared_ptr<TlsContext> ctx) {
  if (state_ != State::kPlain || ctx == nullptr) co_return error_code(net::error::invalid_argument);
  tls_ = std::make_unique<Tls>(socket_, std::move(ctx));
  state_ = State::kHandshaking;
  auto [ec] = co_await tls_->stream.async_handshake(ssl::stream_base::server, kAsTuple);
  state_ = ec ? State::kFailed : State::kTls;
  co_return ec;
}

std::optional<TlsInfo> SmtpStream::tls_info() const {
  if (state_ != State::kTls) return std::nullopt;
  SSL* ssl_handle = tls_->stream.native_handle();
  const char* version = SSL_get_version(ssl_handle);
  const char* cipher = SSL_get_cipher_name(ssl_handle);
  return TlsInfo{version != nullptr ? version : "unknown", cipher != nullptr ? cipher : "unknown"};
}

void SmtpStream::write_now(std::string_view bytes) {
  if (state_ == State::kHandshaking || state_ == State::kFailed) return;
  error_code ec;
  socket_.non_blocking(true, ec);
  if (ec) return;
  const net::const_buffer buffer(bytes.data(), bytes.size());
  if (state_ == State::kPlain) {
    socket_.write_some(buffer, ec);
  } else {
    // Synchronous SSL write on a non-blocking socket: what does not fit fails
    // with would_block instead of waiting.
    net::write(tls_->stream, buffer, ec);
  }
}

void SmtpStream::close() {
  error_code ec;
  if (state_ == State::kTls) {
    // close_notify, best effort: the socket is non-blocking, so the wait for
    // the peer's close_notify ends at once with would_block.
    socket_.non_blocking(true, ec);
    tls_->stream.shutdown(ec);
  }
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
}

}  // namespace holdd
