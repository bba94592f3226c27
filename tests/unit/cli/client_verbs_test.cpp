#include "holdd/cli/client_verbs.h"

#include <doctest/doctest.h>

#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "../temp_dir.h"
#include "holdd/cli/command_line.h"
#include "holdd/cli/exit.h"
#include "holdd/protocol/verbs.h"
#include "output_capture.h"

namespace holdd::cli {
namespace {

using json = nlohmann::json;

// The request args holdctl builds for `words` (the command line after "holdctl").
json request_args(const std::vector<std::string>& words) {
  std::vector<const char*> argv{"holdctl"};
  for (const std::string& w : words) argv.push_back(w.c_str());
  CommandLine command_line;
  std::optional<int> exit;
  std::string err;
  {
    OutputCapture capture;
    exit = command_line.parse(static_cast<int>(argv.size()), argv.data(), false);
    err = capture.err();
  }
  INFO(err);
  REQUIRE_FALSE(exit.has_value());
  const ClientVerb* verb = find_client_verb(command_line.verb().name);
  REQUIRE(verb != nullptr);
  return verb->build(command_line.args());
}

TEST_CASE("client_verbs: every verb of the table has a builder and a printer, and nothing else has") {
  std::vector<std::string_view> table, client;
  for (const protocol::Verb& v : protocol::kVerbs) table.push_back(v.name);
  for (const ClientVerb& v : client_verbs()) {
    client.push_back(v.name);
    CAPTURE(v.name);
    CHECK((v.build != nullptr));
    CHECK((v.print != nullptr));
    CHECK(find_client_verb(v.name) == &v);
  }
  CHECK(client == table);
  CHECK(find_client_verb("frobnicate") == nullptr);
}

TEST_CASE("client_verbs: the request each command line sends (docs/control-protocol.md)") {
  struct Case {
    std::vector<std::string> words;
    json args;
  };
  const Case cases[] = {
      {{"status"}, json::object()},
      {{"--json", "status"}, json::object()},
      {{"list"}, json::object()},
      {{"list", "--state", "held"}, {{"state", "held"}}},
      {{"show", "Anna@example.com"}, {{"mailbox", "Anna@example.com"}}},
      {{"queue", "anna@example.com", "--json"}, {{"mailbox", "anna@example.com"}}},
      {{"lock", "a@example.com", "b@example.com"},
       {{"mailboxes", json::array({"a@example.com", "b@example.com"})}}},
      {{"release", "a@example.com"},
       {{"mailboxes", json::array({"a@example.com"})},
        {"wait", false},
        {"rate", 0},
        {"dry_run", false},
        {"verify", false},
        {"wait_seconds", 0}}},
      {{"release", "a@example.com", "--wait", "--timeout", "2m", "--rate", "12.5", "--dry-run"},
       {{"mailboxes", json::array({"a@example.com"})},
        {"wait", true},
        {"rate", 12.5},
        {"dry_run", true},
        {"verify", false},
        {"wait_seconds", 120}}},
      {{"release", "a@example.com", "--verify"},
       {{"mailboxes", json::array({"a@example.com"})},
        {"wait", false},
        {"rate", 0},
        {"dry_run", false},
        {"verify", true},
        {"wait_seconds", 0}}},
      {{"revert", "a@example.com"}, {{"mailboxes", json::array({"a@example.com"})}}},
      {{"retry", "a@example.com"}, {{"mailbox", "a@example.com"}}},
      {{"retry", "--all"}, {{"all", true}}},
      {{"drop", "ID1", "ID2"}, {{"ids", json::array({"ID1", "ID2"})}, {"yes", false}}},
      {{"drop", "ID1", "--yes"}, {{"ids", json::array({"ID1"})}, {"yes", true}}},
      {{"pause"}, json::object()},
      {{"resume"}, json::object()},
      {{"check"}, json::object()},
      {{"check", "--warn-age", "1h", "--crit-age", "2d", "--old-quiet", "30m"},
       {{"warn_age_seconds", 3600}, {"crit_age_seconds", 172800}, {"old_quiet_seconds", 1800}}},
      {{"probe", "a@example.com", "b@example.com"},
       {{"mailboxes", json::array({"a@example.com", "b@example.com"})}, {"upstream", "new"}}},
      {{"probe", "--upstream", "old", "a@example.com"},
       {{"mailboxes", json::array({"a@example.com"})}, {"upstream", "old"}}},
      {{"note", "a@example.com", "copied by hand"}, {{"mailbox", "a@example.com"}, {"text", "copied by hand"}}},
  };
  for (const Case& c : cases) {
    CAPTURE(json(c.words).dump());
    CHECK(request_args(c.words) == c.args);
  }
}

TEST_CASE("client_verbs: --file F adds one address a line to the MAILBOX arguments") {
  TempDir dir;
  const std::string file = (dir.path / "batch.txt").string();
  std::ofstream(file) << "# batch 1\nb@example.com\n\nc@example.com  # late\n";
  CHECK(request_args({"lock", "a@example.com", "--file", file}) ==
        json{{"mailboxes", json::array({"a@example.com", "b@example.com", "c@example.com"})}});

  const std::string empty = (dir.path / "empty.txt").string();
  std::ofstream(empty) << "# nothing yet\n";
  CHECK_THROWS_AS(request_args({"revert", "--file", empty}), UsageError);
  CHECK_THROWS_AS(request_args({"lock", "--file", (dir.path / "missing.txt").string()}), UsageError);
}

TEST_CASE("client_verbs: what CLI11 cannot check is a usage error") {
  const std::vector<std::string> cases[] = {
      {"lock"},                                              // no MAILBOX, no --file
      {"release", "a@example.com", "--timeout", "5m"},        // --timeout without --wait
      {"release", "a@example.com", "--wait", "--timeout", "soon"},
      {"release", "a@example.com", "--rate", "nan"},          // CLI11 takes it as a number
      {"retry"},                                             // neither MAILBOX nor --all
  };
  for (const auto& words : cases) {
    CAPTURE(json(words).dump());
    CHECK_THROWS_AS(request_args(words), UsageError);
  }
}

TEST_CASE("client_verbs: check with a bad duration is UNKNOWN, exit 3") {
  std::optional<int> code;
  std::string out;
  {
    OutputCapture capture;
    try {
      request_args({"check", "--warn-age", "soon"});
    } catch (const ExitNow& e) {
      code = e.code;
    }
    out = capture.out();
  }
  CHECK(code == kUnreachable);
  CHECK(out == "HOLDD UNKNOWN - invalid duration \"soon\" (use e.g. 30m, 24h, 3d)\n");
}

TEST_CASE("client_verbs: exit codes of a result") {
  const ClientVerb& status = *find_client_verb("status");
  const ClientVerb& check = *find_client_verb("check");
  CHECK_FALSE(status.monitoring_plugin);
  CHECK(check.monitoring_plugin);
  CHECK(exit_code(status, json{{"code", 2}}) == kOk);
  CHECK(exit_code(check, json{{"code", 0}, {"line", "HOLDD OK"}}) == 0);
  CHECK(exit_code(check, json{{"code", 2}}) == 2);
  CHECK(exit_code(check, json{{"code", 7}}) == 3);  // not a plugin code: UNKNOWN
  CHECK(exit_code(check, json::object()) == 3);
}

TEST_CASE("client_verbs: printers show results as text") {
  std::string out;
  {
    OutputCapture capture;
    find_client_verb("lock")->print(
        json{{"state", "held"}, {"changed", json::array({"a@x"})}, {"unchanged", json::array({"b@x"})}});
    find_client_verb("retry")->print(json{{"requeued", 3}});
    find_client_verb("check")->print(json{{"code", 0}, {"line", "HOLDD OK - 0 held"}});
    out = capture.out();
  }
  CHECK(out == "held: a@x\nheld: b@x (already)\nrequeued 3 parked message(s)\nHOLDD OK - 0 held\n");
}

}  // namespace
}  // namespace holdd::cli
