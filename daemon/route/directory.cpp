#include "holdd/route/directory.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace holdd {
namespace {

// Nesting deeper than this is almost certainly a mistake (Postfix stops at 100,
// but a migration's alias files are flat in practice; 8 keeps errors readable).
constexpr int kMaxAliasDepth = 8;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Drops a '#' comment that starts a line or follows whitespace, outside quotes.
// '#' is legal inside an address ("a#b@example.com"), so it only starts a comment
// where an address cannot continue.
std::string_view strip_comment(std::string_view line) {
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted && c == '\\') {
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (!quoted && c == '#' && (i == 0 || is_space(line[i - 1]))) {
      return trim(line.substr(0, i));
    }
  }
  return trim(line);
}

// Splits on commas and whitespace outside quotes.
std::vector<std::string_view> split_targets(std::string_view s) {
  std::vector<std::string_view> out;
  bool quoted = false;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    bool at_end = i == s.size();
    char c = at_end ? ',' : s[i];
    if (!at_end && quoted && c == '\\') {
      ++i;
      continue;
    }
    if (c == '"') quoted = !quoted;
    if (!quoted && (c == ',' || is_space(c))) {
      if (i > start) out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

// The first ':' outside quotes, or npos.
size_t find_colon(std::string_view s) {
  bool quoted = false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (quoted && s[i] == '\\') ++i;
    else if (s[i] == '"') quoted = !quoted;
    else if (!quoted && s[i] == ':') return i;
  }
  return std::string_view::npos;
}

template <class F>
void for_each_line(std::string_view text, F&& f) {
  uint32_t number = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++number;
    std::string_view content = strip_comment(line);
    if (!content.empty()) f(content, number);
  }
}

// Reads a whole file; on failure returns false and sets `why`.
bool read_file(const std::string& path, std::string& out, std::string& why) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    why = std::strerror(errno);
    return false;
  }
  struct stat st {};
  if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
    ::close(fd);
    why = "not a regular file";
    return false;
  }
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      why = std::strerror(errno);
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return true;
}

// Builds the error for line `line` of `file`; the key is "FILE:LINE" (directory.h).
ConfigError line_error(const std::string& file, uint32_t line, std::string reason) {
  ConfigError e{file, file + ":" + std::to_string(line), std::move(reason)};
  e.line = line;
  return e;
}

struct AliasEntry {
  std::vector<std::string> targets;  // canonical keys as written
  uint32_t line = 0;                 // first line that defines the alias
};

}  // namespace

