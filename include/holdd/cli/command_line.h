#pragma once
// holdctl's command line: the global options (--config, --socket, --json), then
// one verb of protocol::kVerbs with its arguments. Parsed with CLI11, set up from
// the table, so `holdctl --help` and `holdctl VERB --help` list what the table says.
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "holdd/cli/verb_args.h"
#include "holdd/protocol/verbs.h"

namespace holdd::cli {

inline constexpr const char* kDefaultConfig = "/etc/holdd/holdd.toml";
inline constexpr const char* kDefaultSocket = "/run/holdd/control.sock";

struct GlobalOptions {
  std::string config;  // --config PATH
  std::string socket;  // --socket PATH
  bool json = false;   // --json
};

class CommandLine {
 public:
  CommandLine();
  ~CommandLine();
  CommandLine(const CommandLine&) = delete;
  CommandLine& operator=(const CommandLine&) = delete;

  // Parses argv. nullopt when it names a verb (verb(), args() and options() then
  // say what to do); otherwise the exit code, with the output printed: 0 after
  // --help; after a usage error, said on stderr, kUsage, or with
  // `monitoring_plugin` (check) an UNKNOWN line on stdout and kUnreachable.
  std::optional<int> parse(int argc, const char* const* argv, bool monitoring_plugin);

  const GlobalOptions& options() const { return options_; }
  // REQUIRES: parse() returned nullopt.
  const protocol::Verb& verb() const { return protocol::kVerbs[chosen_]; }
  const VerbArgs& args() const { return *args_[chosen_]; }

 private:
  std::unique_ptr<CLI::App> app_;
  GlobalOptions options_;
  std::vector<CLI::App*> commands_;              // one per protocol::kVerbs entry
  std::vector<std::unique_ptr<VerbArgs>> args_;  // likewise
  std::size_t chosen_ = 0;
};

}  // namespace holdd::cli
