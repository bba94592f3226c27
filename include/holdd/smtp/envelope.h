#pragma once
// The envelope of the mail transaction in progress (RFC 5321 3.3): the sender
// and its MAIL parameters, and the recipients after alias resolution, one per
// mailbox. Reset by RSET, HELO/EHLO and the end of each message.
#include <string>
#include <vector>

#include "holdd/smtp/command.h"
#include "holdd/spool/records.h"

namespace holdd::smtp {

struct Envelope {
  bool has_sender = false;  // MAIL accepted
  std::string sender;       // reverse-path without brackets; "" for <>
  MailParams params;
  std::vector<QueuedRecipient> recipients;  // one per mailbox, in RCPT order
  std::vector<std::string> rcpt_addresses;  // accepted RCPT paths as written, no duplicates

  bool has_recipients() const { return !recipients.empty(); }
  // Adds `r` unless its mailbox is already a recipient (alias fan-out and
  // repeated RCPTs give each mailbox one copy). Returns whether it was added.
  bool add_recipient(QueuedRecipient r);
  void add_rcpt_address(const std::string& address);
  void reset() { *this = Envelope{}; }
};

}  // namespace holdd::smtp
