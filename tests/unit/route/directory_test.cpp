#include "holdd/route/directory.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace holdd {
namespace {

namespace fs = std::filesystem;
using Verdict = Resolution::Verdict;
using Keys = std::vector<std::string>;

DirectoryConfig make_config(RecipientPolicy policy = RecipientPolicy::kListed,
                            LocalPartCase rule = LocalPartCase::kInsensitive) {
  DirectoryConfig c;
  c.domains = {"example.com", "example.org"};
  c.mailboxes = "/etc/holdd/mailboxes.txt";
  c.aliases = "/etc/holdd/aliases.txt";
  c.recipients = policy;
  c.local_part_case = rule;
  return c;
}

std::string join(const std::vector<ConfigError>& errors) {
  std::string out;
  for (const ConfigError& e : errors) out += e.to_string() + "\n";
  return out;
}

std::shared_ptr<const Directory> parse_ok(const DirectoryConfig& config, std::string_view mailboxes,
                                          std::string_view aliases) {
  auto result = Directory::parse(config, mailboxes, aliases);
  if (auto errors = std::get_if<std::vector<ConfigError>>(&result)) FAIL("unexpected errors:\n" << join(*errors));
  return std::get<std::shared_ptr<const Directory>>(result);
}

std::vector<ConfigError> parse_errors(const DirectoryConfig& config, std::string_view mailboxes,
                                      std::string_view aliases) {
  auto result = Directory::parse(config, mailboxes, aliases);
  if (!std::holds_alternative<std::vector<ConfigError>>(result)) return {};
  return std::get<std::vector<ConfigError>>(result);
}

constexpr std::string_view kMailboxes = R"(# staff
anna@example.com
  bob@Example.COM   # trailing comment

carol@example.org
a#b@example.com
"Dan Smith"@example.com
anna@example.com
)";

constexpr std::string_view kAliases = R"(# aliases
team@example.com: anna@example.com, bob@example.com
all@example.com: team@example.com carol@example.org, anna@example.com
postmaster@example.org: all@example.com
deep1@example.com: deep2@example.com
deep2@example.com: deep3@example.com
deep3@example.com: carol@example.org
bob@example.com: carol@example.org
team@example.com: carol@example.org
)";

TEST_CASE("Directory: the mailboxes file lists canonical keys in file order, once each") {
  auto dir = parse_ok(make_config(), kMailboxes, "");
  CHECK(dir->mailboxes() ==
        Keys{"anna@example.com", "bob@example.com", "carol@example.org", "a#b@example.com",
             "\"dan smith\"@example.com"});
  CHECK(dir->is_listed("bob@example.com"));
  CHECK_FALSE(dir->is_listed("Bob@example.com"));  // keys are canonical: callers fold first
  CHECK(dir->is_local_domain("EXAMPLE.org"));
  CHECK_FALSE(dir->is_local_domain("example.net"));
  CHECK_FALSE(dir->is_local_domain(""));
  CHECK(dir->policy() == RecipientPolicy::kListed);
}

TEST_CASE("Directory::resolve: verdicts and mailboxes for each kind of recipient") {
  auto dir = parse_ok(make_config(), kMailboxes, kAliases);
  struct Case {
    std::string_view rcpt;
    Verdict verdict;
    Keys mailboxes;
  };
  const Case cases[] = {
      {"anna@example.com", Verdict::kAccept, {"anna@example.com"}},
      {"anna@EXAMPLE.COM", Verdict::kAccept, {"anna@example.com"}},
      {"\"anna\"@example.com", Verdict::kAccept, {"anna@example.com"}},
      {"\"Dan Smith\"@example.com", Verdict::kAccept, {"\"dan smith\"@example.com"}},
      {"\"DAN SMITH\"@example.com", Verdict::kAccept, {"\"dan smith\"@example.com"}},
      {"Anna@example.com", Verdict::kAccept, {"anna@example.com"}},  // local_part_case = "insensitive"
      {"ANNA@EXAMPLE.COM", Verdict::kAccept, {"anna@example.com"}},
      {"\"Anna\"@example.com", Verdict::kAccept, {"anna@example.com"}},
      {"TEAM@example.com", Verdict::kAccept, {"anna@example.com", "bob@example.com", "carol@example.org"}},
      {"zoe@example.com", Verdict::kUnknownMailbox, {}},
      {"anna@example.net", Verdict::kNotOurDomain, {}},
      {"anna@sub.example.com", Verdict::kNotOurDomain, {}},
      {"anna@[192.0.2.1]", Verdict::kRoutingRefused, {}},
      {"anna%example.net@example.com", Verdict::kRoutingRefused, {}},
      {"example.net!anna@example.com", Verdict::kRoutingRefused, {}},
      {"\"anna@example.net\"@example.com", Verdict::kRoutingRefused, {}},
      {"anna%example.net@example.net", Verdict::kNotOurDomain, {}},
      // Aliases: both lines of team merge; all nests and deduplicates in order.
      {"team@example.com", Verdict::kAccept, {"anna@example.com", "bob@example.com", "carol@example.org"}},
      {"all@example.com", Verdict::kAccept, {"anna@example.com", "bob@example.com", "carol@example.org"}},
      {"postmaster@EXAMPLE.org", Verdict::kAccept, {"anna@example.com", "bob@example.com", "carol@example.org"}},
      {"deep1@example.com", Verdict::kAccept, {"carol@example.org"}},
      // A listed mailbox wins over an alias of the same name.
      {"bob@example.com", Verdict::kAccept, {"bob@example.com"}},
      {"not an address", Verdict::kUnknownMailbox, {}},
  };
  for (const Case& c : cases) {
    CAPTURE(std::string(c.rcpt));
    Resolution r = dir->resolve(c.rcpt);
    CHECK(r.verdict == c.verdict);
    CHECK(r.mailboxes == c.mailboxes);
  }
}

