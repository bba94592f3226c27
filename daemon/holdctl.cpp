// holdctl: the operator's CLI. Talks to holdd over its control socket
// (docs/control-protocol.md) and turns the answer into text or, with --json, into
// one JSON document. Exit codes (SPEC "Binaries"): 0 ok, 1 the daemon refused or
// failed, 2 usage error, 3 daemon unreachable; `check` exits with its plugin code.
//
// Deliberately plain POSIX sockets and no Asio: holdctl is a short-lived client
// that links only the config parser.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "holdd/config/config.h"
#include "holdd/config/units.h"
#include "holdd/control/protocol.h"

namespace {

using json = nlohmann::json;
namespace protocol = holdd::protocol;

constexpr const char* kDefaultConfig = "/etc/holdd/holdd.toml";
constexpr const char* kDefaultSocket = "/run/holdd/control.sock";

enum Exit { kOk = 0, kRefused = 1, kUsage = 2, kUnreachable = 3 };

// Raised for an exit with a message already printed.
struct ExitNow {
  int code;
};

// Set when the command is `check`: a check that cannot run is UNKNOWN (exit 3)
// with a status line, never a usage error a monitoring system would read as
// CRITICAL (monitoring-plugins guidelines).
bool g_is_check = false;

[[noreturn]] void fail(int code, const std::string& message) {
  std::cerr << "holdctl: " << message << "\n";
  if (g_is_check && code == kUsage) {
    std::cout << "HOLDD UNKNOWN - " << message << "\n";
    throw ExitNow{kUnreachable};
  }
  throw ExitNow{code};
}

// ---------------------------------------------------------------- options

struct Options {
  std::string config;
  std::string socket;
  bool json = false;

