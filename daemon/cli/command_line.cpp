#include "holdd/cli/command_line.h"

#include <algorithm>
#include <iostream>

#include <CLI/CLI.hpp>

#include "holdd/cli/exit.h"

namespace holdd::cli {

CommandLine::CommandLine()
    : app_(std::make_unique<CLI::App>("holdctl: control a running holdd (temporary MX for mailbox migrations)",
                                      "holdctl")) {
  CLI::App& app = *app_;
  app.require_subcommand(1);
  app.fallthrough();  // `holdctl status --json` works as well as `holdctl --json status`
  auto* config = app.add_option("--config", options_.config, "holdd.toml to read [control] socket from")
                     ->type_name("PATH");
  auto* socket = app.add_option("--socket", options_.socket,
                                "control socket (default " + std::string(kDefaultSocket) + ", or from " +
                                    kDefaultConfig + ")")
                     ->type_name("PATH");
  config->excludes(socket);
  app.add_flag("--json", options_.json, "print the result as one JSON document");
  for (const protocol::Verb& verb : protocol::kVerbs) {
    CLI::App* command = app.add_subcommand(std::string(verb.name), std::string(verb.summary));
    commands_.push_back(command);
    args_.push_back(std::make_unique<VerbArgs>(verb, *command));
  }
}

CommandLine::~CommandLine() = default;

std::optional<int> CommandLine::parse(int argc, const char* const* argv, bool monitoring_plugin) {
  try {
    app_->parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app_->exit(e);  // --help
    std::cerr << "holdctl: " << e.what() << "\n";
    if (app_->get_subcommands().empty()) {
      // "A subcommand is required" says little when the operator mistyped one.
      for (int i = 1; i < argc; ++i) {
        std::string word = argv[i];
        if (word == "--config" || word == "--socket") ++i;
        if (word.empty() || word[0] == '-' || i >= argc) continue;
        std::cerr << "holdctl: unknown command \"" << word << "\"\n";
        break;
      }
      std::cerr << "commands:";
      for (const protocol::Verb& verb : protocol::kVerbs) std::cerr << " " << verb.name;
      std::cerr << "\n";
    }
    std::cerr << "Run holdctl --help, or holdctl COMMAND --help, for usage.\n";
    if (monitoring_plugin) {
      std::cout << "HOLDD UNKNOWN - " << e.what() << "\n";
      return kUnreachable;
    }
    return kUsage;
  }
  // require_subcommand(1): exactly one was parsed.
  auto chosen = std::find_if(commands_.begin(), commands_.end(), [](const CLI::App* c) { return c->parsed(); });
  chosen_ = static_cast<std::size_t>(chosen - commands_.begin());
  return std::nullopt;
}

}  // namespace holdd::cli
