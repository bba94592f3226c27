#include "holdd/control/control_server.h"

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <list>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "holdd/control/commands.h"
#include "holdd/protocol/framing.h"

namespace holdd {

namespace {

using Local = net::local::stream_protocol;
constexpr auto kTuple = net::as_tuple(net::use_awaitable);

std::string errno_text(int err) { return std::strerror(err); }

// getpwnam_r/getgrnam_r want a caller buffer whose needed size is only a hint.
Result<uid_t> user_id(const std::string& name) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  int err;
  while ((err = getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found)) == ERANGE) {
    buf.resize(buf.size() * 2);
  }
  if (err != 0) return Status::io_error("control.socket_owner: cannot look up \"" + name + "\": " + errno_text(err));
  if (found == nullptr) return Status::invalid("control.socket_owner: no such user \"" + name + "\"");
  return pw.pw_uid;
}

Result<gid_t> group_id(const std::string& name) {
  std::vector<char> buf(16384);
  group gr{};
  group* found = nullptr;
  int err;
  while ((err = getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found)) == ERANGE) {
    buf.resize(buf.size() * 2);
  }
  if (err != 0) return Status::io_error("control.socket_group: cannot look up \"" + name + "\": " + errno_text(err));
  if (found == nullptr) return Status::invalid("control.socket_group: no such group \"" + name + "\"");
  return gr.gr_gid;
}

// A socket file left by a daemon that died is removed; one that still answers
// belongs to a running daemon and is not ours to take over.
Status clear_stale_socket(const std::string& path) {
  struct stat st{};
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::ok();
    return Status::io_error(path + ": " + errno_text(errno));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return Status::invalid(path + " exists and is not a socket; remove it or change [control] socket");
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::io_error("socket: " + errno_text(errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  const bool answered = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  if (answered) return Status::invalid(path + ": another holdd is listening on it");
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Status::io_error("cannot remove stale " + path + ": " + errno_text(errno));
  }
  return Status::ok();
}

ControlPeer peer_of(Local::socket& socket) {
  ControlPeer peer;
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
    peer.uid = cred.uid;
    peer.pid = cred.pid;
  }
  return peer;
}

}  // namespace

struct ControlServer::Impl {
  Impl(net::any_io_executor executor, std::string socket_path, DaemonView view)
      : ex(executor), path(std::move(socket_path)), acceptor(executor), commands(std::move(view)) {}

  struct Client {
    Local::socket* socket = nullptr;
    net::cancellation_signal cancel;
  };

  net::any_io_executor ex;
  std::string path;
  ino_t inode = 0;  // of our socket file: stop() removes only that one
  Local::acceptor acceptor;
  ControlCommands commands;
  std::list<Client> clients;
  bool stopped = false;
};

namespace {

using Impl = ControlServer::Impl;

// One connection: requests in turn until EOF, an error, or stop().
net::awaitable<void> serve(std::shared_ptr<Impl> self, Local::socket socket, std::list<Impl::Client>::iterator me) {
  struct Unregister {
    Impl& impl;
    std::list<Impl::Client>::iterator it;
    ~Unregister() { impl.clients.erase(it); }
  } unregister{*self, me};
  me->socket = &socket;  // the frame's copy: stop() closes it
  if (self->stopped) co_return;

  const ControlPeer peer = peer_of(socket);
  std::string buffer;
  for (;;) {
    auto [ec, n] = co_await net::async_read_until(
        socket, net::dynamic_buffer(buffer, protocol::kMaxRequestLine), '\n', kTuple);
    if (ec == net::error::not_found) {  // the buffer filled up without a newline
      std::string reply = protocol::encode_line(protocol::error_response(
          "request longer than " + std::to_string(protocol::kMaxRequestLine >> 20) + " MiB; split the batch"));
      co_await net::async_write(socket, net::buffer(reply), kTuple);
      co_return;
    }
    if (ec) co_return;  // EOF, reset or stop(): nothing to answer
    std::string line = buffer.substr(0, n);
    buffer.erase(0, n);
    if (line.find_first_not_of(" \t\r\n") == std::string::npos) continue;

    nlohmann::json response;
    if (std::optional<nlohmann::json> request = protocol::decode_line(line)) {
      response = co_await self->commands.execute(*request, peer);
    } else {
      response = protocol::error_response("malformed request: expected one JSON object per line");
    }
    std::string reply = protocol::encode_line(response);
    auto [wec, written] = co_await net::async_write(socket, net::buffer(reply), kTuple);
    if (wec) co_return;  // holdctl went away (Ctrl-C); what it asked for is done
  }
}

net::awaitable<void> accept_loop(std::shared_ptr<Impl> self) {
  for (;;) {
    auto [ec, socket] = co_await self->acceptor.async_accept(kTuple);
    if (self->stopped || ec == net::error::operation_aborted) co_return;
    if (ec) {
      // EMFILE and friends: wait a little instead of spinning on the error.
      spdlog::warn("control: accept on {}: {}", self->path, ec.message());
      net::steady_timer pause(self->ex, std::chrono::milliseconds(100));
      co_await pause.async_wait(kTuple);
      continue;
    }
    self->clients.emplace_back();
    auto me = std::prev(self->clients.end());
    net::co_spawn(
        self->ex, serve(self, std::move(socket), me),
        net::bind_cancellation_slot(me->cancel.slot(), [path = self->path](std::exception_ptr e) {
          if (!e) return;
          try {
            std::rethrow_exception(e);
          } catch (const boost::system::system_error& x) {
            // stop() cancelled a command that was waiting (release --wait): normal.
            if (x.code() == net::error::operation_aborted) return;
            spdlog::error("control: connection on {} ended by an exception: {}", path, x.what());
          } catch (const std::exception& x) {
            spdlog::error("control: connection on {} ended by an exception: {}", path, x.what());
          }
        }));
  }
}

}  // namespace