bool Directory::is_local_domain(std::string_view domain) const {
  // Lower-case into a stack buffer: this runs for every RCPT.
  char buf[256];
  if (domain.empty() || domain.size() > sizeof buf) return false;
  for (size_t i = 0; i < domain.size(); ++i) {
    char c = domain[i];
    buf[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return domains_.find(std::string_view(buf, domain.size())) != domains_.end();
}

bool Directory::is_listed(const std::string& mailbox_key) const {
  return listed_.find(mailbox_key) != listed_.end();
}

Resolution Directory::resolve(const Address& rcpt) const {
  Resolution r;
  // An address literal names a host, not one of our domains: relaying to it is
  // what an open relay does.
  if (rcpt.is_address_literal()) {
    r.verdict = Resolution::Verdict::kRoutingRefused;
    return r;
  }
  if (!is_local_domain(rcpt.domain)) {
    r.verdict = Resolution::Verdict::kNotOurDomain;
    return r;
  }
  // "a%b@our.domain" and friends ask us to forward elsewhere; refused even for
  // our own domains (Postfix's allow_untrusted_routing = no).
  if (rcpt.asks_for_routing()) {
    r.verdict = Resolution::Verdict::kRoutingRefused;
    return r;
  }
  std::string key = mailbox_key(rcpt);
  if (listed_.find(key) != listed_.end()) {  // a listed mailbox wins over an alias
    r.verdict = Resolution::Verdict::kAccept;
    r.mailboxes.push_back(std::move(key));
    return r;
  }
  if (auto it = aliases_.find(key); it != aliases_.end()) {
    r.verdict = Resolution::Verdict::kAccept;
    r.mailboxes = it->second;
    return r;
  }
  if (config_.recipients == RecipientPolicy::kAny) {
    r.verdict = Resolution::Verdict::kAccept;
    r.mailboxes.push_back(std::move(key));
    return r;
  }
  if (config_.recipients == RecipientPolicy::kVerify) {
    r.verdict = Resolution::Verdict::kAskUpstreams;
    r.mailboxes.push_back(std::move(key));
    return r;
  }
  r.verdict = Resolution::Verdict::kUnknownMailbox;
  return r;
}

Resolution Directory::resolve(std::string_view address_text) const {
  std::optional<Address> address = parse_address(address_text);
  if (!address) return Resolution{Resolution::Verdict::kUnknownMailbox, {}};
  return resolve(*address);
}

std::variant<std::shared_ptr<const Directory>, std::vector<ConfigError>> Directory::load(
    const DirectoryConfig& config) {
  std::vector<ConfigError> errors;
  std::string mailboxes_text, aliases_text, why;
  // An empty path means no such file: no listed mailboxes, or no aliases.
  if (!config.mailboxes.empty() && !read_file(config.mailboxes, mailboxes_text, why)) {
    errors.push_back(ConfigError{config.mailboxes, "", "cannot read: " + why});
  }
  if (!config.aliases.empty() && !read_file(config.aliases, aliases_text, why)) {
    errors.push_back(ConfigError{config.aliases, "", "cannot read: " + why});
  }
  if (!errors.empty()) return errors;
  return parse(config, mailboxes_text, aliases_text);
}

std::variant<std::shared_ptr<const Directory>, std::vector<ConfigError>> Directory::parse(
    const DirectoryConfig& config, std::string_view mailboxes_text, std::string_view aliases_text) {
  std::shared_ptr<Directory> dir(new Directory(config));
  std::vector<ConfigError> errors;
  for (const std::string& d : config.domains) dir->domains_.insert(to_lower_ascii(d));

  const std::string mailboxes_file = config.mailboxes.empty() ? "mailboxes" : config.mailboxes;
  const std::string aliases_file = config.aliases.empty() ? "aliases" : config.aliases;

  // Checks one address of a directory file; returns its key, or "" after an error.
  auto check = [&](std::string_view text, const std::string& file, uint32_t line,
                   std::string_view what) -> std::string {
    std::optional<Address> a = parse_address(text);
    std::string quoted = "\"" + std::string(text) + "\"";
    if (!a) {
      errors.push_back(line_error(file, line, std::string(what) + " " + quoted + " is not an address local@domain"));
      return "";
    }
    if (a->is_address_literal() || !dir->is_local_domain(a->domain)) {
      errors.push_back(line_error(file, line, std::string(what) + " " + quoted +
                                                  " is not in one of directory.domains"));
      return "";
    }
    if (a->asks_for_routing()) {
      errors.push_back(line_error(file, line, std::string(what) + " " + quoted +
                                                  " contains '%', '!' or '@' in the local part, which holdd "
                                                  "refuses as source routing"));
      return "";
    }
    return dir->mailbox_key(*a);
  };

  for_each_line(mailboxes_text, [&](std::string_view content, uint32_t line) {
    std::string key = check(content, mailboxes_file, line, "mailbox");
    if (key.empty()) return;
    if (dir->listed_.insert(key).second) dir->mailboxes_.push_back(std::move(key));
  });

  // Pass 1: read every alias, so targets may refer to aliases defined further down.
  std::unordered_map<std::string, AliasEntry> entries;
  std::vector<std::string> order;  // alias keys in file order
  for_each_line(aliases_text, [&](std::string_view content, uint32_t line) {
    size_t colon = find_colon(content);
    if (colon == std::string_view::npos) {
      errors.push_back(line_error(aliases_file, line, "expected \"alias@domain: target[, target...]\""));
      return;
    }
    std::string key = check(trim(content.substr(0, colon)), aliases_file, line, "alias");
    std::vector<std::string_view> targets = split_targets(content.substr(colon + 1));
    if (targets.empty()) {
      errors.push_back(line_error(aliases_file, line, "alias has no targets"));
      return;
    }
    std::vector<std::string> target_keys;
    for (std::string_view t : targets) {
      std::string target = check(t, aliases_file, line, "target");
      if (!target.empty()) target_keys.push_back(std::move(target));
    }
    if (key.empty()) return;
    auto [it, inserted] = entries.try_emplace(key);
    if (inserted) {
      it->second.line = line;
      order.push_back(key);
    }
    // A second line for the same alias adds targets (as if on one line).
    for (std::string& t : target_keys) it->second.targets.push_back(std::move(t));
  });

  // Pass 2: with recipients = "listed" a target must lead somewhere real.
  if (config.recipients == RecipientPolicy::kListed) {
    for (const std::string& key : order) {
      for (const std::string& t : entries[key].targets) {
        if (!dir->is_listed(t) && entries.count(t) == 0) {
          errors.push_back(line_error(aliases_file, entries[key].line,
                                      "target \"" + t + "\" is neither a listed mailbox nor an alias"));
        }
      }
    }
    if (!errors.empty()) return errors;
  }

  // Pass 3: flatten each alias into the mailboxes it finally reaches, once, here.
  for (const std::string& key : order) {
    if (dir->is_listed(key)) continue;  // a listed mailbox wins over an alias of the same name
    const uint32_t line = entries[key].line;
    std::vector<std::string> reached;
    std::unordered_set<std::string> seen;
    std::vector<std::string> chain{key};
    bool failed = false;
    auto add = [&](const std::string& mailbox) {
      if (seen.insert(mailbox).second) reached.push_back(mailbox);
    };
    auto expand = [&](auto& self, const std::string& alias) -> void {
      for (const std::string& t : entries[alias].targets) {
        if (failed) return;
        if (t == alias) {
          // "anna: anna, backup" keeps a copy in anna's own mailbox (as in Postfix).
          if (config.recipients == RecipientPolicy::kListed) {
            errors.push_back(line_error(aliases_file, line, "alias \"" + alias +
                                                                "\" refers to itself but is not a listed mailbox"));
            failed = true;
            return;
          }
          add(t);
        } else if (dir->is_listed(t) || entries.count(t) == 0) {
          add(t);
        } else if (std::find(chain.begin(), chain.end(), t) != chain.end()) {
          std::string loop;
          for (const std::string& c : chain) loop += c + " -> ";
          errors.push_back(line_error(aliases_file, line, "alias loop: " + loop + t));
          failed = true;
          return;
        } else if (static_cast<int>(chain.size()) >= kMaxAliasDepth) {
          errors.push_back(line_error(aliases_file, line, "aliases nest deeper than " +
                                                              std::to_string(kMaxAliasDepth) + " levels"));
          failed = true;
          return;
        } else {
          chain.push_back(t);
          self(self, t);
          chain.pop_back();
        }
      }
    };
    expand(expand, key);
    if (!failed) dir->aliases_.emplace(key, std::move(reached));
  }

  if (!errors.empty()) return errors;
  return std::shared_ptr<const Directory>(std::move(dir));
}

}  // namespace holdd
