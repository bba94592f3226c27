#pragma once
// The mail log: one line per mail event, with the queue ID first, in a stable,
// grep-friendly "key=value" format (documented in README "Logs"), the way
// operators follow Postfix's "queued as" lines:
//   ID: accepted from=<a@b> size=1234 nrcpt=2 client=mx.example [192.0.2.1]
//   ID: held to=<anna@example.com>
//   ID: relayed to=<anna@example.com> upstream=new relay=10.0.0.6:25 delay=0.4 reply="250 2.0.0 Ok"
//   ID: deferred to=<...> upstream=old attempts=3 next=2026-11-23T17:00:00Z reply="..."
//   ID: parked to=<...> upstream=new reply="550 5.1.1 ..."
//   state anna@example.com old -> held by="holdctl uid=0"
// Values with spaces are quoted; quotes and backslashes inside are escaped.
#include <string>
#include <string_view>

#include "holdd/base/mailbox_state.h"

namespace holdd::maillog {

void connect(std::string_view client_name, std::string_view client_addr);
void disconnect(std::string_view client_addr, std::string_view stats);
// `forwarded_by_old`: the client is in [upstream.old] forwarders ("forwarded-by=old").
void accepted(std::string_view id, std::string_view sender, uint64_t size, size_t nrcpt,
              std::string_view client, bool forwarded_by_old = false);
void queued(std::string_view id, std::string_view mailbox, MailboxState state);
void relayed(std::string_view id, std::string_view rcpt, std::string_view upstream,
             std::string_view relay, double delay_seconds, std::string_view reply);
void deferred(std::string_view id, std::string_view rcpt, std::string_view upstream,
              uint32_t attempts, std::string_view next_attempt, std::string_view reply);
void parked(std::string_view id, std::string_view rcpt, std::string_view upstream,
            std::string_view reply);
void dropped(std::string_view id, std::string_view mailbox, std::string_view by);
void state_changed(std::string_view mailbox, MailboxState from, MailboxState to,
                   std::string_view by);
void rejected(std::string_view client_addr, std::string_view stage, std::string_view reply);

// "value" quoted when it holds a space, '"' or '\\'; used by every line above.
std::string quote(std::string_view value);

}  // namespace holdd::maillog
