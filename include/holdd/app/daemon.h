#pragma once
// The running daemon: owns the io_context and every long-lived part (spool,
// dispatcher, SMTP server, control and metrics servers) and wires them together.
// Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP reloads the configuration
// (directory files, limits, upstreams); a bad new configuration is refused with a
// log line and the old one stays in force.
#include <string>

namespace holdd {

// Runs until SIGTERM/SIGINT. Returns the process exit code.
int run_daemon(const std::string& config_path);

// --check-config: prints each problem (file, key, why) on stderr; returns 0 or 1.
int check_config(const std::string& config_path);

}  // namespace holdd
