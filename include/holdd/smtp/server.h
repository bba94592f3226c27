#pragma once
// SmtpServer accepts SMTP connections on every [server] listen endpoint and runs
// one Session coroutine per connection, on the daemon's single I/O thread (no
// strands needed; nothing here blocks that thread after listen()).
//
// Limits: over max_connections or max_connections_per_ip a new connection is
// answered "421 4.7.0" and closed at once.
//
// Shutdown (SIGTERM) asks, then insists: listeners close; idle sessions say
// 421 4.3.2 and close; a session receiving or storing a message may finish it
// within `grace`; what is left is then closed, its unfinished message never
// acknowledged.
//
// REQUIRES: co_await shutdown() has completed (or the io_context is stopped and
// will not run again) before the SmtpServer is destroyed.
#include <chrono>
#include <memory>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "holdd/base/status.h"
#include "holdd/config/config.h"
#include "holdd/smtp/session_deps.h"

namespace boost::asio {
class io_context;
}

namespace holdd::smtp {

class SmtpServer {
 public:
  // deps.config, deps.spool and deps.directory are required.
  SmtpServer(boost::asio::io_context& io, SessionDeps deps);
  ~SmtpServer();
  SmtpServer(const SmtpServer&) = delete;
  SmtpServer& operator=(const SmtpServer&) = delete;

  // Binds and listens on each endpoint ("0.0.0.0:25", "[::]:25" with
  // IPV6_V6ONLY so both bind; a host name binds each address it resolves to).
  // On failure the Status names the endpoint: "listen on 0.0.0.0:25: Address
  // already in use". Call before start(); blocking (resolution) is fine then.
  Status listen(const std::vector<Endpoint>& endpoints);
  // The endpoints actually bound (port 0 replaced by the one the kernel chose).
  std::vector<Endpoint> local_endpoints() const;
  // Starts accepting on every listening endpoint.
  void start();
  // Closes the listeners, asks every session to finish, waits up to `grace`,
  // then closes the rest. Completes when no session is left.
  boost::asio::awaitable<void> shutdown(std::chrono::seconds grace);
  // SIGHUP: new limits and hostname for connections accepted from now on
  // (sessions in progress keep theirs), except max_message_memory, which is
  // one budget for all sessions and changes at once. Listen endpoints need a
  // restart.
  void reconfigure(std::shared_ptr<const ServerConfig> config);
  // Inbound STARTTLS for connections accepted from now on (null: not offered).
  // Sessions already connected keep the context they have (SIGHUP with a
  // renewed certificate disturbs nobody). Load it with TlsContext::load().
  void set_tls(std::shared_ptr<TlsContext> tls);

  size_t session_count() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace holdd::smtp

namespace holdd {
using smtp::MessageAnnotator;
using smtp::SessionDeps;
using smtp::SmtpServer;
}  // namespace holdd
