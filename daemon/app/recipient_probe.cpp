#include "holdd/app/recipient_probe.h"

#include <algorithm>

#include <boost/asio/this_coro.hpp>

#include "holdd/relay/upstream_client.h"

namespace holdd {

namespace {

smtp::UpstreamAnswer::Verdict from_probe(ProbeResult::Verdict v) {
  switch (v) {
    case ProbeResult::Verdict::kAccepted: return smtp::UpstreamAnswer::Verdict::kAccepted;
    case ProbeResult::Verdict::kRefused: return smtp::UpstreamAnswer::Verdict::kRefused;
    case ProbeResult::Verdict::kUnknown: break;
  }
  return smtp::UpstreamAnswer::Verdict::kUnknown;
}

// Takes its arguments by value: it outlives the caller's copy of the config.
net::awaitable<smtp::UpstreamAnswer> probe_once(std::optional<UpstreamConfig> upstream, std::string helo,
                                                std::string which, std::string address) {
  if (!upstream) co_return smtp::UpstreamAnswer{smtp::UpstreamAnswer::Verdict::kUnknown,
                                                "no [upstream." + which + "] configured"};
  upstream->connect_timeout = std::min(upstream->connect_timeout, kVerifyConnectTimeout);
  upstream->command_timeout = std::min(upstream->command_timeout, kVerifyCommandTimeout);
  UpstreamClient client(co_await net::this_coro::executor, std::move(*upstream), std::move(helo));
  ProbeResult result = co_await client.probe(address);
  co_await client.quit();
  co_return smtp::UpstreamAnswer{from_probe(result.verdict), std::move(result.reply)};
}

}  // namespace

smtp::RecipientVerifier::Probe make_recipient_probe(std::function<const Config&()> config) {
  return [config = std::move(config)](std::string which, std::string address) {
    const Config& c = config();
    std::optional<UpstreamConfig> upstream = which == "old" ? c.upstream_old : c.upstream_new;
    return probe_once(std::move(upstream), c.server.hostname, std::move(which), std::move(address));
  };
}

smtp::RecipientVerifier::Options recipient_verify_options(const Config& config) {
  smtp::RecipientVerifier::Options options;
  options.upstreams.clear();
  if (config.upstream_old) options.upstreams.push_back("old");
  if (config.upstream_new) options.upstreams.push_back("new");
  options.cache_for = config.directory.verify_cache;
  return options;
}

}  // namespace holdd