TEST_CASE("Directory: local_part_case = exact compares local parts byte for byte") {
  auto dir = parse_ok(make_config(RecipientPolicy::kListed, LocalPartCase::kExact),
                      "anna@example.com\nBob@example.com\n\"Dan Smith\"@example.com\n",
                      "Team@example.com: anna@example.com, Bob@example.com\n");
  CHECK(dir->mailboxes() == Keys{"anna@example.com", "Bob@example.com", "\"Dan Smith\"@example.com"});
  struct Case {
    std::string_view rcpt;
    Verdict verdict;
    Keys mailboxes;
  };
  const Case cases[] = {
      {"anna@EXAMPLE.com", Verdict::kAccept, {"anna@example.com"}},  // the domain still folds
      {"Anna@example.com", Verdict::kUnknownMailbox, {}},
      {"Bob@example.com", Verdict::kAccept, {"Bob@example.com"}},
      {"bob@example.com", Verdict::kUnknownMailbox, {}},
      {"\"Dan Smith\"@example.com", Verdict::kAccept, {"\"Dan Smith\"@example.com"}},
      {"\"dan smith\"@example.com", Verdict::kUnknownMailbox, {}},
      {"Team@example.com", Verdict::kAccept, {"anna@example.com", "Bob@example.com"}},
      {"team@example.com", Verdict::kUnknownMailbox, {}},
  };
  for (const Case& c : cases) {
    CAPTURE(std::string(c.rcpt));
    Resolution r = dir->resolve(c.rcpt);
    CHECK(r.verdict == c.verdict);
    CHECK(r.mailboxes == c.mailboxes);
  }
}

TEST_CASE("Directory: insensitive, spellings that differ only in case are one mailbox or alias") {
  // The file's own spelling does not matter either: a file written with capitals
  // (exported from a directory that keeps display case) lists the folded keys.
  auto dir = parse_ok(make_config(), "John.Smith@Example.com\njohn.smith@example.com\n",
                      "Sales@example.com: JOHN.SMITH@example.com\n");
  CHECK(dir->mailboxes() == Keys{"john.smith@example.com"});
  for (std::string_view rcpt : {"john.smith@example.com", "John.Smith@example.com", "JOHN.SMITH@EXAMPLE.COM",
                                "sales@example.com", "SALES@example.com"}) {
    CAPTURE(std::string(rcpt));
    Resolution r = dir->resolve(rcpt);
    CHECK(r.verdict == Verdict::kAccept);
    CHECK(r.mailboxes == Keys{"john.smith@example.com"});
  }
  std::optional<Address> a = parse_address("John.Smith@EXAMPLE.com");
  REQUIRE(a.has_value());
  CHECK(dir->mailbox_key(*a) == "john.smith@example.com");
}

TEST_CASE("Directory::resolve: the Address overload agrees with parse_path") {
  auto dir = parse_ok(make_config(), kMailboxes, kAliases);
  PathParse p = parse_path("<@relay.example:team@Example.com> SIZE=5", false, false);
  REQUIRE(p.ok());
  Resolution r = dir->resolve(*p.address);
  CHECK(r.verdict == Verdict::kAccept);
  CHECK(r.mailboxes == Keys{"anna@example.com", "bob@example.com", "carol@example.org"});
}

