#include "holdd/cli/command_line.h"

#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "holdd/cli/exit.h"
#include "output_capture.h"

namespace holdd::cli {
namespace {

struct Parsed {
  std::optional<int> exit;
  std::string out, err;
};

Parsed parse(const std::vector<std::string>& words, bool monitoring_plugin = false) {
  std::vector<const char*> argv{"holdctl"};
  for (const std::string& w : words) argv.push_back(w.c_str());
  CommandLine command_line;
  OutputCapture capture;  // no doctest assertion while it lives: their reports go to stdout
  Parsed p;
  p.exit = command_line.parse(static_cast<int>(argv.size()), argv.data(), monitoring_plugin);
  p.out = capture.out();
  p.err = capture.err();
  return p;
}

TEST_CASE("CommandLine: the verb, its arguments and the global options, in any order") {
  const std::vector<std::string> argv_words[] = {
      {"--json", "--socket", "/tmp/s.sock", "release", "a@x", "--wait"},
      {"release", "a@x", "--json", "--wait", "--socket", "/tmp/s.sock"},
  };
  for (const auto& words : argv_words) {
    std::vector<const char*> argv{"holdctl"};
    for (const std::string& w : words) argv.push_back(w.c_str());
    CommandLine command_line;
    REQUIRE_FALSE(command_line.parse(static_cast<int>(argv.size()), argv.data(), false).has_value());
    CHECK(command_line.verb().name == "release");
    CHECK(command_line.options().json);
    CHECK(command_line.options().socket == "/tmp/s.sock");
    CHECK(command_line.options().config.empty());
    CHECK(command_line.args().flag("--wait"));
    CHECK_FALSE(command_line.args().flag("--dry-run"));
    CHECK(command_line.args().list("MAILBOX") == std::vector<std::string>{"a@x"});
    CHECK(command_line.args().number("--rate") == 0);
    // A builder asking for what the table does not give the verb is a bug.
    CHECK_THROWS_AS(command_line.args().text("--state"), std::logic_error);
    CHECK_THROWS_AS(command_line.args().text("--wait"), std::logic_error);
  }
}

TEST_CASE("CommandLine: --help lists every verb of the table with its summary, and exits 0") {
  Parsed p = parse({"--help"});
  CHECK(p.exit == 0);
  for (const protocol::Verb& v : protocol::kVerbs) {
    CAPTURE(v.name);
    CHECK(p.out.find("  " + std::string(v.name) + " ") != std::string::npos);
    CHECK(p.out.find(std::string(v.summary)) != std::string::npos);
  }
  Parsed release = parse({"release", "--help"});
  CHECK(release.exit == 0);
  for (const protocol::Arg& a : protocol::find_verb("release")->args) {
    CAPTURE(a.name);
    CHECK(release.out.find(std::string(a.name)) != std::string::npos);
    CHECK(release.out.find(std::string(a.help)) != std::string::npos);
  }
}

TEST_CASE("CommandLine: usage errors exit 2 and say why on stderr") {
  const std::vector<std::string> cases[] = {
      {},                                 // no command
      {"frobnicate"},                     // unknown command
      {"queue"},                          // MAILBOX is required
      {"status", "--no-such-option"},
      {"list", "--state", "sleepy"},      // not a state
      {"release", "a@x", "--rate", "-1"},  // not a rate
      {"release", "a@x", "--rate", "inf"},
      {"retry", "a@x", "--all"},          // one or the other
      {"--config", "a.toml", "--socket", "b.sock", "status"},
  };
  for (const auto& words : cases) {
    CAPTURE(words.size() > 0 ? words.front() : std::string("(none)"));
    Parsed p = parse(words);
    CHECK(p.exit == kUsage);
    CHECK(p.out.empty());
    CHECK(p.err.find("holdctl: ") == 0);
    CHECK(p.err.find("Run holdctl --help, or holdctl COMMAND --help, for usage.\n") != std::string::npos);
  }
}

TEST_CASE("CommandLine: an unknown command is named, with the commands of the table") {
  Parsed p = parse({"--socket", "x.sock", "frobnicate"});
  CHECK(p.exit == kUsage);
  CHECK(p.err.find("holdctl: unknown command \"frobnicate\"\n") != std::string::npos);
  CHECK(p.err.find("commands: status list show queue lock release revert retry drop pause resume check probe migrate note node\n") !=
        std::string::npos);
}

TEST_CASE("CommandLine: a monitoring plugin's usage error is UNKNOWN on stdout, exit 3") {
  Parsed p = parse({"check", "--warn-age"}, /*monitoring_plugin=*/true);
  CHECK(p.exit == kUnreachable);
  CHECK(p.out.find("HOLDD UNKNOWN - ") == 0);
  CHECK(p.err.find("holdctl: ") == 0);
}

}  // namespace
}  // namespace holdd::cli
