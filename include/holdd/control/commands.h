#pragma once
// ControlCommands carries out the requests of docs/control-protocol.md against the
// running daemon: reads come from the spool and dispatcher, changes go through the
// spool's group commit (one durable transaction per batch) and then wake the
// dispatcher. A batch naming any mailbox the directory refuses is refused whole,
// naming every refused name, before anything changes.
//
// Runs on the io_context's thread (DaemonView's rule). Several requests may be in
// progress at once (one per control connection); each is a coroutine.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <nlohmann/json_fwd.hpp>

#include "holdd/control/daemon_view.h"

namespace holdd {

// Who is asking, from SO_PEERCRED on the control socket.
struct ControlPeer {
  int64_t uid = -1;
  int64_t pid = -1;
  // "holdctl uid=0 pid=4242": recorded in mailbox history and in the mail log.
  std::string by() const;
};

class ControlCommands {
 public:
  explicit ControlCommands(DaemonView view) : view_(std::move(view)) {}

  // One request object -> one response object: {"ok": true, "result": ...} or
  // {"ok": false, "error": "why, and what to do"}. A malformed request is a refusal,
  // not an exception.
  net::awaitable<nlohmann::json> execute(const nlohmann::json& request, const ControlPeer& peer);

  // The verbs it has a handler for, in the order of protocol::kVerbs
  // (control/verbs.h), which they match.
  static std::vector<std::string_view> verbs();

 private:
  DaemonView view_;
};

}  // namespace holdd
