#include "holdd/net/smtp_stream.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "holdd/net/io_error.h"
#include "holdd/net/tls_context.h"

namespace holdd {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using net::ip::tcp;
using boost::system::error_code;
constexpr auto kAsTuple = net::as_tuple(net::use_awaitable);

bool is_ip_literal(const std::string& name) {
  error_code ec;
  (void)net::ip::make_address(name, ec);
  return !ec;
}

}  // namespace

std::string host_port(const std::string& host, uint16_t port) {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

struct SmtpStream::Tls {
  Tls(tcp::socket& socket, std::shared_ptr<const void> owner, ssl::context& context)
      : context_owner(std::move(owner)), stream(socket, context) {}

  std::shared_ptr<const void> context_owner;  // outlives the SSL* made from it
  ssl::stream<tcp::socket&> stream;
};

SmtpStream::SmtpStream(tcp::socket socket) : socket_(std::move(socket)) {}

SmtpStream::SmtpStream(const net::any_io_executor& executor) : socket_(executor) {}

SmtpStream::~SmtpStream() = default;

net::awaitable<Status> SmtpStream::connect(const std::string& host, uint16_t port) {
  peer_ = host_port(host, port);
  tls_.reset();  // what disconnect() left
  state_ = State::kPlain;
  // Asynchronous: getaddrinfo runs on Asio's resolver thread, not the io thread.
  tcp::resolver resolver(socket_.get_executor());
  auto [rec, endpoints] = co_await resolver.async_resolve(host, std::to_string(port), kAsTuple);
  if (rec) co_return from_io_error(rec, "resolve " + host);
  auto [cec, endpoint] = co_await net::async_connect(socket_, endpoints, kAsTuple);
  (void)endpoint;
  co_return from_io_error(cec, "connect to " + peer_);
}

net::awaitable<std::pair<error_code, size_t>> SmtpStream::read_some(std::span<char> into) {
  const net::mutable_buffer buffer(into.data(), into.size());
  if (state_ == State::kPlain) {
    auto [ec, n] = co_await socket_.async_read_some(buffer, kAsTuple);
    co_return std::make_pair(ec, n);
  }
  if (state_ != State::kTls) co_return std::make_pair(error_code(net::error::not_connected), 0);
  auto [ec, n] = co_await tls_->stream.async_read_some(buffer, kAsTuple);
  if (!ec) co_return std::make_pair(ec, n);
  if (!is_cancelled(ec)) state_ = State::kFailed;
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
  if (ec && !is_cancelled(ec)) state_ = State::kFailed;
  co_return ec;
}

net::awaitable<Status> SmtpStream::handshake(std::shared_ptr<TlsContext> ctx) {
  const std::string_view failed = "TLS handshake failed";
  if (state_ != State::kPlain || ctx == nullptr) {
    co_return from_io_error(net::error::invalid_argument, failed);
  }
  ssl::context& native = ctx->native();
  tls_ = std::make_unique<Tls>(socket_, std::move(ctx), native);
  state_ = State::kHandshaking;
  auto [ec] = co_await tls_->stream.async_handshake(ssl::stream_base::server, kAsTuple);
  state_ = ec ? State::kFailed : State::kTls;
  co_return from_io_error(ec, failed);
}

net::awaitable<Status> SmtpStream::handshake(std::shared_ptr<ClientTlsContext> ctx,
                                             const std::string& name) {
  const std::string failed = "TLS handshake with " + peer_ + " failed";
  if (state_ != State::kPlain || ctx == nullptr) {
    co_return from_io_error(net::error::invalid_argument, failed);
  }
  const bool verify = ctx->verifies();
  ssl::context& native = ctx->native();
  tls_ = std::make_unique<Tls>(socket_, std::move(ctx), native);
  state_ = State::kHandshaking;
  SSL* ssl_handle = tls_->stream.native_handle();
  // SNI carries host names only (RFC 6066 3).
  if (!is_ip_literal(name)) SSL_set_tlsext_host_name(ssl_handle, name.c_str());
  if (verify) {
    // OpenSSL's own name check (what ssl::host_name_verification calls) set on
    // the SSL object, so a mismatch is reported as "hostname mismatch" in the
    // verify result rather than as an anonymous callback refusal.
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_handle);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int set = is_ip_literal(name) ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                                        : X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
    if (set != 1) {
      state_ = State::kFailed;
      co_return Status::invalid("cannot check TLS name \"" + name + "\"");
    }
    tls_->stream.set_verify_mode(ssl::verify_peer);
  } else {
    // Opportunistic TLS (RFC 7435) encrypts against passive listeners; an
    // unverifiable certificate must not push the mail back to plain text.
    tls_->stream.set_verify_mode(ssl::verify_none);
  }
  auto [ec] = co_await tls_->stream.async_handshake(ssl::stream_base::client, kAsTuple);
  state_ = ec ? State::kFailed : State::kTls;
  if (!ec) co_return Status::ok();
  const long verify_result = SSL_get_verify_result(ssl_handle);
  co_return from_io_error(ec, failed,
                          verify_result != X509_V_OK ? X509_verify_cert_error_string(verify_result)
                                                     : "");
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

void SmtpStream::disconnect() {
  error_code ignored;
  // Unlike close(): no close_notify and no shutdown(), as the upstream client
  // has always done. After QUIT or a failure there is nothing left to protect.
  // tls_ stays until connect(): an operation this cancels may still be
  // finishing on it.
  socket_.close(ignored);
  state_ = State::kPlain;
}

}  // namespace holdd
