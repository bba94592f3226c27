#pragma once
// The OpenSSL contexts for STARTTLS (RFC 3207), one for each side:
//
// A TlsContext is the server side of inbound STARTTLS: one OpenSSL context made
// from the [tls] certificate chain and private key, shared by every session
// that starts TLS while it is current. TLS 1.2 is the minimum (1.3 preferred,
// with OpenSSL's default suites); TLS 1.2 offers only ECDHE with AEAD ciphers;
// no compression (CRIME), no renegotiation. Reload (SIGHUP) makes a new
// TlsContext and hands it to SmtpServer::set_tls(); a session keeps the
// context it started TLS with (it holds a shared_ptr), so replacing one never
// disturbs a connection.
//
// A ClientTlsContext is the client side of outbound STARTTLS, towards an
// upstream: TLS 1.2 or later, no compression, and when it verifies, the CA
// store the server's certificate must chain to. The upstream client makes one
// at its first STARTTLS and keeps it for its later connections.
//
// Both take plain settings, not config's TlsConfig and UpstreamConfig: net/
// sits beside config/, not above it.
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

class ClientTlsContext {
 public:
  // With `verify` (tls = "required"), the server's certificate must chain to
  // the CA certificates in `ca_file` (PEM), or to the system's store when
  // ca_file is empty; they are loaded now (blocking file I/O: call at
  // start-up, reload or the first STARTTLS). Without it nothing is loaded and
  // any certificate is taken (opportunistic TLS, RFC 7435, encrypts against
  // passive listeners only). Fails with kIOError: "cannot load the system CA
  // store: ..." or "cannot load CA file /x.pem: ...".
  static Result<std::shared_ptr<ClientTlsContext>> load(bool verify, const std::string& ca_file);

  ~ClientTlsContext();
  ClientTlsContext(const ClientTlsContext&) = delete;
  ClientTlsContext& operator=(const ClientTlsContext&) = delete;

  // The Asio context for ssl::stream; OpenSSL lets any number of connections
  // use it at once.
  boost::asio::ssl::context& native() { return *ctx_; }
  // Certificates are verified: SmtpStream::handshake() then checks the name too.
  bool verifies() const { return verify_; }

 private:
  ClientTlsContext() = default;

  std::unique_ptr<boost::asio::ssl::context> ctx_;
  bool verify_ = false;
};

}  // namespace holdd