Result<std::unique_ptr<ControlServer>> ControlServer::open(net::any_io_executor ex,
                                                           const ControlConfig& config, DaemonView view) {
  const std::string& path = config.socket;
  if (path.empty()) return Status::invalid("control.socket is empty");
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return Status::invalid("control.socket: path longer than " +
                           std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " bytes: " + path);
  }
  std::optional<uid_t> owner;
  std::optional<gid_t> group;
  if (!config.socket_owner.empty()) {
    Result<uid_t> uid = user_id(config.socket_owner);
    if (!uid) return uid.status();
    owner = *uid;
  }
  if (!config.socket_group.empty()) {
    Result<gid_t> gid = group_id(config.socket_group);
    if (!gid) return gid.status();
    group = *gid;
  }

  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code fs_ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, fs_ec);
  if (fs_ec) return Status::io_error("cannot create " + parent.string() + ": " + fs_ec.message());
  if (Status s = clear_stale_socket(path); !s.is_ok()) return s;

  auto impl = std::make_shared<Impl>(ex, path, std::move(view));
  boost::system::error_code ec;
  impl->acceptor.open(Local(), ec);
  if (!ec) impl->acceptor.bind(Local::endpoint(path), ec);
  if (!ec) impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return Status::io_error("cannot listen on " + path + ": " + ec.message());

  // The mode is the access control: apply it before anyone can use the socket
  // (start() has not run, so nothing is accepted yet).
  if (::chmod(path.c_str(), static_cast<mode_t>(config.socket_mode)) != 0) {
    return Status::io_error("chmod " + path + ": " + errno_text(errno));
  }
  if ((owner || group) && ::chown(path.c_str(), owner.value_or(static_cast<uid_t>(-1)),
                                  group.value_or(static_cast<gid_t>(-1))) != 0) {
    return Status::io_error("chown " + path + " to " + config.socket_owner + ":" + config.socket_group +
                            ": " + errno_text(errno));
  }
  struct stat st{};
  if (::stat(path.c_str(), &st) == 0) impl->inode = st.st_ino;
  return std::unique_ptr<ControlServer>(new ControlServer(std::move(impl)));
}

ControlServer::~ControlServer() { stop(); }

void ControlServer::start() {
  net::co_spawn(impl_->ex, accept_loop(impl_), [path = impl_->path](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      spdlog::error("control: accepting on {} stopped by an exception: {}", path, x.what());
    }
  });
  spdlog::info("control: listening on {}", impl_->path);
}

void ControlServer::stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
  struct stat st{};
  if (::stat(impl_->path.c_str(), &st) == 0 && st.st_ino == impl_->inode) ::unlink(impl_->path.c_str());
  // Cancel first (a command awaiting the dispatcher stops waiting), then close:
  // the completions are posted, so no client leaves the list during this loop.
  for (Impl::Client& c : impl_->clients) {
    c.cancel.emit(net::cancellation_type::all);
    if (c.socket != nullptr) c.socket->close(ec);
  }
}

}  // namespace holdd
