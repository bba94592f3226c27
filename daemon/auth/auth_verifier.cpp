#include "holdd/auth/auth_verifier.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <utility>

#include "holdd/auth/dkim.h"
#include "holdd/auth/dmarc.h"
#include "holdd/auth/spf.h"

namespace holdd::auth {

Result<std::unique_ptr<AuthVerifier>> AuthVerifier::create(const AuthConfig& config,
                                                           AuthVerifierOptions options) {
  Result<Resolver> resolver = Resolver::create(config.nameservers, config.dns_timeout);
  if (!resolver) return resolver.status();
  return std::unique_ptr<AuthVerifier>(new AuthVerifier(config, std::move(*resolver), options));
}

AuthVerifier::AuthVerifier(const AuthConfig& config, Resolver resolver, AuthVerifierOptions options)
    : config_(config),
      resolver_(std::move(resolver)),
      time_limit_(options.time_limit.count() > 0 ? options.time_limit : 2 * config.dns_timeout),
      pool_(std::max<std::size_t>(options.threads, 1)) {}

AuthVerifier::~AuthVerifier() { pool_.join(); }

AuthResults AuthVerifier::check(const AuthInput& input, Resolver::Clock::time_point deadline) const {
  Resolver resolver = resolver_;
  resolver.set_deadline(deadline);
  AuthResults r;
  if (config_.spf) {
    r.spf = check_spf(resolver, input.client_ip, input.helo, input.mail_from, config_.authserv_id);
  }
  if (config_.dkim) r.dkim = verify_dkim(resolver, input.content);
  if (config_.dmarc) {
    // DMARC builds on the checks that are enabled; a disabled one counts as
    // not passed.
    r.dmarc = check_dmarc(resolver, input.content, r.spf ? &*r.spf : nullptr,
                          r.dkim ? &*r.dkim : nullptr);
  }
  return r;
}

AuthResults AuthVerifier::verify_now(const AuthInput& input) const {
  return check(input, Resolver::Clock::now() + time_limit_);
}

std::string AuthVerifier::failure_header() const {
  AuthResults r;
  if (config_.spf) r.spf = SpfResult{Verdict::kTemperror, false, "", "", "internal error"};
  if (config_.dkim) r.dkim = DkimResult{{}, Verdict::kTemperror, "internal error"};
  if (config_.dmarc) r.dmarc = DmarcResult{Verdict::kTemperror, "", "", "internal error"};
  return format_authentication_results(config_.authserv_id, r);
}

net::awaitable<std::string> AuthVerifier::verify(const AuthInput& input) {
  if (!enabled()) co_return std::string();
  // The clock starts now, so time spent queued for a pool thread counts too.
  const Resolver::Clock::time_point deadline = Resolver::Clock::now() + time_limit_;
  std::string header;
  try {
    // Named, not a temporary inside co_await (g++ 12 miscompiles that). co_spawn
    // keeps the lambda alive while its coroutine runs; `input` lives in our
    // caller's frame, which waits for it.
    auto work = [this, &input, deadline]() -> net::awaitable<std::string> {
      co_return format_authentication_results(config_.authserv_id, check(input, deadline));
    };
    header = co_await net::co_spawn(pool_.get_executor(), std::move(work), net::use_awaitable);
  } catch (const std::exception& e) {
    spdlog::error("auth: verification failed: {}", e.what());
    header = failure_header();
  }
  co_return header;
}

}  // namespace holdd::auth