TEST_CASE("Directory: recipients = any accepts unknown names in our domains, nothing else") {
  auto dir = parse_ok(make_config(RecipientPolicy::kAny), "anna@example.com\n",
                      "team@example.com: anna@example.com, zoe@example.com\n"
                      "keep@example.com: keep@example.com, anna@example.com\n");
  struct Case {
    std::string_view rcpt;
    Verdict verdict;
    Keys mailboxes;
  };
  const Case cases[] = {
      {"zoe@Example.COM", Verdict::kAccept, {"zoe@example.com"}},
      {"Zoe@example.com", Verdict::kAccept, {"zoe@example.com"}},  // one new mailbox, not two
      {"anna@example.com", Verdict::kAccept, {"anna@example.com"}},
      {"team@example.com", Verdict::kAccept, {"anna@example.com", "zoe@example.com"}},
      {"keep@example.com", Verdict::kAccept, {"keep@example.com", "anna@example.com"}},  // self copy
      {"zoe@example.net", Verdict::kNotOurDomain, {}},
      {"zoe%x@example.com", Verdict::kRoutingRefused, {}},
  };
  for (const Case& c : cases) {
    CAPTURE(std::string(c.rcpt));
    Resolution r = dir->resolve(c.rcpt);
    CHECK(r.verdict == c.verdict);
    CHECK(r.mailboxes == c.mailboxes);
  }
}

TEST_CASE("Directory: an empty mailboxes path means no listed mailboxes") {
  DirectoryConfig config = make_config();
  config.mailboxes.clear();
  config.aliases.clear();
  auto result = Directory::load(config);
  REQUIRE(std::holds_alternative<std::shared_ptr<const Directory>>(result));
  auto dir = std::get<std::shared_ptr<const Directory>>(result);
  CHECK(dir->mailboxes().empty());
  CHECK(dir->resolve("anna@example.com").verdict == Verdict::kUnknownMailbox);
}

TEST_CASE("Directory: each bad line is an error keyed FILE:LINE with a reason") {
  struct Case {
    std::string_view mailboxes, aliases;
    std::string key;
    std::string reason_part;
  };
  const Case cases[] = {
      {"anna@example.com\nanna\n", "", "/etc/holdd/mailboxes.txt:2", "not an address"},
      {"anna@example.net\n", "", "/etc/holdd/mailboxes.txt:1", "directory.domains"},
      {"anna@[192.0.2.1]\n", "", "/etc/holdd/mailboxes.txt:1", "directory.domains"},
      {"anna%x@example.com\n", "", "/etc/holdd/mailboxes.txt:1", "'%'"},
      {"anna@example.com bob@example.com\n", "", "/etc/holdd/mailboxes.txt:1", "not an address"},
      {"<anna@example.com>\n", "", "/etc/holdd/mailboxes.txt:1", "not an address"},
      {"anna@example.com\n", "\nteam@example.com anna@example.com\n", "/etc/holdd/aliases.txt:2",
       "alias@domain: target"},
      {"anna@example.com\n", "team: anna@example.com\n", "/etc/holdd/aliases.txt:1", "not an address"},
      {"anna@example.com\n", "team@example.net: anna@example.com\n", "/etc/holdd/aliases.txt:1",
       "directory.domains"},
      {"anna@example.com\n", "team@example.com:\n", "/etc/holdd/aliases.txt:1", "no targets"},
      {"anna@example.com\n", "team@example.com: anna@example.net\n", "/etc/holdd/aliases.txt:1",
       "directory.domains"},
      {"anna@example.com\n", "team@example.com: zoe@example.com\n", "/etc/holdd/aliases.txt:1",
       "neither a listed mailbox nor an alias"},
      {"anna@example.com\n", "a@example.com: b@example.com\nb@example.com: a@example.com\n",
       "/etc/holdd/aliases.txt:1", "alias loop: a@example.com -> b@example.com -> a@example.com"},
      {"anna@example.com\n", "a@example.com: a@example.com, anna@example.com\n", "/etc/holdd/aliases.txt:1",
       "refers to itself"},
  };
  for (const Case& c : cases) {
    CAPTURE(std::string(c.mailboxes));
    CAPTURE(std::string(c.aliases));
    std::vector<ConfigError> errors = parse_errors(make_config(), c.mailboxes, c.aliases);
    REQUIRE_FALSE(errors.empty());
    bool found = false;
    for (const ConfigError& e : errors) {
      if (e.key == c.key && e.reason.find(c.reason_part) != std::string::npos) found = true;
    }
    CHECK_MESSAGE(found, "wanted " << c.key << ": ..." << c.reason_part << "...; got\n" << join(errors));
  }
}

