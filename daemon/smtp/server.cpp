#include "holdd/smtp/server.h"

#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "holdd/base/maillog.h"
#include "holdd/smtp/session.h"

namespace holdd::smtp {
namespace {

using net::ip::tcp;
constexpr auto kAsTuple = net::as_tuple(net::use_awaitable);
// After the grace period sessions are closed; this bounds the wait for their
// coroutines to notice (a spool commit in flight finishes first).
constexpr std::chrono::seconds kTerminateWait{10};

net::ip::address unmapped(net::ip::address a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return net::ip::make_address_v4(net::ip::v4_mapped, a.to_v6());
  }
  return a;
}

std::string describe(const tcp::endpoint& ep) {
  Endpoint e{ep.address().to_string(), ep.port()};
  return e.to_string();
}

}  // namespace

struct SmtpServer::Impl : std::enable_shared_from_this<SmtpServer::Impl> {
  Impl(net::io_context& io_context, SessionDeps d)
      : io(io_context), deps(std::move(d)), drained(io_context) {}

  net::io_context& io;
  SessionDeps deps;
  std::vector<tcp::acceptor> acceptors;
  std::unordered_set<std::shared_ptr<Session>> sessions;
  std::unordered_map<std::string, uint32_t> per_ip;
  net::steady_timer drained;  // woken when the last session ends during shutdown
  bool stopping = false;

  net::awaitable<void> accept_loop(tcp::acceptor& acceptor);
  void on_accept(tcp::socket socket);
  void refuse(tcp::socket& socket, const Reply& reply, const std::string& ip);
  void on_session_end(const std::shared_ptr<Session>& session, const std::string& ip,
                      std::exception_ptr e);
  net::awaitable<void> wait_empty(std::chrono::steady_clock::duration limit);
};

net::awaitable<void> SmtpServer::Impl::accept_loop(tcp::acceptor& acceptor) {
  while (!stopping) {
    auto [ec, socket] = co_await acceptor.async_accept(kAsTuple);
    if (stopping || ec == net::error::operation_aborted) co_return;
    if (ec) {
      // EMFILE and friends: back off a little rather than spin.
      spdlog::warn("smtp: accept on {} failed: {}", describe(acceptor.local_endpoint()),
                   ec.message());
      net::steady_timer pause(io, std::chrono::milliseconds(100));
      co_await pause.async_wait(kAsTuple);
      continue;
    }
    on_accept(std::move(socket));
  }
}

void SmtpServer::Impl::on_accept(tcp::socket socket) {
  boost::system::error_code ec;
  tcp::endpoint peer = socket.remote_endpoint(ec);
  if (ec) return;  // already gone
  const std::string ip = unmapped(peer.address()).to_string();
  if (deps.stats != nullptr) ++deps.stats->connections_total;
  const std::shared_ptr<const ServerConfig> config = deps.config;
  if (sessions.size() >= config->max_connections) {
    refuse(socket, Reply::too_many_connections(), ip);
    return;
  }
  uint32_t& from_ip = per_ip[ip];
  if (from_ip >= config->max_connections_per_ip) {
    refuse(socket, Reply::too_many_connections_from_ip(), ip);
    return;
  }
  ++from_ip;
  if (deps.stats != nullptr) ++deps.stats->connections_open;
  socket.set_option(tcp::no_delay(true), ec);

  auto session = std::make_shared<Session>(std::move(socket), deps);
  sessions.insert(session);
  // Not detached: an exception escaping a session is a bug, logged with the
  // peer; only that session ends.
  net::co_spawn(
      io, [session]() { return session->run(); },
      [self = shared_from_this(), session, ip](std::exception_ptr e) {
        self->on_session_end(session, ip, e);
      });
}

void SmtpServer::Impl::refuse(tcp::socket& socket, const Reply& reply, const std::string& ip) {
  if (deps.stats != nullptr) {
    ++deps.stats->connections_refused;
    ++deps.stats->replies_by_class[4];
  }
  maillog::rejected(ip, "CONNECT", reply.summary());
  // A few bytes into a fresh socket's buffer: never blocks.
  const std::string wire = reply.to_wire();
  boost::system::error_code ec;
  socket.non_blocking(true, ec);
  socket.write_some(net::buffer(wire), ec);
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

void SmtpServer::Impl::on_session_end(const std::shared_ptr<Session>& session,
                                      const std::string& ip, std::exception_ptr e) {
  if (e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("smtp: session with [{}] ended by an exception: {}", ip, ex.what());
    } catch (...) {
      spdlog::error("smtp: session with [{}] ended by an unknown exception", ip);
    }
  }
  sessions.erase(session);
  if (auto it = per_ip.find(ip); it != per_ip.end() && --it->second == 0) per_ip.erase(it);
  if (deps.stats != nullptr && deps.stats->connections_open > 0) --deps.stats->connections_open;
  if (stopping && sessions.empty()) drained.cancel();
}

