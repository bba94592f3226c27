#pragma once
// The daemon's answer to smtp::RecipientVerifier's "does this upstream know the
// address?": relay's UpstreamClient::probe (the probe of `holdctl probe`), on a
// connection of its own, with timeouts cut short so that an RCPT is not kept
// waiting for minutes by a silent upstream.
#include <functional>

#include "holdd/config/config.h"
#include "holdd/smtp/recipient_verifier.h"

namespace holdd {

// Longest a probe waits to connect, and for each reply (an upstream's own
// connect_timeout/command_timeout apply when they are shorter).
inline constexpr std::chrono::seconds kVerifyConnectTimeout{10};
inline constexpr std::chrono::seconds kVerifyCommandTimeout{20};

// `config` gives the configuration in force (SIGHUP replaces it); it is read
// before the probe's first wait.
smtp::RecipientVerifier::Probe make_recipient_probe(std::function<const Config&()> config);

// The verifier's options under `config`: the configured upstreams, old first.
smtp::RecipientVerifier::Options recipient_verify_options(const Config& config);

}  // namespace holdd
