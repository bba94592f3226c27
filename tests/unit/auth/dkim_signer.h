#pragma once
// DKIM test material made at test time: an RSA key pair (OpenSSL), its DNS TXT
// record for dnsmasq, and messages signed with libopendkim's dkim_sign.
#include <stdbool.h>  // dkim.h uses _Bool

#include <dkim.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

namespace holdd::auth::testing {

struct DkimKey {
  std::string private_pem;
  std::string public_b64;  // SubjectPublicKeyInfo, DER, base64: the p= of the record

  static DkimKey generate(unsigned bits = 2048) {
    EVP_PKEY* pkey = EVP_RSA_gen(bits);
    if (pkey == nullptr) throw std::runtime_error("EVP_RSA_gen failed");
    DkimKey k;
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, pkey, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    k.private_pem.assign(data, static_cast<std::size_t>(n));
    BIO_free(bio);
    unsigned char* der = nullptr;
    int der_len = i2d_PUBKEY(pkey, &der);
    std::vector<unsigned char> b64(4 * ((static_cast<std::size_t>(der_len) + 2) / 3) + 1);
    int b64_len = EVP_EncodeBlock(b64.data(), der, der_len);
    k.public_b64.assign(reinterpret_cast<char*>(b64.data()), static_cast<std::size_t>(b64_len));
    OPENSSL_free(der);
    EVP_PKEY_free(pkey);
    return k;
  }

  // dnsmasq option publishing the key at <selector>._domainkey.<domain>, split
  // into character-strings of at most 200 octets (a TXT string holds 255).
  std::string txt_record(const std::string& selector, const std::string& domain) const {
    std::string text = "v=DKIM1; k=rsa; p=" + public_b64;
    std::string option = "--txt-record=" + selector + "._domainkey." + domain;
    for (std::size_t i = 0; i < text.size(); i += 200) option += "," + text.substr(i, 200);
    return option;
  }
};

// `message` (CRLF) with a DKIM-Signature field prepended (relaxed/relaxed,
// rsa-sha256), as a signing MTA would send it.
inline std::string dkim_signed(const std::string& message, const DkimKey& key,
                               const std::string& selector, const std::string& domain) {
  static DKIM_LIB* lib = dkim_init(nullptr, nullptr);
  DKIM_STAT st = DKIM_STAT_OK;
  static const unsigned char kId[] = "test";
  DKIM* d = dkim_sign(lib, kId, nullptr,
                      reinterpret_cast<dkim_sigkey_t>(const_cast<char*>(key.private_pem.c_str())),
                      reinterpret_cast<const unsigned char*>(selector.c_str()),
                      reinterpret_cast<const unsigned char*>(domain.c_str()), DKIM_CANON_RELAXED,
                      DKIM_CANON_RELAXED, DKIM_SIGN_RSASHA256, -1, &st);
  if (d == nullptr) throw std::runtime_error("dkim_sign failed");
  auto* bytes = reinterpret_cast<unsigned char*>(const_cast<char*>(message.data()));
  st = dkim_chunk(d, bytes, message.size());
  if (st == DKIM_STAT_OK) st = dkim_chunk(d, nullptr, 0);
  if (st == DKIM_STAT_OK) st = dkim_eom(d, nullptr);
  const std::string prefix = "DKIM-Signature: ";
  unsigned char* hdr = nullptr;
  size_t len = 0;
  if (st == DKIM_STAT_OK) st = dkim_getsighdr_d(d, prefix.size(), &hdr, &len);
  if (st != DKIM_STAT_OK) {
    dkim_free(d);
    throw std::runtime_error(std::string("signing failed: ") + dkim_getresultstr(st));
  }
  std::string value;
  for (size_t i = 0; i < len; ++i) {  // folded with "\n\t": make it CRLF
    if (hdr[i] == '\n') value += "\r";
    value += static_cast<char>(hdr[i]);
  }
  dkim_free(d);
  return prefix + value + "\r\n" + message;
}

// The first 8 characters of the first b= tag in `message` ("" if none).
inline std::string b_prefix_of(const std::string& message) {
  static const std::regex b_tag(R"([;\s]b=\s*([A-Za-z0-9+/]{8}))");
  std::smatch m;
  return std::regex_search(message, m, b_tag) ? m[1].str() : "";
}

}  // namespace holdd::auth::testing
