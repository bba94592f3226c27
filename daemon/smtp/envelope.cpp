#include "holdd/smtp/envelope.h"

#include <algorithm>

namespace holdd::smtp {

bool Envelope::add_recipient(QueuedRecipient r) {
  const bool known = std::any_of(recipients.begin(), recipients.end(),
                                 [&](const QueuedRecipient& q) { return q.mailbox == r.mailbox; });
  if (known) return false;
  recipients.push_back(std::move(r));
  return true;
}

void Envelope::add_rcpt_address(const std::string& address) {
  if (std::find(rcpt_addresses.begin(), rcpt_addresses.end(), address) == rcpt_addresses.end()) {
    rcpt_addresses.push_back(address);
  }
}

}  // namespace holdd::smtp
