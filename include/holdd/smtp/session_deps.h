#pragma once
// What an SMTP session needs from the daemon (kept apart from session.h so that
// server.h, which the daemon includes, stays free of Asio's socket headers).
#include <cstdint>
#include <functional>
#include <memory>

#include "holdd/config/config.h"
#include "holdd/route/directory.h"
#include "holdd/smtp/annotator.h"
#include "holdd/smtp/intake_stats.h"
#include "holdd/smtp/recipient_verifier.h"
#include "holdd/spool/spool.h"

namespace holdd {
class TlsContext;
}  // namespace holdd

namespace holdd::smtp {

class MessageMemoryBudget;

// What a session needs from the daemon. Pointers are borrowed: they must
// outlive every session (the daemon owns them).
struct SessionDeps {
  std::shared_ptr<const ServerConfig> config;  // hostname and limits (SIGHUP swaps it)
  Spool* spool = nullptr;                      // required
  // The current directory; called once per connection (SIGHUP swaps it, a
  // session keeps the one it started with).
  std::function<std::shared_ptr<const Directory>()> directory;
  IntakeStats* stats = nullptr;                  // optional
  // Bounds message content in RAM across all sessions ([server]
  // max_message_memory; SIGHUP sets its limit). Optional: null, no bound.
  MessageMemoryBudget* memory = nullptr;
  std::shared_ptr<MessageAnnotator> annotator;  // optional: no extra headers
  // Asks the upstreams about unlisted addresses when [directory] recipients =
  // "verify". Optional: null, such an address gets 550 5.1.1.
  RecipientVerifier* verifier = nullptr;
  // Inbound STARTTLS; null: not offered. SIGHUP may swap it (SmtpServer::set_tls);
  // a session keeps the one it started with.
  std::shared_ptr<TlsContext> tls;
};

// After this many 4xx/5xx replies the client is told 421 4.7.0 and dropped
// (Postfix smtpd_hard_error_limit).
inline constexpr uint32_t kMaxErrors = 20;

}  // namespace holdd::smtp
