#pragma once
// The Directory answers "whose mail is this?": our domains, the listed mailboxes
// and the aliases (an alias may fan out to several mailboxes). It is immutable;
// SIGHUP loads a new one and swaps the shared_ptr, so sessions in flight keep the
// one they started with.
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "holdd/config/config.h"
#include "holdd/route/address.h"

namespace holdd {

struct Resolution {
  enum class Verdict {
    kAccept,          // mailboxes holds one or more canonical mailbox keys
    kNotOurDomain,    // 550 5.7.1 relay access denied (never an open relay)
    kUnknownMailbox,  // 550 5.1.1 (recipients = "listed")
    kRoutingRefused,  // 550 5.7.1: '%', '!', quoted '@' or an address literal
    kAskUpstreams,    // recipients = "verify": not listed, mailboxes holds its key;
                      // the old and new servers decide (smtp::RecipientVerifier)
  };
  Verdict verdict = Verdict::kUnknownMailbox;
  std::vector<std::string> mailboxes;  // canonical keys, deduplicated, in file order
};

class Directory {
 public:
  // Reads config.mailboxes and config.aliases. Every problem is returned with the
  // file, the line ("aliases.txt:12") as key, and the reason.
  static std::variant<std::shared_ptr<const Directory>, std::vector<ConfigError>> load(
      const DirectoryConfig& config);
  // From text already read (tests); file names are used in messages only.
  static std::variant<std::shared_ptr<const Directory>, std::vector<ConfigError>> parse(
      const DirectoryConfig& config, std::string_view mailboxes_text,
      std::string_view aliases_text);

  // RCPT TO: which mailboxes get a copy of mail for `rcpt`. Aliases are followed
  // (nested, cycle-safe, depth-limited); a listed mailbox wins over an alias of
  // the same name. Names compare by mailbox_key(): John.Smith@ finds the listed
  // john.smith@ (and the alias John@ is john@) unless local_part_case = "exact".
  Resolution resolve(const Address& rcpt) const;
  // holdctl's MAILBOX argument: "local@domain" text, resolved the same way.
  Resolution resolve(std::string_view address_text) const;

  // The key of the mailbox `address` names under [directory] local_part_case
  // (aliases not followed): what resolve() looks up and files mail under.
  std::string mailbox_key(const Address& address) const {
    return address.mailbox_key(config_.local_part_case);
  }

  bool is_local_domain(std::string_view domain) const;
  bool is_listed(const std::string& mailbox_key) const;
  const std::vector<std::string>& mailboxes() const { return mailboxes_; }
  RecipientPolicy policy() const { return config_.recipients; }
  const DirectoryConfig& config() const { return config_; }

 private:
  // Lets resolve() look keys up by string_view without building a std::string.
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  using KeySet = std::unordered_set<std::string, KeyHash, std::equal_to<>>;

  explicit Directory(DirectoryConfig config) : config_(std::move(config)) {}
  DirectoryConfig config_;
  KeySet domains_;                      // lower-case
  std::vector<std::string> mailboxes_;  // canonical keys, in file order
  KeySet listed_;
  // alias key -> the mailbox keys it finally reaches (nesting already followed,
  // deduplicated, in file order), computed once at load so resolve() only looks up.
  std::unordered_map<std::string, std::vector<std::string>, KeyHash, std::equal_to<>> aliases_;
};

}  // namespace holdd
