// TlsContext::load and ClientTlsContext::load against certificates and keys
// made at test time: what loads, what each bad file is reported as, and the
// protocol floor.
#include "holdd/net/tls_context.h"

#include <doctest/doctest.h>

#include "../temp_dir.h"

#include <boost/asio/ssl/context.hpp>
#include <filesystem>
#include <fstream>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <random>
#include <sstream>

#include "../test_certificate.h"

namespace holdd {
namespace {

namespace fs = std::filesystem;
using testing::make_test_certificate;
using testing::TestCertificate;

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST_CASE("TlsContext: a certificate and its key load: TLS 1.2 floor, no compression or renegotiation") {
  TempDir dir;
  TestCertificate c = make_test_certificate(dir.path, "mx", "mx.example.com");
  Result<std::shared_ptr<TlsContext>> tls = TlsContext::load({c.cert.string(), c.key.string()});
  REQUIRE_MESSAGE(tls.ok(), tls.status().to_string());
  TlsContext& ctx = **tls;
  CHECK(!ctx.expired());
  CHECK(contains(ctx.summary(), "subject \"CN=mx.example.com\" expires 20"));
  // The fingerprint is the one `openssl x509` shows for the file.
  const std::string shown = testing::command_output(
      "openssl x509 -noout -fingerprint -sha256 -in '" + c.cert.string() + "'");
  REQUIRE(contains(shown, "="));
  std::string expected = shown.substr(shown.find('=') + 1);
  while (!expected.empty() && (expected.back() == '\n' || expected.back() == '\r')) expected.pop_back();
  CHECK(ctx.sha256_fingerprint() == expected);
  CHECK(contains(ctx.summary(), "sha256 " + expected));

  SSL_CTX* h = ctx.native().native_handle();
  CHECK(SSL_CTX_get_min_proto_version(h) == TLS1_2_VERSION);
  const uint64_t options = SSL_CTX_get_options(h);
  CHECK((options & SSL_OP_NO_COMPRESSION) != 0);
  CHECK((options & SSL_OP_NO_RENEGOTIATION) != 0);
  // TLS 1.2 suites: ECDHE with AEAD only.
  SSL* ssl = SSL_new(h);
  REQUIRE(ssl != nullptr);
  STACK_OF(SSL_CIPHER)* ciphers = SSL_get_ciphers(ssl);
  int tls12 = 0;
  for (int i = 0; i < sk_SSL_CIPHER_num(ciphers); ++i) {
    const SSL_CIPHER* cipher = sk_SSL_CIPHER_value(ciphers, i);
    const std::string name = SSL_CIPHER_get_name(cipher);
    CAPTURE(name);
    if (name.rfind("TLS_", 0) == 0) continue;  // a TLS 1.3 suite: OpenSSL's defaults
    ++tls12;
    CHECK(name.rfind("ECDHE-", 0) == 0);
    CHECK(SSL_CIPHER_is_aead(cipher) == 1);
  }
  CHECK(tls12 > 0);
  SSL_free(ssl);
}

TEST_CASE("TlsContext: a bad file is refused with the key and the file named") {
  TempDir dir;
  TestCertificate good = make_test_certificate(dir.path, "good");
  TestCertificate other = make_test_certificate(dir.path, "other");
  const fs::path garbage = dir.path / "garbage.pem";
  write_file(garbage, "this is not PEM\n");
  const fs::path missing = dir.path / "missing.pem";
  const fs::path encrypted = dir.path / "encrypted.key";
  REQUIRE(std::system(("openssl pkey -in '" + good.key.string() + "' -aes256 -passout pass:secret -out '" +
                       encrypted.string() + "' >/dev/null 2>&1")
                          .c_str()) == 0);

  struct Case {
    std::string what;
    fs::path cert, key;
    std::string expected;  // in the message
  };
  const Case cases[] = {
      {"missing certificate", missing, good.key, "tls.certificate \"" + missing.string() +
                                                     "\": cannot read: No such file or directory"},
      {"missing key", good.cert, missing, "tls.private_key \"" + missing.string() +
                                              "\": cannot read: No such file or directory"},
      {"certificate is not PEM", garbage, good.key, "tls.certificate \"" + garbage.string() + "\": "},
      {"key is not PEM", good.cert, garbage, "tls.private_key \"" + garbage.string() + "\": "},
      {"a key is not a certificate", good.key, good.key, "tls.certificate \""},
      {"key of another certificate", good.cert, other.key,
       "tls.private_key \"" + other.key.string() + "\" does not belong to tls.certificate \"" +
           good.cert.string() + "\""},
      // Never a passphrase prompt on a terminal.
      {"encrypted key", good.cert, encrypted, "tls.private_key \"" + encrypted.string() + "\": "},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    Result<std::shared_ptr<TlsContext>> tls = TlsContext::load({c.cert.string(), c.key.string()});
    REQUIRE(!tls.ok());
    CAPTURE(tls.status().message());
    CHECK(contains(tls.status().message(), c.expected));
  }
}

TEST_CASE("TlsContext: a chain file serves the leaf first and the intermediates after it") {
  TempDir dir;
  TestCertificate a = make_test_certificate(dir.path, "a", "leaf.test");
  TestCertificate b = make_test_certificate(dir.path, "b", "intermediate.test");
  std::ifstream ca(a.cert), cb(b.cert);
  std::stringstream chain;
  chain << ca.rdbuf() << cb.rdbuf();
  write_file(dir.path / "chain.pem", chain.str());
  Result<std::shared_ptr<TlsContext>> tls =
      TlsContext::load({(dir.path / "chain.pem").string(), a.key.string()});
  REQUIRE_MESSAGE(tls.ok(), tls.status().to_string());
  CHECK(contains((*tls)->summary(), "CN=leaf.test"));  // the leaf is the first one
  STACK_OF(X509)* extra = nullptr;
  SSL_CTX_get0_chain_certs((*tls)->native().native_handle(), &extra);
  CHECK(extra != nullptr);
  CHECK(sk_X509_num(extra) == 1);
}

TEST_CASE("ClientTlsContext: TLS 1.2 floor, no compression, and a CA store only when it verifies") {
  TempDir dir;
  TestCertificate ca = make_test_certificate(dir.path, "ca", "ca.test");
  const fs::path garbage = dir.path / "garbage.pem";
  write_file(garbage, "not a certificate\n");
  const fs::path missing = dir.path / "missing.pem";

  struct Case {
    std::string what;
    bool verify;
    std::string ca_file;
    int trusted;                // certificates in the store (-1: not checked)
    std::string error_start;    // "" when it loads
  };
  const Case cases[] = {
      {"verify against a CA file", true, ca.cert.string(), 1, ""},
      {"verify against the system store", true, "", -1, ""},
      // Opportunistic TLS loads nothing, so a bad file cannot stop it.
      {"no verification", false, garbage.string(), 0, ""},
      {"a CA file without a certificate", true, garbage.string(), 0,
       "cannot load CA file " + garbage.string() + ": "},
      {"a missing CA file", true, missing.string(), 0,
       "cannot load CA file " + missing.string() + ": "},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    Result<std::shared_ptr<ClientTlsContext>> tls = ClientTlsContext::load(c.verify, c.ca_file);
    if (!c.error_start.empty()) {
      REQUIRE(!tls.ok());
      CAPTURE(tls.status().message());
      CHECK(tls.status().code() == Status::Code::kIOError);
      CHECK(tls.status().message().rfind(c.error_start, 0) == 0);
      continue;
    }
    REQUIRE_MESSAGE(tls.ok(), tls.status().to_string());
    ClientTlsContext& ctx = **tls;
    CHECK(ctx.verifies() == c.verify);
    SSL_CTX* h = ctx.native().native_handle();
    CHECK(SSL_CTX_get_min_proto_version(h) == TLS1_2_VERSION);
    CHECK((SSL_CTX_get_options(h) & SSL_OP_NO_COMPRESSION) != 0);
    if (c.trusted >= 0) {
      CHECK(sk_X509_OBJECT_num(X509_STORE_get0_objects(SSL_CTX_get_cert_store(h))) == c.trusted);
    }
  }
}

}  // namespace
}  // namespace holdd