TEST_CASE("Directory: every bad line is reported, and to_string reads FILE:LINE: REASON") {
  std::vector<ConfigError> errors =
      parse_errors(make_config(), "anna@example.com\nbad\nzoe@example.net\n", "x: y\n");
  REQUIRE(errors.size() == 4);  // bad, zoe@example.net, alias x, target y
  CHECK(errors[0].file == "/etc/holdd/mailboxes.txt");
  CHECK(errors[0].line == 2);
  CHECK(errors[0].to_string().rfind("/etc/holdd/mailboxes.txt:2: ", 0) == 0);
}

TEST_CASE("Directory: aliases nest at most 8 deep") {
  auto chain = [](int n) {
    std::string text;
    for (int i = 1; i < n; ++i) {
      text += "a" + std::to_string(i) + "@example.com: a" + std::to_string(i + 1) + "@example.com\n";
    }
    text += "a" + std::to_string(n) + "@example.com: anna@example.com\n";
    return text;
  };
  auto dir = parse_ok(make_config(), "anna@example.com\n", chain(8));
  CHECK(dir->resolve("a1@example.com").mailboxes == Keys{"anna@example.com"});
  std::vector<ConfigError> errors = parse_errors(make_config(), "anna@example.com\n", chain(9));
  REQUIRE_FALSE(errors.empty());
  CHECK(errors[0].reason.find("deeper than 8") != std::string::npos);
  CHECK(errors[0].key == "/etc/holdd/aliases.txt:1");
}

TEST_CASE("Directory: a diamond of aliases is not a loop and delivers once") {
  auto dir = parse_ok(make_config(), "anna@example.com\nbob@example.com\n",
                      "top@example.com: l@example.com, r@example.com\n"
                      "l@example.com: both@example.com\n"
                      "r@example.com: both@example.com, bob@example.com\n"
                      "both@example.com: anna@example.com\n");
  CHECK(dir->resolve("top@example.com").mailboxes == Keys{"anna@example.com", "bob@example.com"});
}

TEST_CASE("Directory::load: reads both files, and unreadable files are errors naming the file") {
  std::string tmpl = (fs::temp_directory_path() / "holdd-directory-test-XXXXXX").string();
  REQUIRE(mkdtemp(tmpl.data()) != nullptr);
  fs::path root = tmpl;
  std::ofstream(root / "mailboxes.txt") << "anna@example.com\r\nbob@example.com\r\n";  // CRLF is fine
  std::ofstream(root / "aliases.txt") << "team@example.com: anna@example.com, bob@example.com\n";
  DirectoryConfig config = make_config();
  config.mailboxes = (root / "mailboxes.txt").string();
  config.aliases = (root / "aliases.txt").string();
  auto result = Directory::load(config);
  if (auto errors = std::get_if<std::vector<ConfigError>>(&result)) FAIL(join(*errors));
  auto dir = std::get<std::shared_ptr<const Directory>>(result);
  CHECK(dir->mailboxes() == Keys{"anna@example.com", "bob@example.com"});
  CHECK(dir->resolve("team@example.com").mailboxes == Keys{"anna@example.com", "bob@example.com"});

  config.aliases = (root / "missing.txt").string();
  auto missing = Directory::load(config);
  REQUIRE(std::holds_alternative<std::vector<ConfigError>>(missing));
  const auto& errors = std::get<std::vector<ConfigError>>(missing);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].file == config.aliases);
  CHECK(errors[0].reason.find("cannot read") != std::string::npos);
  fs::remove_all(root);
}

TEST_CASE("Directory: conf/dev-*.txt load against conf/dev.toml's domains") {
  const fs::path conf = fs::path(__FILE__).parent_path().parent_path().parent_path().parent_path() / "conf";
  DirectoryConfig config;
  config.domains = {"example.com"};
  config.mailboxes = (conf / "dev-mailboxes.txt").string();
  config.aliases = (conf / "dev-aliases.txt").string();
  auto result = Directory::load(config);
  if (auto errors = std::get_if<std::vector<ConfigError>>(&result)) FAIL(join(*errors));
  auto dir = std::get<std::shared_ptr<const Directory>>(result);
  CHECK(dir->resolve("team@example.com").verdict == Verdict::kAccept);
  CHECK(dir->resolve("anna@example.com").verdict == Verdict::kAccept);
}

}  // namespace
}  // namespace holdd
