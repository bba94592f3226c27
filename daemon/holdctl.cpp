// holdctl: the operator's CLI. Talks to holdd over its control socket
// (docs/control-protocol.md) and turns the answer into text or, with --json, into
// one JSON document. Exit codes (SPEC "Binaries"): 0 ok, 1 the daemon refused or
// failed, 2 usage error, 3 daemon unreachable; `check` exits with its plugin code.
//
// The verbs, their arguments and help are the table in control/verbs.h; what each
// sends and prints is in cli/client_verbs.cpp. This file is the rest: which
// socket, one exchange on it, and the exit code.
//
// Deliberately plain POSIX sockets and no Asio: holdctl is a short-lived client
// that links only the config parser.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "holdd/cli/client_verbs.h"
#include "holdd/cli/command_line.h"
#include "holdd/cli/exit.h"
#include "holdd/cli/text_output.h"
#include "holdd/config/config.h"
#include "holdd/protocol/framing.h"

namespace {

using json = nlohmann::json;
namespace protocol = holdd::protocol;
using namespace holdd::cli;

std::string socket_path(const GlobalOptions& o) {
  if (!o.socket.empty()) return o.socket;
  const bool explicit_config = !o.config.empty();
  const std::string path = explicit_config ? o.config : kDefaultConfig;
  std::error_code ec;
  if (!explicit_config && !std::filesystem::exists(path, ec)) return kDefaultSocket;
  auto loaded = holdd::load_config(path);
  if (auto* config = std::get_if<holdd::Config>(&loaded)) return config->control.socket;
  const auto& errors = std::get<std::vector<holdd::ConfigError>>(loaded);
  if (explicit_config) {
    for (const auto& e : errors) std::cerr << "holdctl: " << e.to_string() << "\n";
    throw UsageError{"cannot use " + path + " (fix it, or pass --socket PATH)"};
  }
  // The default file exists but is broken or unreadable (e.g. not root): the
  // daemon may well run on the default socket, so try that rather than give up.
  std::cerr << "holdctl: note: cannot use " << path << " ("
            << (errors.empty() ? std::string("invalid") : errors.front().to_string()) << "); trying "
            << kDefaultSocket << "\n";
  return kDefaultSocket;
}

// ---------------------------------------------------------------- the socket

class Connection {
 public:
  // Fails fast: a daemon that is not there, or whose accept queue is full for
  // seconds, is "unreachable" rather than a hang.
  explicit Connection(const std::string& path) : path_(path) {
    sockaddr_un addr{};
    if (path.size() >= sizeof addr.sun_path) throw UsageError{"socket path too long: " + path};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) unreachable(std::strerror(errno));
    for (int tries = 0;; ++tries) {
      if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) break;
      if (errno == EAGAIN && tries < 100) {  // backlog full: the daemon is busy, not gone
        ::usleep(50 * 1000);
        continue;
      }
      unreachable(std::strerror(errno));
    }
    // Commands such as `lock` and `release --wait` may legitimately take long.
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
  }
  ~Connection() {
    if (fd_ >= 0) ::close(fd_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  json exchange(const json& request) {
    const std::string line = protocol::encode_line(request);
    for (size_t off = 0; off < line.size();) {
      ssize_t n = ::send(fd_, line.data() + off, line.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) lost(std::strerror(errno));
      off += static_cast<size_t>(n);
    }
    std::string reply;
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) lost(std::strerror(errno));
      if (n == 0) lost("the daemon closed the connection without answering");
      reply.append(buf, static_cast<size_t>(n));
      if (reply.find('\n') != std::string::npos) break;
      if (reply.size() > protocol::kMaxResponseLine) lost("answer too long");
    }
    std::optional<json> response = protocol::decode_line(reply.substr(0, reply.find('\n')));
    if (!response) lost("the daemon's answer is not JSON");
    return *response;
  }

  [[noreturn]] void unreachable(const std::string& why) {
    throw Unreachable{"cannot connect to " + path_ + ": " + why +
                      " — is holdd running? (systemctl status holdd)"};
  }
  [[noreturn]] void lost(const std::string& why) {
    throw Unreachable{"lost the connection to " + path_ + ": " + why + " (journalctl -u holdd)"};
  }

  struct Unreachable {
    std::string message;
  };

 private:
  std::string path_;
  int fd_ = -1;
};

