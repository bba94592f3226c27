#include "holdd/control/metrics_server.h"

#include <list>
#include <string_view>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "holdd/control/metrics.h"
#include "holdd/spool/spool.h"
#include "holdd/control/snapshot.h"

namespace holdd {

namespace {

using tcp = net::ip::tcp;
constexpr auto kTuple = net::as_tuple(net::use_awaitable);

// A scrape request is a request line and a few headers; anything bigger is not one.
constexpr size_t kMaxRequestHead = 8192;
// The whole exchange (request in, response out) must fit in this time.
constexpr std::chrono::seconds kExchangeTimeout{10};

std::string response(std::string_view status, std::string_view content_type, const std::string& body,
                     bool head_only) {
  std::string out = "HTTP/1.1 ";
  out += status;
  out += "\r\nContent-Type: ";
  out += content_type;
  out += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  if (!head_only) out += body;
  return out;
}

}  // namespace

struct MetricsServer::Impl {
  Impl(net::any_io_executor executor, DaemonView v) : ex(executor), acceptor(executor), view(std::move(v)) {}
  net::any_io_executor ex;
  tcp::acceptor acceptor;
  DaemonView view;
  std::string where;  // "127.0.0.1:9725" for logs
  std::list<tcp::socket*> connections;
  bool stopped = false;

  // The reply to one request head ("GET /metrics HTTP/1.1\r\nHost: ...").
  std::string answer(std::string_view head) const {
    std::string_view line = head.substr(0, head.find("\r\n"));
    size_t sp1 = line.find(' ');
    size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) {
      return response("400 Bad Request", "text/plain; charset=utf-8", "bad request\n", false);
    }
    std::string_view method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    target = target.substr(0, target.find('?'));  // Prometheus may add ?name[]=...; all is served
    const bool head_only = method == "HEAD";
    if (method != "GET" && !head_only) {
      return response("405 Method Not Allowed\r\nAllow: GET, HEAD", "text/plain; charset=utf-8",
                      "only GET\n", false);
    }
    if (target != "/metrics") {
      return response("404 Not Found", "text/plain; charset=utf-8", "holdd serves /metrics only\n", head_only);
    }
    return response("200 OK", "text/plain; version=0.0.4; charset=utf-8", render_metrics(take_snapshot(view)),
                    head_only);
  }
};

namespace {

using Impl = MetricsServer::Impl;

net::awaitable<void> serve(std::shared_ptr<Impl> self, tcp::socket socket) {
  self->connections.push_front(&socket);
  struct Unregister {
    Impl& impl;
    std::list<tcp::socket*>::iterator it;
    ~Unregister() { impl.connections.erase(it); }
  } unregister{*self, self->connections.begin()};
  if (self->stopped) co_return;

  // Closing the socket when the deadline passes ends whichever read or write is
  // pending. The handler touches the socket only when the timer fired; when this
  // frame ends first, the timer's destructor cancels it and the handler sees the error.
  net::steady_timer deadline(self->ex, kExchangeTimeout);
  deadline.async_wait([&socket](boost::system::error_code ec) {
    if (!ec) {
      boost::system::error_code ignored;
      socket.close(ignored);
    }
  });

  std::string head;
  auto [ec, n] = co_await net::async_read_until(socket, net::dynamic_buffer(head, kMaxRequestHead),
                                                "\r\n\r\n", kTuple);
  std::string reply;
  if (ec == net::error::not_found) {
    reply = response("431 Request Header Fields Too Large", "text/plain; charset=utf-8", "too large\n", false);
  } else if (ec) {
    co_return;  // closed, timed out, or stop()
  } else {
    // The queue gauges must count every message answered 250.
    if (self->view.spool != nullptr) co_await self->view.spool->sync(std::chrono::seconds(2));
    reply = self->answer(std::string_view(head).substr(0, n));
  }
  co_await net::async_write(socket, net::buffer(reply), kTuple);
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_send, ignored);
}

void log_exception(const std::string& where, std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    spdlog::error("metrics: {}: exception: {}", where, x.what());
  }
}

net::awaitable<void> accept_loop(std::shared_ptr<Impl> self) {
  for (;;) {
    auto [ec, socket] = co_await self->acceptor.async_accept(kTuple);
    if (self->stopped || ec == net::error::operation_aborted) co_return;
    if (ec) {
      // EMFILE and friends: wait a little instead of spinning on the error.
      spdlog::warn("metrics: accept on {}: {}", self->where, ec.message());
      net::steady_timer pause(self->ex, std::chrono::milliseconds(100));
      co_await pause.async_wait(kTuple);
      continue;
    }
    net::co_spawn(self->ex, serve(self, std::move(socket)),
                  [where = self->where](std::exception_ptr e) { log_exception(where, e); });
  }
}

}  // namespace

Result<std::unique_ptr<MetricsServer>> MetricsServer::open(net::any_io_executor ex, const Endpoint& listen,
                                                           DaemonView view) {
  auto impl = std::make_shared<Impl>(ex, std::move(view));
  impl->where = listen.to_string();
  boost::system::error_code ec;
  tcp::endpoint endpoint;
  net::ip::address address = net::ip::make_address(listen.host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, listen.port);
  } else {
    // A name such as "localhost": resolved once, at startup (blocking is fine here).
    tcp::resolver resolver(ex);
    auto results = resolver.resolve(listen.host, std::to_string(listen.port), ec);
    if (ec || results.empty()) {
      return Status::invalid("control.metrics_listen: cannot resolve \"" + listen.host + "\": " +
                             (ec ? ec.message() : std::string("no address")));
    }
    endpoint = results.begin()->endpoint();
  }
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return Status::io_error("cannot listen on " + impl->where + " for metrics: " + ec.message());
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

MetricsServer::~MetricsServer() { stop(); }

void MetricsServer::start() {
  net::co_spawn(impl_->ex, accept_loop(impl_),
                [where = impl_->where](std::exception_ptr e) { log_exception(where, e); });
  spdlog::info("metrics: serving http://{}/metrics", impl_->where);
}

void MetricsServer::stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
  for (tcp::socket* s : impl_->connections) s->close(ec);
}

}  // namespace holdd
