#pragma once
// Self-signed certificates for the STARTTLS tests, made at test time with the
// openssl CLI (P-256 keys: quick to generate). Test code only.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace holdd::testing {

struct TestCertificate {
  std::filesystem::path cert;  // PEM certificate
  std::filesystem::path key;   // PEM private key, unencrypted
};

// "<dir>/<name>.crt" and "<dir>/<name>.key" for CN=<cn>, valid for a day.
inline TestCertificate make_test_certificate(const std::filesystem::path& dir,
                                             const std::string& name,
                                             const std::string& cn = "mx.test") {
  TestCertificate out{dir / (name + ".crt"), dir / (name + ".key")};
  const std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1"
      " -subj /CN=" + cn + " -keyout '" + out.key.string() + "' -out '" + out.cert.string() +
      "' >/dev/null 2>&1";
  REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, "openssl CLI failed: " << cmd);
  return out;
}

// What `cmd` printed on stdout (for `openssl x509 -fingerprint` cross-checks).
inline std::string command_output(const std::string& cmd) {
  std::string out;
  if (std::FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[512];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ::pclose(p);
  }
  return out;
}

}  // namespace holdd::testing
