#pragma once
// holdctl's half of each verb of protocol::kVerbs: the request it sends and how it
// shows the answer. The table of verbs (control/verbs.h) has the name, help and
// arguments; the daemon's half is in control/commands.cpp. A unit test checks that
// every verb has exactly one ClientVerb.
#include <span>
#include <string_view>

#include <nlohmann/json.hpp>

#include "holdd/cli/verb_args.h"

namespace holdd::cli {

struct ClientVerb {
  std::string_view name;
  // The request's "args" (docs/control-protocol.md). Throws UsageError for what
  // CLI11 does not check (--timeout without --wait, an unreadable --file); the
  // monitoring plugin prints its UNKNOWN line itself and throws ExitNow.
  nlohmann::json (*build)(const VerbArgs& args);
  // Shows a successful result as text (with --json, holdctl prints the result).
  void (*print)(const nlohmann::json& result);
  // A monitoring plugin (`check`): exits with the result's "code" (0 to 3), and
  // anything that keeps it from one is UNKNOWN on stdout, exit 3.
  bool monitoring_plugin = false;
};

// In the order of protocol::kVerbs.
std::span<const ClientVerb> client_verbs();

// The ClientVerb called `name`, or nullptr.
const ClientVerb* find_client_verb(std::string_view name);

// The exit code of a successful result: kOk, or a monitoring plugin's own code.
int exit_code(const ClientVerb& verb, const nlohmann::json& result);

}  // namespace holdd::cli
