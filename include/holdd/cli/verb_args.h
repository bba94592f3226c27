#pragma once
// The values holdctl parsed for the arguments of one verb (protocol::Verb::args),
// looked up by the argument's name ("--file", "MAILBOX"). The request builders
// (cli/client_verbs.h) read them.
//
// CLI11 writes into a VerbArgs while it parses, so one stays where it was made
// (it cannot be copied or moved) while the CLI::App it was bound to lives.
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "holdd/protocol/verbs.h"

namespace CLI {
class App;
}

namespace holdd::cli {

class VerbArgs {
 public:
  // Adds `verb`'s arguments to `command` (the verb's CLI11 subcommand), with their
  // help texts, type names, checks and exclusions, bound to this.
  VerbArgs(const protocol::Verb& verb, CLI::App& command);
  VerbArgs(const VerbArgs&) = delete;
  VerbArgs& operator=(const VerbArgs&) = delete;

  // Each is as parsed, or false, "", {} or 0 when not given.
  // REQUIRES: `name` is an argument of the verb, of that kind (else
  // std::logic_error: a builder that does not match the table is a bug).
  bool flag(std::string_view name) const;
  const std::string& text(std::string_view name) const;
  const std::vector<std::string>& list(std::string_view name) const;
  double number(std::string_view name) const;

 private:
  struct Value {
    protocol::ArgKind kind = protocol::ArgKind::kText;
    bool flag = false;
    std::string text;
    std::vector<std::string> list;
    double number = 0;
  };
  const Value& at(std::string_view name, protocol::ArgKind kind) const;

  std::map<std::string, Value, std::less<>> values_;  // nodes stay put: CLI11 holds pointers
};

}  // namespace holdd::cli
