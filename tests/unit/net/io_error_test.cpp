#include "holdd/net/io_error.h"

#include <doctest/doctest.h>

#include <string>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>

namespace holdd {
namespace {

namespace net = boost::asio;
using boost::system::error_code;
using Code = Status::Code;

// What OpenSSL puts in an error_code when it refuses the peer's certificate.
error_code certificate_verify_failed() {
  // Its reason strings, as making any ssl::context loads them (else the text
  // is "asio.ssl error").
  OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS, nullptr);
  return {static_cast<int>(ERR_PACK(ERR_LIB_SSL, 0, SSL_R_CERTIFICATE_VERIFY_FAILED)),
          net::error::get_ssl_category()};
}

TEST_CASE("from_io_error: cancel is kCancelled, every other failure kTemporary, never permanent") {
  struct Case {
    const char* what;
    error_code ec;
    Code code;
    bool eof;
  };
  const Case cases[] = {
      {"EOF", net::error::eof, Code::kTemporary, true},
      {"TLS peer gone without close_notify", net::ssl::error::stream_truncated, Code::kTemporary,
       true},
      {"holdd cancelled it", net::error::operation_aborted, Code::kCancelled, false},
      {"reset", net::error::connection_reset, Code::kTemporary, false},
      {"write after the peer left", net::error::broken_pipe, Code::kTemporary, false},
      {"connect refused", net::error::connection_refused, Code::kTemporary, false},
      {"network unreachable", net::error::network_unreachable, Code::kTemporary, false},
      // The kernel gave up on the connection: lost, like a reset. kTimeout is
      // for holdd's own deadlines, which never arrive here as an error code.
      {"kernel ETIMEDOUT", net::error::timed_out, Code::kTemporary, false},
      {"resolve: no such host", net::error::host_not_found, Code::kTemporary, false},
      {"resolve: DNS trouble", net::error::host_not_found_try_again, Code::kTemporary, false},
      {"stream unusable after a failure", net::error::not_connected, Code::kTemporary, false},
      {"TLS: certificate refused", certificate_verify_failed(), Code::kTemporary, false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    const Status s = from_io_error(c.ec, "lost connection to mx.test:25");
    CHECK(s.code() == c.code);
    CHECK(!s.is_permanent());
    CHECK(s.is_temporary());
    // The context first, then the error's own words.
    CHECK(s.message() == "lost connection to mx.test:25: " + c.ec.message());
    CHECK(is_eof(c.ec) == c.eof);
    CHECK(is_cancelled(c.ec) == (c.code == Code::kCancelled));
  }
}

TEST_CASE("from_io_error: no error is ok") {
  const Status s = from_io_error(error_code(), "connect to mx.test:25");
  CHECK(s.is_ok());
  CHECK(s.message().empty());
  CHECK(!is_eof(error_code()));
  CHECK(!is_cancelled(error_code()));
}

TEST_CASE("from_io_error: the message reads as the failure, with a detail in parentheses") {
  struct Case {
    error_code ec;
    const char* context;
    const char* detail;
    std::string expected;
  };
  const Case cases[] = {
      {net::error::connection_refused, "connect to 127.0.0.1:2525", "",
       "connect to 127.0.0.1:2525: Connection refused"},
      {net::error::operation_aborted, "TLS handshake failed", "",
       "TLS handshake failed: Operation canceled"},
      {certificate_verify_failed(), "TLS handshake with [::1]:25 failed", "hostname mismatch",
       "TLS handshake with [::1]:25 failed: " + certificate_verify_failed().message() +
           " (hostname mismatch)"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.expected);
    CHECK(from_io_error(c.ec, c.context, c.detail).message() == c.expected);
  }
  // OpenSSL's reason text, not a number.
  CHECK(certificate_verify_failed().message().find("certificate verify failed") !=
        std::string::npos);
}

}  // namespace
}  // namespace holdd
