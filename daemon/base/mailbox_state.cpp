#include "holdd/base/mailbox_state.h"

namespace holdd {

std::string_view to_string(MailboxState s) {
  switch (s) {
    case MailboxState::kOld: return "old";
    case MailboxState::kHeld: return "held";
    case MailboxState::kMigrated: return "migrated";
  }
  return "old";
}

std::optional<MailboxState> parse_mailbox_state(std::string_view s) {
  if (s == "old") return MailboxState::kOld;
  if (s == "held") return MailboxState::kHeld;
  if (s == "migrated") return MailboxState::kMigrated;
  return std::nullopt;
}

}  // namespace holdd
