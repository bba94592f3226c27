#pragma once
// A TlsContext is the server side of inbound STARTTLS (RFC 3207): one OpenSSL
// context made from the [tls] certificate chain and private key (config's
// TlsConfig, passed in as Files: net/ sits beside config/, not above it), shared by
// every session that starts TLS while it is current. TLS 1.2 is the minimum
// (1.3 preferred, with OpenSSL's default suites); TLS 1.2 offers only ECDHE
// with AEAD ciphers; no compression (CRIME), no renegotiation.
//
// Reload (SIGHUP) makes a new TlsContext and hands it to SmtpServer::set_tls();
// a session keeps the context it started TLS with (it holds a shared_ptr), so
// replacing one never disturbs a connection.
//
// This header stays free of OpenSSL and Asio SSL: only the files that do TLS
// I/O include <boost/asio/ssl/context.hpp> for native().
#include <memory>
#include <string>

#include "holdd/base/status.h"

namespace boost::asio::ssl {
class context;
}

namespace holdd {

class TlsContext {
 public:
  // The [tls] files.
  struct Files {
    std::string certificate;  // PEM chain: the leaf first, then intermediates
    std::string private_key;  // PEM, unencrypted
  };

  // Reads files.certificate and files.private_key and checks that they belong
  // together. Blocking file I/O: call at start-up or reload, not from a session.
  // A failure names the [tls] key and the file: `tls.certificate "/x.pem": no
  // certificate in the file (PEM: no start line)`.
  // REQUIRES: both files are set.
  static Result<std::shared_ptr<TlsContext>> load(const Files& files);

  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // The Asio context for ssl::stream. Not changed after load(); OpenSSL lets
  // any number of connections use it at once.
  boost::asio::ssl::context& native() { return *ctx_; }

  // For the log: `subject "CN=mx.example.com" expires 2026-12-01T00:00:00Z
  // sha256 AB:CD:...` (the fingerprint of the leaf certificate).
  const std::string& summary() const { return summary_; }
  // The leaf certificate's notAfter is in the past (still served: an expired
  // certificate beats plain text for opportunistic SMTP clients; logged loudly).
  bool expired() const { return expired_; }
  // "AB:CD:..." over the DER of the leaf certificate.
  const std::string& sha256_fingerprint() const { return fingerprint_; }

 private:
  TlsContext() = default;

  std::unique_ptr<boost::asio::ssl::context> ctx_;
  std::string summary_;
  std::string fingerprint_;
  bool expired_ = false;
};

}  // namespace holdd
