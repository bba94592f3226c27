#pragma once
// The three states of a recipient mailbox during a migration (SPEC "holdd").
#include <optional>
#include <string_view>

namespace holdd {

enum class MailboxState {
  kOld,       // stored, then relayed at once to [upstream.old]
  kHeld,      // stored and kept in arrival order while the mailbox is copied
  kMigrated,  // stored, then relayed to [upstream.new]
};

std::string_view to_string(MailboxState s);
std::optional<MailboxState> parse_mailbox_state(std::string_view s);

}  // namespace holdd
