#pragma once
// The ControlServer is holdctl's way in: a Unix stream socket at [control] socket
// (mode socket_mode, owner socket_owner, group socket_group), one coroutine per
// connection, one JSON request per line answered by one JSON line
// (docs/control-protocol.md). Who asks comes from SO_PEERCRED; the file mode is
// the access control, so anyone who can connect may change states.
//
// Lives on the io_context's thread. Connections keep the server's state alive, so
// destroying the ControlServer while a `release --wait` is running is safe; stop()
// asks them to finish.
#include <memory>

#include <boost/asio/any_io_executor.hpp>

#include "holdd/base/status.h"
#include "holdd/config/config.h"
#include "holdd/control/daemon_view.h"

namespace holdd {

class ControlServer {
 public:
  // Creates the socket's directory if missing, replaces a stale socket (refusing
  // when another daemon still answers on it, or when the path is not a socket),
  // binds, listens, and applies mode, owner and group. Unknown user or group
  // names are errors. Does not accept yet.
  static Result<std::unique_ptr<ControlServer>> open(net::any_io_executor ex,
                                                     const ControlConfig& config, DaemonView view);
  ~ControlServer();  // stop()
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  void start();  // begins accepting
  // Closes the listening socket and removes its file, closes every connection and
  // cancels the commands they are awaiting (e.g. release --wait). Idempotent.
  void stop();

  struct Impl;

 private:
  explicit ControlServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace holdd
