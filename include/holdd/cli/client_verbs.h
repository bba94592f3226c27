#pragma once
// holdctl's half of each verb of protocol::kVerbs: the request it sends and how it
// shows the answer. The table of verbs (control/verbs.h) has the name, help and
// arguments; the daemon's half is in control/commands.cpp. A unit test checks that
// every verb has exactly one ClientVerb.
#include <functional>
#include <span>
#include <string_view>

#include <nlohmann/json.hpp>

#include "holdd/cli/verb_args.h"

namespace holdd::cli {

// What a verb that talks to the daemon more than once (migrate) gets from holdctl.
struct Session {
  // Sends one request ({"command", "args"}) and returns the response ({"ok", ...}).
  // Throws std::runtime_error (saying why) when the daemon cannot be reached.
  std::function<nlohmann::json(const nlohmann::json& request)> exchange;
  bool json = false;  // --json
};

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
  // Set for a verb that runs a conversation of its own (migrate) instead of one
  // request: holdctl calls it, and it returns holdctl's exit code.
  int (*run)(const VerbArgs& args, const Session& session) = nullptr;
  // Set for a verb whose successful result can still mean exit 1 (probe, release
  // --verify: a mailbox the upstream did not accept).
  int (*exit)(const nlohmann::json& result) = nullptr;
};

// In the order of protocol::kVerbs.
std::span<const ClientVerb> client_verbs();

// The ClientVerb called `name`, or nullptr.
const ClientVerb* find_client_verb(std::string_view name);

// The exit code of a successful result: kOk, a monitoring plugin's own code, or
// kRefused when a probe or a verified release found a mailbox not accepted.
int exit_code(const ClientVerb& verb, const nlohmann::json& result);

}  // namespace holdd::cli