// ---------------------------------------------------------------- main

// Known before the command line is parsed, so that even a usage error of a
// monitoring plugin is its UNKNOWN line (monitoring-plugins guidelines: never a
// usage error that a monitoring system would read as CRITICAL).
bool names_monitoring_plugin(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const ClientVerb* verb = find_client_verb(argv[i]);
    if (verb != nullptr && verb->monitoring_plugin) return true;
  }
  return false;
}

int report_unreachable(const ClientVerb& verb, bool as_json, const std::string& message) {
  if (verb.monitoring_plugin) {
    const std::string line = "HOLDD UNKNOWN - daemon unreachable: " + message;
    if (as_json) {
      std::cout << json{{"code", 3}, {"line", line}}.dump(2) << "\n";
    } else {
      std::cout << line << "\n";
    }
    return kUnreachable;
  }
  if (as_json) std::cout << json{{"error", message}}.dump(2) << "\n";
  std::cerr << "holdctl: " << message << "\n";
  return kUnreachable;
}

int report_refusal(const ClientVerb& verb, bool as_json, const json& response) {
  const std::string error = response.contains("error") ? str(response["error"]) : "the daemon refused";
  if (verb.monitoring_plugin) {
    std::cout << "HOLDD UNKNOWN - " << error << "\n";
    return kUnreachable;
  }
  if (as_json) std::cout << json{{"error", error}}.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  std::cerr << "holdctl: " << error << "\n";
  return kRefused;
}

int run(int argc, char** argv, bool monitoring_plugin) {
  CommandLine command_line;
  if (std::optional<int> exit = command_line.parse(argc, argv, monitoring_plugin)) return *exit;
  const GlobalOptions& o = command_line.options();
  const ClientVerb& verb = *find_client_verb(command_line.verb().name);  // one per verb: client_verbs_test
  if (verb.run != nullptr) {
    // One connection for the whole conversation, opened at the first request.
    std::optional<Connection> connection;
    const std::string path = socket_path(o);
    Session session;
    session.json = o.json;
    session.exchange = [&](const json& request) -> json {
      try {
        if (!connection) connection.emplace(path);
        return connection->exchange(request);
      } catch (const Connection::Unreachable& u) {
        connection.reset();
        throw std::runtime_error(u.message);
      }
    };
    return verb.run(command_line.args(), session);
  }
  const json request = protocol::make_request(verb.name, verb.build(command_line.args()));

  json response;
  try {
    Connection connection(socket_path(o));
    response = connection.exchange(request);
  } catch (const Connection::Unreachable& u) {
    return report_unreachable(verb, o.json, u.message);
  }
  if (!response.value("ok", false)) return report_refusal(verb, o.json, response);

  const json& result = response["result"];
  if (o.json) {
    std::cout << result.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  } else {
    verb.print(result);
  }
  return exit_code(verb, result);
}

}  // namespace

int main(int argc, char** argv) {
  const bool monitoring_plugin = names_monitoring_plugin(argc, argv);
  try {
    return run(argc, argv, monitoring_plugin);
  } catch (const UsageError& e) {
    std::cerr << "holdctl: " << e.message << "\n";
    if (!monitoring_plugin) return kUsage;
    std::cout << "HOLDD UNKNOWN - " << e.message << "\n";
    return kUnreachable;
  } catch (const ExitNow& e) {
    return e.code;
  } catch (const nlohmann::json::exception& e) {
    // A daemon answer that does not have the documented shape.
    std::cerr << "holdctl: unexpected answer from holdd: " << e.what() << "\n";
    return kRefused;
  }
}
