#pragma once
// The MetricsServer answers Prometheus scrapes: a minimal HTTP/1.1 server on
// [control] metrics_listen that serves GET (and HEAD) /metrics in the text format
// (render_metrics) and 404 for anything else, one request per connection
// (Connection: close). Requests are bounded in size and must arrive within a few
// seconds, so a slow or hostile client cannot hold resources.
//
// Lives on the io_context's thread, like the DaemonView it reads.
#include <memory>

#include <boost/asio/any_io_executor.hpp>

#include "holdd/base/status.h"
#include "holdd/config/config.h"
#include "holdd/control/daemon_view.h"

namespace holdd {

class MetricsServer {
 public:
  // Binds and listens on `listen` (an IP address, or a name resolved now).
  static Result<std::unique_ptr<MetricsServer>> open(net::any_io_executor ex, const Endpoint& listen,
                                                     DaemonView view);
  ~MetricsServer();  // stop()
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  void start();  // begins accepting
  void stop();   // closes the listener and open connections; idempotent

  struct Impl;

 private:
  explicit MetricsServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace holdd
