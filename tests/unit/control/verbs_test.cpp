#include "holdd/protocol/verbs.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "holdd/control/commands.h"

namespace holdd::protocol {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> words_of(std::string_view text) {
  std::vector<std::string> out;
  std::istringstream in{std::string(text)};
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// The options ("--x") a synopsis names, without the brackets around them.
std::set<std::string> options_in(std::string_view synopsis) {
  std::set<std::string> out;
  for (std::string w : words_of(synopsis)) {
    while (!w.empty() && (w.front() == '[' || w.front() == '|')) w.erase(0, 1);
    while (!w.empty() && (w.back() == ']' || w.back() == '|')) w.pop_back();
    if (w.starts_with("--")) out.insert(w);
  }
  return out;
}

TEST_CASE("kVerbs: names unique, each argument described once and in its synopsis") {
  std::set<std::string_view> names;
  for (const Verb& v : kVerbs) {
    CAPTURE(v.name);
    CHECK(names.insert(v.name).second);
    CHECK(find_verb(v.name) == &v);
    CHECK_FALSE(v.summary.empty());
    std::set<std::string_view> args;
    std::set<std::string> options;
    for (const Arg& a : v.args) {
      CAPTURE(a.name);
      CHECK(args.insert(a.name).second);
      if (a.name.starts_with("--")) {
        options.insert(std::string(a.name));
        CHECK_FALSE(a.help.empty());
      } else if (!a.choices.empty()) {  // a positional with choices: each one in the synopsis
        for (std::string_view choice : a.choices) {
          CHECK(std::string(v.synopsis).find(std::string(choice)) != std::string::npos);
        }
      } else {  // a positional: in the synopsis as MAILBOX or MAILBOX...
        CHECK(std::string(v.synopsis).find(std::string(a.name)) != std::string::npos);
      }
      if (!a.choices.empty()) CHECK(a.kind == ArgKind::kText);
      if (a.kind == ArgKind::kFlag) CHECK(a.type_name.empty());
    }
    for (const Arg& a : v.args) {
      if (!a.excludes.empty()) CHECK(args.count(a.excludes) == 1);
    }
    CHECK(options_in(v.synopsis) == options);
  }
  CHECK(find_verb("frobnicate") == nullptr);
}

TEST_CASE("kVerbs: the daemon has a handler for every verb, and for nothing else") {
  std::vector<std::string_view> table;
  for (const Verb& v : kVerbs) table.push_back(v.name);
  CHECK(ControlCommands::verbs() == table);
}

// ---- man/holdctl.8 ----

// The text a roff request line sets, e.g. `.BR lock " \fIMAILBOX\fR... | " "\-\-file \fIF"`
// -> "lock MAILBOX... | --file F": the macro's arguments (a quoted one may hold
// spaces) joined with a space for .B and .I, with nothing for the macros that
// alternate fonts (.BR, .BI, .IR, ...); font escapes dropped, \- as -.
std::string roff_text(std::string_view line) {
  const std::size_t space = line.find(' ');
  const std::string_view macro = line.substr(0, space);
  std::vector<std::string> args;
  for (std::size_t i = space; i != std::string_view::npos && i < line.size();) {
    if (line[i] == ' ') {
      ++i;
    } else if (line[i] == '"') {
      const std::size_t close = line.find('"', i + 1);
      args.emplace_back(line.substr(i + 1, close - i - 1));
      i = close == std::string_view::npos ? close : close + 1;
    } else {
      const std::size_t end = line.find(' ', i);
      args.emplace_back(line.substr(i, end - i));
      i = end;
    }
  }
  std::string joined;
  for (std::size_t i = 0; i < args.size(); ++i) joined += (i > 0 && macro.size() == 2 ? " " : "") + args[i];
  std::string text;
  for (std::size_t i = 0; i < joined.size(); ++i) {
    if (joined.compare(i, 2, "\\f") == 0) {
      i += 2;  // and the font's letter
    } else if (joined.compare(i, 2, "\\-") == 0) {
      text += '-';
      ++i;
    } else {
      text += joined[i];
    }
  }
  return text;
}

// The tag of every item in the COMMANDS section: "lock MAILBOX... | --file F".
std::vector<std::string> man_page_commands() {
  const fs::path page = fs::path(__FILE__).parent_path().parent_path().parent_path().parent_path() / "man" /
                        "holdctl.8";
  std::ifstream in(page);
  REQUIRE(in);
  std::vector<std::string> tags;
  bool in_commands = false, tag_next = false;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(".SH")) in_commands = line == ".SH COMMANDS";
    if (!in_commands) continue;
    if (tag_next) tags.push_back(roff_text(line));
    tag_next = line == ".TP";
  }
  return tags;
}

TEST_CASE("roff_text: what the man page's tags read as") {
  CHECK(roff_text(".B status") == "status");
  CHECK(roff_text(".BI show \" MAILBOX\"") == "show MAILBOX");
  CHECK(roff_text(".B list \\fR[\\fB\\-\\-state old\\fR|\\fBheld\\fR]") == "list [--state old|held]");
  CHECK(roff_text(".BR lock \" \\fIMAILBOX\\fR... | \" \"\\-\\-file \\fIF\"") == "lock MAILBOX... | --file F");
}

TEST_CASE("man/holdctl.8 describes exactly the verbs of the table, with their synopses") {
  std::vector<std::string> man;
  for (const std::string& tag : man_page_commands()) {
    // "pause / resume": two verbs without arguments, described together.
    const std::vector<std::string> w = words_of(tag);
    if (w.size() == 3 && w[1] == "/") {
      man.push_back(w[0]);
      man.push_back(w[2]);
    } else {
      man.push_back(tag);
    }
  }
  std::vector<std::string> table;
  for (const Verb& v : kVerbs) {
    table.push_back(std::string(v.name) + (v.synopsis.empty() ? "" : " ") + std::string(v.synopsis));
  }
  CHECK(man == table);
}

}  // namespace
}  // namespace holdd::protocol
