// holdd: the temporary MX of a mail-server migration (shared/SPEC.md "Binaries").
#include <CLI/CLI.hpp>

#include "holdd/app/daemon.h"
#include "holdd/app/logging.h"

int main(int argc, char** argv) {
  CLI::App app{"holdd: temporary MX that holds mail while mailboxes are migrated"};
  std::string config_path = "/etc/holdd/holdd.toml";
  bool check = false;
  bool verbose = false;
  app.add_option("--config", config_path, "configuration file")->capture_default_str();
  app.add_flag("--check-config", check, "validate the configuration and exit (0 ok, 1 problems)");
  app.add_flag("-v,--verbose", verbose, "debug logging (protocol lines, no message content)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (check) return holdd::check_config(config_path);
  holdd::setup_logging(verbose);
  return holdd::run_daemon(config_path);
}
