#include "holdd/cli/migrate.h"

#include <sys/wait.h>

#include <cstdio>
#include <string>

#include <doctest/doctest.h>

namespace holdd::cli::migrate {
namespace {

// What /bin/sh makes of `word`: the shell's own reading is the oracle.
std::string shell_reads(const std::string& word) {
  const std::string command = "printf '%s' " + word;
  FILE* p = ::popen(command.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[256];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

TEST_CASE("migrate: shell_quote gives /bin/sh back the value, whatever its characters") {
  const std::string values[] = {"anna@example.com", "o'brien@example.com", "a b@example.com",
                                "$(touch /tmp/x)@example.com", "`id`;rm -rf /@x", "\"q\"\\@x", ""};
  for (const std::string& v : values) {
    CAPTURE(v);
    CHECK(shell_reads(shell_quote(v)) == v);
  }
}

TEST_CASE("migrate: expand_command replaces {mailbox}, {local} and {domain} by quoted values") {
  struct Case {
    const char* command;
    const char* mailbox;
    const char* expanded;
  };
  const Case cases[] = {
      {"doveadm backup -R -u {mailbox} imapc:", "anna@example.com",
       "doveadm backup -R -u 'anna@example.com' imapc:"},
      {"sync {local} {domain} {local}", "bob@example.com", "sync 'bob' 'example.com' 'bob'"},
      {"x {mailbox}", "o'brien@example.com", "x 'o'\\''brien@example.com'"},
      {"no fields {mailboxes} {}", "a@b", "no fields {mailboxes} {}"},
      {"{mailbox", "a@b", "{mailbox"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.command);
    CHECK(expand_command(c.command, c.mailbox) == c.expanded);
  }
}

TEST_CASE("migrate: log_file_name stays one file inside the log directory") {
  CHECK(log_file_name("anna@example.com") == "anna@example.com.log");
  CHECK(log_file_name("../../etc/passwd@x") == "_.._.._etc_passwd@x.log");
  CHECK(log_file_name(".hidden@x") == "_.hidden@x.log");
  CHECK(log_file_name("a\nb@x") == "a_b@x.log");
}

}  // namespace
}  // namespace holdd::cli::migrate