  std::string state;                    // list
  std::string mailbox;                  // show, queue, retry
  std::vector<std::string> mailboxes;   // lock, release, revert
  std::string file;                     // lock, release, revert
  bool wait = false;                    // release
  double rate = 0;                      // release
  bool dry_run = false;                 // release
  std::string timeout;                  // release --wait
  bool all = false;                     // retry
  std::vector<std::string> ids;         // drop
  bool yes = false;                     // drop
  std::string warn_age, crit_age, old_quiet;  // check
};

std::vector<std::string> mailboxes_from(const Options& o) {
  std::vector<std::string> out = o.mailboxes;
  if (!o.file.empty()) {
    std::string text;
    if (o.file == "-") {
      std::ostringstream ss;
      ss << std::cin.rdbuf();
      text = ss.str();
    } else {
      std::ifstream in(o.file, std::ios::binary);
      if (!in) fail(kUsage, "cannot read " + o.file + ": " + std::strerror(errno));
      std::ostringstream ss;
      ss << in.rdbuf();
      text = ss.str();
    }
    for (std::string& a : protocol::parse_address_list(text)) out.push_back(std::move(a));
    if (out.empty()) fail(kUsage, o.file + " names no mailbox (one address a line; '#' starts a comment)");
  }
  if (out.empty()) fail(kUsage, "name at least one MAILBOX, or --file F (run with --help for more)");
  return out;
}

std::string socket_path(const Options& o) {
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
    fail(kUsage, "cannot use " + path + " (fix it, or pass --socket PATH)");
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
    if (path.size() >= sizeof addr.sun_path) fail(kUsage, "socket path too long: " + path);
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

// ---------------------------------------------------------------- text output

std::string str(const json& v, const char* fallback = "-") {
  if (v.is_null()) return fallback;
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

std::string human_size(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  }
  return buf;
}

std::string human_age(const json& seconds) {
  if (!seconds.is_number()) return "-";
  long long s = seconds.get<long long>();
  if (s <= 0) return "0s";
  std::string out;
  const struct { long long size; char unit; } units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
  int parts = 0;
  for (const auto& u : units) {
    if (parts == 2) break;
    if (s >= u.size) {
      out += std::to_string(s / u.size) + u.unit;
      s %= u.size;
      ++parts;
    } else if (parts > 0) {
      ++parts;
    }
  }
  return out;
}

uint64_t num(const json& v) { return v.is_number() ? v.get<uint64_t>() : 0; }

// Columns padded to their widest cell; the last column is not padded.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print(std::ostream& out) const {
    std::vector<size_t> width(rows_.front().size(), 0);
    for (const auto& r : rows_) {
      for (size_t i = 0; i < r.size() && i < width.size(); ++i) width[i] = std::max(width[i], r[i].size());
    }
    for (const auto& r : rows_) {
      std::string line;
      for (size_t i = 0; i < r.size(); ++i) {
        line += r[i];
        if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
      }
      line.erase(line.find_last_not_of(' ') + 1);  // an empty last column leaves no padding
      out << line << "\n";
    }
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

void print_status(const json& r) {
  const json& m = r["mailboxes"];
  const json& held = r["held"];
  std::cout << "mailboxes     old " << num(m["old"]) << ", held " << num(m["held"]) << ", migrated "
            << num(m["migrated"]) << "\n";
  std::cout << "queued        " << num(r["queued"]["messages"]) << " messages, "
            << human_size(num(r["queued"]["bytes"])) << "\n";
  std::cout << "held          " << num(held["messages"]) << " messages, " << human_size(num(held["bytes"]));
  if (!held["oldest_age_seconds"].is_null()) std::cout << ", oldest " << human_age(held["oldest_age_seconds"]);
  std::cout << "\n";
  std::cout << "parked        " << num(r["parked"]) << (num(r["parked"]) > 0 ? "  (holdctl retry after fixing)" : "")
            << "\n";
  std::cout << "deferred      " << num(r["deferred"]) << "\n";
  std::cout << "in flight     " << num(r["in_flight"]) << "\n";
  std::cout << "relaying      " << (r.value("paused", false) ? "PAUSED (holdctl resume restarts it)" : "running")
            << "\n";
  std::cout << "delivered     old " << num(r["delivered"]["old"]) << ", new " << num(r["delivered"]["new"]) << "\n";
  if (r.contains("failures")) {
    std::cout << "failures      " << num(r["failures"]["deferred"]) << " deferrals, "
              << num(r["failures"]["parked"]) << " parked (since start)\n";
  }
  for (const char* u : {"old", "new"}) {
    std::cout << "last relay    " << u << ": ";
    if (r["last_relay"][u].is_null()) {
      std::cout << "never\n";
    } else {
      std::cout << str(r["last_relay"][u]) << " (" << human_age(r["last_relay_age_seconds"][u]) << " ago)\n";
    }
  }
  std::cout << "accepted      " << num(r["accepted"]["messages"]) << " messages, "
            << human_size(num(r["accepted"]["bytes"])) << "\n";
  std::cout << "disk free     " << human_size(num(r["disk_free"])) << "\n";
  std::cout << "uptime        " << human_age(r["uptime_seconds"]) << "\n";
}

void print_list(const json& r) {
  Table t({"MAILBOX", "STATE", "QUEUED", "SIZE", "PARKED", "OLDEST"});
  for (const json& m : r["mailboxes"]) {
    t.add({str(m["mailbox"]), str(m["state"]), std::to_string(num(m["queued"])), human_size(num(m["bytes"])),
           std::to_string(num(m["parked"])), human_age(m["oldest_age_seconds"])});
  }
  t.print(std::cout);
}

void print_show(const json& r) {
  std::cout << "mailbox       " << str(r["mailbox"]) << "\n";
  std::cout << "state         " << str(r["state"]) << "\n";
  std::cout << "queued        " << num(r["queued"]) << " messages, " << human_size(num(r["bytes"]));
  if (!r["oldest_age_seconds"].is_null()) std::cout << ", oldest " << human_age(r["oldest_age_seconds"]);
  std::cout << "\n";
  std::cout << "parked        " << num(r["parked"]) << "\n";
  std::cout << "in flight     " << (r.value("in_flight", false) ? "yes" : "no") << "\n";
  std::cout << "next attempt  " << str(r["next_attempt"]) << "\n";
  std::cout << "delivered     " << num(r["delivered"]) << "\n";
  const json& d = r["last_delivery"];
  std::cout << "last delivery " << (d.is_object() ? str(d["at"]) + "  " + str(d["reply"]) : "-") << "\n";
  const json& e = r["last_error"];
  std::cout << "last error    " << (e.is_object() ? str(e["at"]) + "  " + str(e["error"]) : "-") << "\n";
  std::cout << "history\n";
  if (r["history"].empty()) std::cout << "  (no state change yet)\n";
  Table t({"  AT", "FROM", "TO", "BY"});
  for (const json& h : r["history"]) t.add({"  " + str(h["at"]), str(h["from"]), str(h["to"]), str(h["by"])});
  if (!r["history"].empty()) t.print(std::cout);
}

std::string sender_text(const json& s) {
  std::string v = str(s, "");
  return v.empty() ? "<>" : v;
}

void print_queue(const json& r) {
  std::cout << str(r["mailbox"]) << " (" << str(r["state"]) << "): " << r["messages"].size() << " messages\n";
  Table t({"ID", "ARRIVAL", "SENDER", "SIZE", "ATTEMPTS", "LAST ERROR"});
  for (const json& m : r["messages"]) {
    std::string error = str(m["last_error"], "");
    if (m.value("parked", false)) error = "PARKED: " + error;
    t.add({str(m["id"]), str(m["arrival"]), sender_text(m["sender"]), human_size(num(m["size"])),
           std::to_string(num(m["attempts"])), error});
  }
  t.print(std::cout);
}

void print_changes(const json& r) {
  const std::string state = str(r["state"]);
  for (const json& m : r["changed"]) std::cout << state << ": " << str(m) << "\n";
  for (const json& m : r["unchanged"]) std::cout << state << ": " << str(m) << " (already)\n";
}

void print_release(const json& r) {
  if (r.value("dry_run", false)) {
    std::cout << "dry run, nothing changed. Would replay to "
              << (r["target"].is_null() ? std::string("(no [upstream.new] configured)") : str(r["target"])) << ":\n";
    Table t({"MAILBOX", "MESSAGES", "SIZE", "FIRST ARRIVAL", "LAST ARRIVAL"});
    for (const json& m : r["mailboxes"]) {
      t.add({str(m["mailbox"]), std::to_string(num(m["messages"])), human_size(num(m["bytes"])),
             str(m["first_arrival"]), str(m["last_arrival"])});
    }
    t.print(std::cout);
    std::cout << "total: " << num(r["messages"]) << " messages, " << human_size(num(r["bytes"])) << " ("
              << num(r["bytes"]) << " bytes) in " << r["mailboxes"].size() << " mailbox(es)\n";
    return;
  }
  print_changes(r);
  std::cout << "replay: " << num(r["replay"]["messages"]) << " messages, " << human_size(num(r["replay"]["bytes"]))
            << " to " << (r["target"].is_null() ? std::string("(none)") : str(r["target"])) << "\n";
  if (r.contains("warning")) std::cerr << "holdctl: warning: " << str(r["warning"]) << "\n";
  if (r.contains("delivered")) {
    std::cout << "delivered " << num(r["delivered"]) << ", parked " << num(r["parked"]) << ", remaining "
              << num(r["remaining"]) << "\n";
    if (num(r["remaining"]) > 0) {
      std::cerr << "holdctl: stopped waiting with " << num(r["remaining"])
                << " message(s) not yet delivered (the release stands; holdctl show MAILBOX tells why)\n";
    }
    if (num(r["parked"]) > 0) {
      std::cerr << "holdctl: some messages were parked (5xx from the new server): see holdctl queue MAILBOX, "
                   "then holdctl retry\n";
    }
  }
}

void print_drop(const json& r) {
  const bool dropped = r.value("dropped", false);
  Table t({"ID", "MAILBOX", "SENDER", "SIZE", "ARRIVAL"});
  for (const json& m : r["messages"]) {
    t.add({str(m["id"]), str(m["mailbox"]), sender_text(m["sender"]), human_size(num(m["size"])), str(m["arrival"])});
  }
  std::cout << (dropped ? "dropped:\n" : "would drop:\n");
  t.print(std::cout);
  if (!dropped) std::cout << "re-run with --yes to delete\n";
}

// ---------------------------------------------------------------- main

std::chrono::seconds duration_arg(const std::string& option, const std::string& text) {
  std::optional<std::chrono::seconds> d = holdd::parse_duration(text);
  if (!d) fail(kUsage, option + ": expected a duration such as 30m, 4h or 2d, got \"" + text + "\"");
  return *d;
}

int run(int argc, char** argv) {
  Options o;
  CLI::App app{"holdctl: control a running holdd (temporary MX for mailbox migrations)", "holdctl"};
  app.require_subcommand(1);
  app.fallthrough();  // `holdctl status --json` works as well as `holdctl --json status`
  auto* config_opt = app.add_option("--config", o.config, "holdd.toml to read [control] socket from")
                         ->type_name("PATH");
  auto* socket_opt = app.add_option("--socket", o.socket, "control socket (default " + std::string(kDefaultSocket) +
                                                              ", or from " + kDefaultConfig + ")")
                         ->type_name("PATH");
  config_opt->excludes(socket_opt);
  app.add_flag("--json", o.json, "print the result as one JSON document");

  auto* status = app.add_subcommand("status", "counts, held and queued mail, last relays");
  auto* list = app.add_subcommand("list", "mailboxes with state, queued count, bytes, oldest age");
  list->add_option("--state", o.state, "only mailboxes in this state")
      ->check(CLI::IsMember({"old", "held", "migrated"}));
  auto* show = app.add_subcommand("show", "one mailbox: state, history, queue summary, last delivery and error");
  show->add_option("MAILBOX", o.mailbox)->required();
  auto* queue = app.add_subcommand("queue", "a mailbox's queued messages in delivery order");
  queue->add_option("MAILBOX", o.mailbox)->required();

  auto batch = [&](CLI::App* sub) {
    sub->add_option("MAILBOX", o.mailboxes, "addresses (aliases are resolved)");
    sub->add_option("--file", o.file, "read addresses from F, one a line ('#' comments); - for stdin")
        ->type_name("F");
  };
  auto* lock = app.add_subcommand("lock", "hold mail for mailboxes (returns once none is being relayed)");
  batch(lock);
  auto* release = app.add_subcommand("release", "mark migrated and replay held mail to the new server in order");
  batch(release);
  release->add_flag("--wait", o.wait, "return once the backlog is delivered or parked");
  release->add_option("--timeout", o.timeout, "with --wait: stop waiting after DUR (the release stays)")
      ->type_name("DUR");
  release->add_option("--rate", o.rate, "at most N messages a second for this release")
      ->check(CLI::NonNegativeNumber)->type_name("N");
  release->add_flag("--dry-run", o.dry_run, "show what would be replayed, change nothing");
  auto* revert = app.add_subcommand("revert", "back to old: queued mail goes to the old server, in order");
  batch(revert);
  auto* retry = app.add_subcommand("retry", "requeue parked messages now");
  auto* retry_mailbox = retry->add_option("MAILBOX", o.mailbox);
  retry->add_flag("--all", o.all, "every mailbox")->excludes(retry_mailbox);
  auto* drop = app.add_subcommand("drop", "delete queued messages by ID (shows them without --yes)");
  drop->add_option("ID", o.ids)->required();
  drop->add_flag("--yes", o.yes, "really delete");
  auto* pause = app.add_subcommand("pause", "stop all relaying (intake continues)");
  auto* resume = app.add_subcommand("resume", "restart relaying");
  auto* check = app.add_subcommand("check", "monitoring-plugin check: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN");
  check->add_option("--warn-age", o.warn_age, "warn when held mail is older (default 24h)")->type_name("DUR");
  check->add_option("--crit-age", o.crit_age, "critical when held mail is older (default 72h)")->type_name("DUR");
  check->add_option("--old-quiet", o.old_quiet, "warn unless nothing was relayed to the old server for DUR")
      ->type_name("DUR");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::cerr << "holdctl: " << e.what() << "\n";
    if (app.get_subcommands().empty()) {
      // "A subcommand is required" says little when the operator mistyped one.
      for (int i = 1; i < argc; ++i) {
        std::string word = argv[i];
        if (word == "--config" || word == "--socket") ++i;
        if (word.empty() || word[0] == '-' || i >= argc) continue;
        std::cerr << "holdctl: unknown command \"" << word << "\"\n";
        break;
      }
      std::cerr << "commands: status list show queue lock release revert retry drop pause resume check\n";
    }
    std::cerr << "Run holdctl --help, or holdctl COMMAND --help, for usage.\n";
    if (g_is_check) {
      std::cout << "HOLDD UNKNOWN - " << e.what() << "\n";
      return kUnreachable;
    }
    return kUsage;
  }

  // ---- the request ----
  json request;
  const bool is_check = check->parsed();
  if (status->parsed()) {
    request = protocol::make_request("status");
  } else if (list->parsed()) {
    request = protocol::make_request("list", o.state.empty() ? json::object() : json{{"state", o.state}});
  } else if (show->parsed()) {
    request = protocol::make_request("show", {{"mailbox", o.mailbox}});
  } else if (queue->parsed()) {
    request = protocol::make_request("queue", {{"mailbox", o.mailbox}});
  } else if (lock->parsed()) {
    request = protocol::make_request("lock", {{"mailboxes", mailboxes_from(o)}});
  } else if (release->parsed()) {
    if (!o.timeout.empty() && !o.wait) fail(kUsage, "--timeout goes with --wait");
    // CLI11 takes "inf" and "nan" as numbers; JSON cannot carry them and a cap that
    // silently vanished would replay a whole batch at full speed.
    if (!std::isfinite(o.rate)) fail(kUsage, "--rate: expected a number of messages a second, such as 50");
    const int64_t wait_seconds = o.timeout.empty() ? 0 : duration_arg("--timeout", o.timeout).count();
    request = protocol::make_request("release", {{"mailboxes", mailboxes_from(o)},
                                                 {"wait", o.wait},
                                                 {"rate", o.rate},
                                                 {"dry_run", o.dry_run},
                                                 {"wait_seconds", wait_seconds}});
  } else if (revert->parsed()) {
    request = protocol::make_request("revert", {{"mailboxes", mailboxes_from(o)}});
  } else if (retry->parsed()) {
    if (!o.all && o.mailbox.empty()) fail(kUsage, "retry: name a MAILBOX, or --all");
    request = protocol::make_request("retry", o.all ? json{{"all", true}} : json{{"mailbox", o.mailbox}});
  } else if (drop->parsed()) {
    request = protocol::make_request("drop", {{"ids", o.ids}, {"yes", o.yes}});
  } else if (pause->parsed()) {
    request = protocol::make_request("pause");
  } else if (resume->parsed()) {
    request = protocol::make_request("resume");
  } else if (is_check) {
    // Monitoring-plugin convention: a check that cannot run is UNKNOWN (3), even
    // for a bad threshold, so the monitoring system never reads it as CRITICAL.
    json args = json::object();
    const std::pair<const char*, const std::string*> thresholds[] = {
        {"warn_age_seconds", &o.warn_age}, {"crit_age_seconds", &o.crit_age}, {"old_quiet_seconds", &o.old_quiet}};
    for (const auto& [key, text] : thresholds) {
      if (text->empty()) continue;
      std::optional<std::chrono::seconds> d = holdd::parse_duration(*text);
      if (!d) {
        std::cout << "HOLDD UNKNOWN - invalid duration \"" << *text << "\" (use e.g. 30m, 24h, 3d)\n";
        return kUnreachable;
      }
      args[key] = d->count();
    }
    request = protocol::make_request("check", std::move(args));
  }

  // ---- the exchange ----
  json response;
  try {
    Connection connection(socket_path(o));
    response = connection.exchange(request);
  } catch (const Connection::Unreachable& u) {
    if (is_check) {
      if (o.json) {
        std::cout << json{{"code", 3}, {"line", "HOLDD UNKNOWN - daemon unreachable: " + u.message}}.dump(2) << "\n";
      } else {
        std::cout << "HOLDD UNKNOWN - daemon unreachable: " << u.message << "\n";
      }
      return kUnreachable;
    }
    if (o.json) std::cout << json{{"error", u.message}}.dump(2) << "\n";
    std::cerr << "holdctl: " << u.message << "\n";
    return kUnreachable;
  }

  if (!response.value("ok", false)) {
    const std::string error = response.contains("error") ? str(response["error"]) : "the daemon refused";
    if (is_check) {
      std::cout << "HOLDD UNKNOWN - " << error << "\n";
      return kUnreachable;
    }
    if (o.json) std::cout << json{{"error", error}}.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
    std::cerr << "holdctl: " << error << "\n";
    return kRefused;
  }

  const json& result = response["result"];
  if (o.json) {
    std::cout << result.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  }
  if (is_check) {
    if (!o.json) std::cout << str(result["line"]) << "\n";
    const int code = result.value("code", 3);
    return code >= 0 && code <= 3 ? code : 3;
  }
  if (o.json) return kOk;

  if (status->parsed()) print_status(result);
  else if (list->parsed()) print_list(result);
  else if (show->parsed()) print_show(result);
  else if (queue->parsed()) print_queue(result);
  else if (lock->parsed() || revert->parsed()) print_changes(result);
  else if (release->parsed()) print_release(result);
  else if (retry->parsed()) std::cout << "requeued " << num(result["requeued"]) << " parked message(s)\n";
  else if (drop->parsed()) print_drop(result);
  else if (pause->parsed()) std::cout << "relaying paused (intake continues; holdctl resume restarts it)\n";
  else if (resume->parsed()) std::cout << "relaying resumed\n";
  return kOk;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "check") g_is_check = true;
  }
  try {
    return run(argc, argv);
  } catch (const ExitNow& e) {
    return e.code;
  } catch (const nlohmann::json::exception& e) {
    // A daemon answer that does not have the documented shape.
    std::cerr << "holdctl: unexpected answer from holdd: " << e.what() << "\n";
    return kRefused;
  }
}