net::awaitable<void> SmtpServer::Impl::wait_empty(std::chrono::steady_clock::duration limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!sessions.empty() && std::chrono::steady_clock::now() < deadline) {
    drained.expires_at(deadline);
    co_await drained.async_wait(kAsTuple);
  }
}

SmtpServer::SmtpServer(net::io_context& io, SessionDeps deps)
    : impl_(std::make_shared<Impl>(io, std::move(deps))) {}

SmtpServer::~SmtpServer() {
  boost::system::error_code ec;
  for (auto& a : impl_->acceptors) a.close(ec);
}

Status SmtpServer::listen(const std::vector<Endpoint>& endpoints) {
  for (const Endpoint& endpoint : endpoints) {
    const std::string name = "listen on " + endpoint.to_string();
    boost::system::error_code ec;
    std::vector<tcp::endpoint> addresses;
    net::ip::address literal = net::ip::make_address(endpoint.host, ec);
    if (!ec) {
      addresses.emplace_back(literal, endpoint.port);
    } else {
      tcp::resolver resolver(impl_->io);
      auto results = resolver.resolve(endpoint.host, std::to_string(endpoint.port),
                                      tcp::resolver::passive, ec);
      if (ec) return Status::invalid(name + ": cannot resolve " + endpoint.host + ": " + ec.message());
      for (const auto& r : results) addresses.push_back(r.endpoint());
    }
    for (const tcp::endpoint& address : addresses) {
      tcp::acceptor acceptor(impl_->io);
      const std::string where = name + (addresses.size() > 1 ? " (" + describe(address) + ")" : "");
      acceptor.open(address.protocol(), ec);
      if (ec) return Status::io_error(where + ": " + ec.message());
      acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
      // So that 0.0.0.0:25 and [::]:25 can both be bound.
      if (address.address().is_v6()) acceptor.set_option(net::ip::v6_only(true), ec);
      acceptor.bind(address, ec);
      if (ec) return Status::io_error(where + ": " + ec.message());
      acceptor.listen(net::socket_base::max_listen_connections, ec);
      if (ec) return Status::io_error(where + ": " + ec.message());
      spdlog::info("smtp: listening on {}", describe(acceptor.local_endpoint(ec)));
      impl_->acceptors.push_back(std::move(acceptor));
    }
  }
  return Status::ok();
}

std::vector<Endpoint> SmtpServer::local_endpoints() const {
  std::vector<Endpoint> out;
  for (const auto& a : impl_->acceptors) {
    boost::system::error_code ec;
    tcp::endpoint ep = a.local_endpoint(ec);
    if (!ec) out.push_back(Endpoint{ep.address().to_string(), ep.port()});
  }
  return out;
}

void SmtpServer::start() {
  for (auto& acceptor : impl_->acceptors) {
    net::co_spawn(impl_->io, impl_->accept_loop(acceptor),
                  [self = impl_](std::exception_ptr e) {
                    if (!e) return;
                    try {
                      std::rethrow_exception(e);
                    } catch (const std::exception& ex) {
                      spdlog::error("smtp: accept loop ended by an exception: {}", ex.what());
                    } catch (...) {
                      spdlog::error("smtp: accept loop ended by an unknown exception");
                    }
                  });
  }
}

net::awaitable<void> SmtpServer::shutdown(std::chrono::seconds grace) {
  std::shared_ptr<Impl> self = impl_;  // the server must outlive this, but be safe
  self->stopping = true;
  boost::system::error_code ec;
  for (auto& a : self->acceptors) a.close(ec);
  // Copies: a session may end (and leave the set) while we go through it.
  std::vector<std::shared_ptr<Session>> live(self->sessions.begin(), self->sessions.end());
  for (auto& s : live) s->request_stop();
  co_await self->wait_empty(grace);
  if (!self->sessions.empty()) {
    spdlog::warn("smtp: {} session(s) still busy after {}s; closing them", self->sessions.size(),
                 grace.count());
    live.assign(self->sessions.begin(), self->sessions.end());
    for (auto& s : live) s->terminate();
    co_await self->wait_empty(kTerminateWait);
  }
}

void SmtpServer::reconfigure(std::shared_ptr<const ServerConfig> config) {
  if (!config) return;
  // The budget is shared: its new limit applies at once, to every session.
  if (impl_->deps.memory != nullptr) impl_->deps.memory->set_limit(config->max_message_memory);
  impl_->deps.config = std::move(config);
}

void SmtpServer::set_tls(std::shared_ptr<TlsContext> tls) { impl_->deps.tls = std::move(tls); }

size_t SmtpServer::session_count() const { return impl_->sessions.size(); }

}  // namespace holdd::smtp
