#include "holdd/base/maillog.h"

#include <spdlog/spdlog.h>

#include "holdd/base/printable.h"

namespace holdd::maillog {

// Every field below comes from the network or from the operator: printable()
// makes 8-bit bytes and control characters visible (\xNN) and keeps the log valid
// UTF-8 (SPEC: 8-bit text is data, escaped where it is shown). In a quoted value a
// '"' or '\\' that was sent is escaped first, so "\xE7" is always a byte holdd
// escaped and "\\x" a backslash that was sent.
std::string quote(std::string_view value) {
  bool needs = value.empty();
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (c == ' ' || c == '"' || c == '\\' || c == '=' || u < 0x20 || u == 0x7F) {
      needs = true;
      break;
    }
  }
  if (!needs) return printable(value);
  std::string escaped;
  escaped.reserve(value.size() + 2);
  for (char c : value) {
    if (c == '"' || c == '\\') escaped += '\\';
    escaped += c;
  }
  return "\"" + printable(escaped) + "\"";
}

void connect(std::string_view client_name, std::string_view client_addr) {
  spdlog::info("connect from {} [{}]", printable(client_name), printable(client_addr));
}

void disconnect(std::string_view client_addr, std::string_view stats) {
  spdlog::info("disconnect from [{}] {}", client_addr, stats);
}

void accepted(std::string_view id, std::string_view sender, uint64_t size, size_t nrcpt,
              std::string_view client, bool forwarded_by_old) {
  spdlog::info("{}: accepted from=<{}> size={} nrcpt={} client={}{}", id, printable(sender), size, nrcpt,
               quote(client), forwarded_by_old ? " forwarded-by=old" : "");
}

void queued(std::string_view id, std::string_view mailbox, MailboxState state) {
  spdlog::info("{}: {} to=<{}>", id, state == MailboxState::kHeld ? "held" : "queued",
               printable(mailbox));
}

void relayed(std::string_view id, std::string_view rcpt, std::string_view upstream,
             std::string_view relay, double delay_seconds, std::string_view reply) {
  spdlog::info("{}: relayed to=<{}> upstream={} relay={} delay={:.3f} reply={}", id, printable(rcpt),
               upstream, relay, delay_seconds, quote(reply));
}

void deferred(std::string_view id, std::string_view rcpt, std::string_view upstream,
              uint32_t attempts, std::string_view next_attempt, std::string_view reply) {
  spdlog::warn("{}: deferred to=<{}> upstream={} attempts={} next={} reply={}", id, printable(rcpt),
               upstream, attempts, next_attempt, quote(reply));
}

void parked(std::string_view id, std::string_view rcpt, std::string_view upstream,
            std::string_view reply) {
  spdlog::warn("{}: parked to=<{}> upstream={} reply={}", id, printable(rcpt), upstream, quote(reply));
}

void dropped(std::string_view id, std::string_view mailbox, std::string_view by) {
  spdlog::warn("{}: dropped to=<{}> by={}", id, printable(mailbox), quote(by));
}

void state_changed(std::string_view mailbox, MailboxState from, MailboxState to,
                   std::string_view by) {
  spdlog::info("state {} {} -> {} by={}", printable(mailbox), to_string(from), to_string(to), quote(by));
}

void rejected(std::string_view client_addr, std::string_view stage, std::string_view reply) {
  spdlog::info("reject [{}] {}: {}", client_addr, stage, quote(reply));
}

}  // namespace holdd::maillog
