#pragma once
// AuthVerifier is the edge-trust check at the end of DATA: SPF, DKIM and DMARC
// for one message, as the text of one Authentication-Results: header field
// (RFC 8601), never a rejection. The blocking parts (libspf2, libopendkim, DNS)
// run on the verifier's own bounded thread pool; verify() suspends the caller
// meanwhile and resumes it on its own executor. A whole verification is bounded
// by `time_limit`: look-ups after it give temperror.
//
// Lifetime: destroy the AuthVerifier (its destructor waits for the pool's work)
// before the io_context and the content of any verification still in flight.
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include "holdd/auth/auth_results.h"
#include "holdd/auth/resolver.h"
#include "holdd/base/status.h"
#include "holdd/config/config.h"

namespace holdd::auth {

namespace net = boost::asio;

// One message, as the SMTP session knows it.
struct AuthInput {
  std::string client_ip;      // "192.0.2.1", "2001:db8::1"
  std::string helo;           // HELO/EHLO argument
  std::string mail_from;      // reverse-path without brackets; "" for <>
  std::string_view content;   // CRLF message as received, without holdd's own headers;
                              // must stay valid until verify() completes
};

struct AuthVerifierOptions {
  std::size_t threads = 4;                   // the pool's size: verifications at once
  std::chrono::seconds time_limit{0};        // per message; 0: twice [auth] dns_timeout
};

class AuthVerifier {
 public:
  // Fails only on an invalid [auth] nameservers entry (load_config has already
  // rejected those).
  static Result<std::unique_ptr<AuthVerifier>> create(const AuthConfig& config,
                                                      AuthVerifierOptions options = {});
  ~AuthVerifier();  // waits for the verifications in flight (bounded by time_limit)
  AuthVerifier(const AuthVerifier&) = delete;
  AuthVerifier& operator=(const AuthVerifier&) = delete;

  // The Authentication-Results: field for `input`, ending in CRLF (folded
  // lines), with the methods enabled in [auth]; "" when all three are off.
  // Never throws: trouble becomes temperror. Call from any coroutine.
  net::awaitable<std::string> verify(const AuthInput& input);

  // The same work, blocking the calling thread (tests, tools).
  AuthResults verify_now(const AuthInput& input) const;

  // RFC 8601 section 5: removes forged Authentication-Results: fields that
  // claim our authserv-id. Run it on the received content after verify() (a
  // DKIM signature may cover such a field) and before storing the message.
  std::size_t remove_forged_results(std::string& message) const {
    return remove_own_results(message, config_.authserv_id);
  }
  std::string without_forged_results(std::string_view message) const {
    return without_own_results(message, config_.authserv_id);
  }

  bool enabled() const { return config_.spf || config_.dkim || config_.dmarc; }
  const std::string& authserv_id() const { return config_.authserv_id; }

 private:
  AuthVerifier(const AuthConfig& config, Resolver resolver, AuthVerifierOptions options);
  AuthResults check(const AuthInput& input, Resolver::Clock::time_point deadline) const;
  // The header when the work itself failed (a bug): temperror for each method.
  std::string failure_header() const;

  AuthConfig config_;
  Resolver resolver_;  // without deadline; each verification copies it and sets one
  std::chrono::seconds time_limit_;
  net::thread_pool pool_;
};

}  // namespace holdd::auth
