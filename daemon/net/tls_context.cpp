#include "holdd/net/tls_context.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include <boost/asio/ssl/context.hpp>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace holdd {
namespace {

namespace ssl = boost::asio::ssl;

// TLS 1.2 only (1.3 suites are OpenSSL's defaults, all AEAD with forward
// secrecy): ECDHE key exchange with AES-GCM or ChaCha20-Poly1305, as Mozilla's
// "intermediate" profile without the DHE suites.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// Every error OpenSSL queued, most specific first, and an empty queue after.
std::string openssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(e);
    const char* lib = ERR_lib_error_string(e);
    std::string one = reason != nullptr ? reason : "error " + std::to_string(ERR_GET_REASON(e));
    if (lib != nullptr) one += std::string(" (") + lib + ")";
    out = out.empty() ? one : one + ": " + out;
  }
  return out.empty() ? std::string("unknown OpenSSL error") : out;
}

// OpenSSL checks a key against the certificate loaded before it.
bool key_mismatch(unsigned long e) {
  return ERR_GET_LIB(e) == ERR_LIB_X509 &&
         (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH ||
          ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH);
}

std::string quoted(const std::string& path) { return "\"" + path + "\""; }

// An unreadable file gets errno's words rather than OpenSSL's "system lib".
std::string unreadable(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return std::strerror(errno);
  std::fclose(f);
  return {};
}

// An encrypted key would make OpenSSL prompt on the terminal: a daemon has none.
int no_passphrase(char*, int, int, void*) { return 0; }

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

std::string subject_of(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return "?";
  X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  std::string s = bio_text(bio);
  BIO_free(bio);
  return s;
}

std::string not_after_of(X509* cert) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) return "?";
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string fingerprint_of(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &len) != 1) return "?";
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    if (i > 0) out += ':';
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xF];
  }
  return out;
}

}  // namespace

TlsContext::~TlsContext() = default;

Result<std::shared_ptr<TlsContext>> TlsContext::load(const Files& files) {
  const std::string cert_name = "tls.certificate " + quoted(files.certificate);
  const std::string key_name = "tls.private_key " + quoted(files.private_key);
  if (files.certificate.empty() || files.private_key.empty()) {
    return Status::invalid("tls: certificate and private_key must both be set");
  }
  if (std::string why = unreadable(files.certificate); !why.empty()) {
    return Status::invalid(cert_name + ": cannot read: " + why);
  }
  if (std::string why = unreadable(files.private_key); !why.empty()) {
    return Status::invalid(key_name + ": cannot read: " + why);
  }

  ERR_clear_error();
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  SSL_CTX* h = ctx->native_handle();
  if (SSL_CTX_set_min_proto_version(h, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(h, kTls12Ciphers) != 1) {
    return Status::io_error("tls: cannot set up the TLS context: " + openssl_errors());
  }
  // No compression (CRIME); no renegotiation (a client-initiated one is a
  // cheap CPU attack and nothing in SMTP needs it).
  SSL_CTX_set_options(h, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                             SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1);
  // Thousands of idle connections should not each keep 2 x 16 KiB of buffers.
  SSL_CTX_set_mode(h, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_default_passwd_cb(h, &no_passphrase);

  if (SSL_CTX_use_certificate_chain_file(h, files.certificate.c_str()) != 1) {
    return Status::invalid(cert_name + ": " + openssl_errors());
  }
  if (SSL_CTX_use_PrivateKey_file(h, files.private_key.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (key_mismatch(ERR_peek_last_error())) {
      return Status::invalid(key_name + " does not belong to " + cert_name + ": " +
                             openssl_errors());
    }
    return Status::invalid(key_name + ": " + openssl_errors());
  }
  if (SSL_CTX_check_private_key(h) != 1) {
    return Status::invalid(key_name + " does not belong to " + cert_name + ": " +
                           openssl_errors());
  }

  std::shared_ptr<TlsContext> out(new TlsContext());
  X509* leaf = SSL_CTX_get0_certificate(h);
  if (leaf != nullptr) {
    out->fingerprint_ = fingerprint_of(leaf);
    out->expired_ = X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0;
    out->summary_ = "subject " + quoted(subject_of(leaf)) + " expires " + not_after_of(leaf) +
                    (out->expired_ ? " (EXPIRED)" : "") + " sha256 " + out->fingerprint_;
  }
  out->ctx_ = std::move(ctx);
  ERR_clear_error();
  return out;
}

ClientTlsContext::~ClientTlsContext() = default;

Result<std::shared_ptr<ClientTlsContext>> ClientTlsContext::load(bool verify,
                                                                 const std::string& ca_file) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression);
  if (verify) {
    boost::system::error_code ec;
    if (ca_file.empty()) {
      ctx->set_default_verify_paths(ec);
      if (ec) return Status::io_error("cannot load the system CA store: " + ec.message());
    } else {
      ctx->load_verify_file(ca_file, ec);
      if (ec) return Status::io_error("cannot load CA file " + ca_file + ": " + ec.message());
    }
  }
  std::shared_ptr<ClientTlsContext> out(new ClientTlsContext());
  out->ctx_ = std::move(ctx);
  out->verify_ = verify;
  return out;
}

}  // namespace holdd
