#include "holdd/config/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <toml++/toml.h>

#include "holdd/base/clock.h"
#include "table_reader.h"

namespace holdd {

using config_internal::TableReader;
using std::chrono::seconds;

namespace {

constexpr uint16_t kDnsPort = 53;

// `text` as an IP address in the form a session's client address takes
// (inet_ntop's; an IPv4-mapped IPv6 address as IPv4), or nullopt.
std::optional<std::string> canonical_ip(const std::string& text) {
  unsigned char buf[16];
  char out[INET6_ADDRSTRLEN];
  if (inet_pton(AF_INET, text.c_str(), buf) == 1) return std::string(inet_ntop(AF_INET, buf, out, sizeof out));
  if (inet_pton(AF_INET6, text.c_str(), buf) != 1) return std::nullopt;
  static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(buf, kMapped, sizeof kMapped) == 0) {
    return std::string(inet_ntop(AF_INET, buf + 12, out, sizeof out));
  }
  return std::string(inet_ntop(AF_INET6, buf, out, sizeof out));
}

bool is_domain_name(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t label = 0;
  char prev = '.';
  for (char c : s) {
    if (c == '.') {
      if (label == 0 || prev == '-') return false;
      label = 0;
    } else {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                (c == '-' && label > 0);
      if (!ok || ++label > 63) return false;
    }
    prev = c;
  }
  return label > 0 && prev != '-';
}

std::string lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

// What one message of max_message_size takes in memory at its peak.
uint64_t one_message_memory(uint64_t max_message_size) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  if (max_message_size > kMax / kMessageCopiesInMemory) return kMax;
  return kMessageCopiesInMemory * max_message_size;
}

// RAM of the machine (not of a cgroup); 0 when unknown.
uint64_t physical_memory() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_size <= 0) return 0;
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size);
}

std::string default_hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

// Why `path` cannot be opened for reading as a regular file, or "" if it can.
std::string unreadable_reason(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::strerror(errno);
  struct stat st {};
  std::string why;
  if (fstat(fd, &st) != 0) why = std::strerror(errno);
  else if (!S_ISREG(st.st_mode)) why = "not a regular file";
  ::close(fd);
  return why;
}

// Everything needed while reading one file: where relative paths start, and the
// errors found so far.
struct Loader {
  const std::string& file;
  std::filesystem::path base_dir;
  std::vector<ConfigError>& errors;
  FileChecks checks;

  // Relative paths in holdd.toml are relative to the file's own directory, so a
  // config works the same whatever the daemon's working directory is.
  std::string resolve(const std::string& p) const {
    if (p.empty() || std::filesystem::path(p).is_absolute()) return p;
    return (base_dir / p).lexically_normal().string();
  }

  // Reads a path key, resolves it, and (if `must_read`) checks the file can be read.
  void get_path(TableReader& t, std::string_view key, std::string& out, bool allow_empty,
                bool must_read) {
    if (!t.get_string(key, out, allow_empty)) return;
    out = resolve(out);
    if (must_read && checks == FileChecks::kCheck && !out.empty()) {
      std::string why = unreadable_reason(out);
      if (!why.empty()) t.error(key, "cannot read \"" + out + "\": " + why);
    }
  }

  void get_endpoint(TableReader& t, std::string_view key, const std::string& text, Endpoint& out) {
    Result<Endpoint> ep = parse_endpoint(text);
    if (ep) out = *ep;
    else t.error(key, ep.status().message());
  }

  void read_server(TableReader t, ServerConfig& s) {
    std::vector<std::string> listen;
    if (t.get_string_list("listen", listen)) {
      if (listen.empty()) t.error("listen", "must list at least one address to listen on");
      std::vector<Endpoint> endpoints;
      for (size_t n = 0; n < listen.size(); ++n) {
        Endpoint ep;
        get_endpoint(t, "listen[" + std::to_string(n) + "]", listen[n], ep);
        endpoints.push_back(ep);
      }
      s.listen = std::move(endpoints);
    }
    if (t.get_string("hostname", s.hostname, /*allow_empty=*/false) && !is_domain_name(s.hostname)) {
      t.error("hostname", "expected a host name such as \"mx1.example.com\", got \"" + s.hostname + "\"");
    }
    t.get_size("max_message_size", s.max_message_size, 1);
    if (t.get_size("max_message_memory", s.max_message_memory, 1)) {
      // A budget smaller than one message of the largest size would refuse
      // such messages with 452 forever: the senders would retry for days, then
      // bounce them.
      const uint64_t one_message = one_message_memory(s.max_message_size);
      if (s.max_message_memory < one_message) {
        t.error("max_message_memory",
                "must be at least " + std::to_string(kMessageCopiesInMemory) +
                    " x server.max_message_size (" + std::to_string(one_message) +
                    " bytes): a message is held twice in memory while it is stored, got " +
                    std::to_string(s.max_message_memory) + " bytes");
      }
    } else {
      s.max_message_memory = default_max_message_memory(physical_memory(), s.max_message_size);
    }
    t.get_uint("max_recipients", s.max_recipients, 1);
    t.get_uint("max_connections", s.max_connections, 1);
    t.get_uint("max_connections_per_ip", s.max_connections_per_ip, 1);
    t.get_duration("command_timeout", s.command_timeout, seconds(1));
    t.get_duration("data_timeout", s.data_timeout, seconds(1));
    t.get_uint("max_hops", s.max_hops, 1);
    t.get_duration("shutdown_grace", s.shutdown_grace, seconds(0));
    t.reject_unknown_keys();
    if (s.hostname.empty()) s.hostname = default_hostname();
  }

  void read_tls(TableReader t, TlsConfig& tls) {
    get_path(t, "certificate", tls.certificate, true, true);
    get_path(t, "private_key", tls.private_key, true, true);
    if (tls.certificate.empty() != tls.private_key.empty()) {
      const char* missing = tls.certificate.empty() ? "certificate" : "private_key";
      t.error(missing, "must be set together with tls.certificate and tls.private_key (STARTTLS needs both)");
    }
    t.reject_unknown_keys();
  }

  void read_spool(TableReader t, SpoolConfig& s) {
    get_path(t, "path", s.path, false, false);
    t.get_size("min_free_disk", s.min_free_disk, 0);
    t.reject_unknown_keys();
  }

  void read_control(TableReader t, ControlConfig& c) {
    get_path(t, "socket", c.socket, false, false);
    t.get_string("socket_owner", c.socket_owner);
    t.get_string("socket_group", c.socket_group);
    if (const toml::node* mode = t.get_node("socket_mode")) read_socket_mode(t, *mode, c.socket_mode);
    std::string metrics;
    if (t.get_string("metrics_listen", metrics)) {
      if (metrics.empty()) {
        c.metrics_listen.reset();
      } else {
        Endpoint ep;
        get_endpoint(t, "metrics_listen", metrics, ep);
        c.metrics_listen = ep;
      }
    }
    t.reject_unknown_keys();
  }

  // A mode is octal: "0660" as a string, or 0o660 (432) as an integer. An integer
  // such as 660 was almost certainly meant as octal, so anything above 0777 is
  // refused instead of read as decimal.
  static void read_socket_mode(TableReader& t, const toml::node& node, uint32_t& out) {
    constexpr uint32_t kMaxMode = 0777;
    const char* how = "write it as a string such as \"0660\" or as an octal integer such as 0o660";
    if (auto i = node.as_integer()) {
      if (i->get() < 0 || i->get() > kMaxMode) {
        t.error("socket_mode", "must be a mode from 0 to 0777; " + std::string(how));
        return;
      }
      out = static_cast<uint32_t>(i->get());
    } else if (auto s = node.as_string()) {
      const std::string& text = s->get();
      uint32_t mode = 0;
      bool ok = !text.empty() && text.size() <= 4;
      for (char c : text) {
        if (c < '0' || c > '7') ok = false;
        else mode = mode * 8 + static_cast<uint32_t>(c - '0');
      }
      if (!ok || mode > kMaxMode) {
        t.error("socket_mode", "expected an octal mode such as \"0660\", got \"" + text + "\"");
        return;
      }
      out = mode;
    } else {
      t.error("socket_mode", "expected an octal mode such as \"0660\", got " + config_internal::type_name(node));
    }
  }

  void read_directory(TableReader t, DirectoryConfig& d) {
    std::vector<std::string> domains;
    if (t.get_string_list("domains", domains)) {
      d.domains.clear();
      for (size_t n = 0; n < domains.size(); ++n) {
        std::string domain = lower(domains[n]);
        if (!is_domain_name(domain)) {
          t.error("domains[" + std::to_string(n) + "]",
                  "expected a domain name such as \"example.com\", got \"" + domains[n] + "\"");
        } else if (std::find(d.domains.begin(), d.domains.end(), domain) == d.domains.end()) {
          d.domains.push_back(std::move(domain));
        }
      }
    }
    get_path(t, "mailboxes", d.mailboxes, true, false);
    get_path(t, "aliases", d.aliases, true, false);
    t.get_choice("recipients", d.recipients,
                 {{"listed", RecipientPolicy::kListed},
                  {"any", RecipientPolicy::kAny},
                  {"verify", RecipientPolicy::kVerify}});
    t.get_duration("verify_cache", d.verify_cache, std::chrono::seconds(10));
    t.get_choice("initial_state", d.initial_state,
                 {{"old", MailboxState::kOld}, {"held", MailboxState::kHeld},
                  {"migrated", MailboxState::kMigrated}});
    t.get_choice("local_part_case", d.local_part_case,
                 {{"insensitive", LocalPartCase::kInsensitive}, {"exact", LocalPartCase::kExact}});
    t.reject_unknown_keys();
  }

  void read_upstreams(TableReader t, Config& config) {
    // Only the two servers of SPEC exist; [upstream.foo] is a typo, not a third server.
    if (const toml::table* old_table = t.get_table("old")) {
      config.upstream_old = read_upstream(TableReader(old_table, t.path_of("old"), file, errors), "old");
      config.server.old_forwarders = config.upstream_old->forwarders;
    }
    if (const toml::table* new_table = t.get_table("new")) {
      config.upstream_new = read_upstream(TableReader(new_table, t.path_of("new"), file, errors), "new");
    }
    t.reject_unknown_keys();
  }

  UpstreamConfig read_upstream(TableReader t, std::string name) {
    UpstreamConfig u;
    u.name = std::move(name);
    if (t.get_node("host") == nullptr) {
      t.error("host", "is required in [upstream." + u.name + "]");
    } else if (t.get_string("host", u.host, false)) {
      if (u.host.size() > 2 && u.host.front() == '[' && u.host.back() == ']') {
        u.host = u.host.substr(1, u.host.size() - 2);
      }
      Result<Endpoint> ep = parse_endpoint(u.host, 25);
      if (!ep || ep->host != u.host) {
        t.error("host", "expected a host name or IP address (without port; use port = N), got \"" +
                            u.host + "\"");
      }
    }
    t.get_uint("port", u.port, 1, 65535);
    t.get_choice("protocol", u.protocol,
                 {{"smtp", UpstreamProtocol::kSmtp}, {"lmtp", UpstreamProtocol::kLmtp}});
    t.get_choice("tls", u.tls,
                 {{"none", UpstreamTls::kNone}, {"opportunistic", UpstreamTls::kOpportunistic},
                  {"required", UpstreamTls::kRequired}});
    get_path(t, "ca_file", u.ca_file, true, true);
    t.get_string("tls_name", u.tls_name);
    t.get_duration("connect_timeout", u.connect_timeout, seconds(1));
    t.get_duration("command_timeout", u.command_timeout, seconds(1));
    t.get_uint("max_connections", u.max_connections, 0);
    std::vector<std::string> forwarders;
    if (u.name == "old" && t.get_string_list("forwarders", forwarders)) {
      for (size_t n = 0; n < forwarders.size(); ++n) {
        std::optional<std::string> ip = canonical_ip(forwarders[n]);
        if (!ip) {
          t.error("forwarders[" + std::to_string(n) + "]",
                  "expected an IP address (the old server's address as holdd sees it), got \"" +
                      forwarders[n] + "\"");
        } else {
          u.forwarders.push_back(*ip);
        }
      }
    }
    t.reject_unknown_keys();
    return u;
  }

  void read_delivery(TableReader t, DeliveryConfig& d) {
    t.get_uint("concurrency", d.concurrency, 1);
    t.get_duration("retry_min", d.retry_min, seconds(1));
    t.get_duration("retry_max", d.retry_max, seconds(1));
    t.get_duration("warn_after", d.warn_after, seconds(1));
    t.get_uint("pipeline", d.pipeline, 1);
    if (d.pipeline > 64) t.error("pipeline", "must be at most 64 (got " + std::to_string(d.pipeline) + ")");
    if (d.retry_min > d.retry_max) {
      t.error("retry_min", "must not be longer than delivery.retry_max (" + format_duration(d.retry_min) +
                               " > " + format_duration(d.retry_max) + ")");
    }
    t.reject_unknown_keys();
  }

  void read_auth(TableReader t, AuthConfig& a, const std::string& hostname) {
    t.get_bool("spf", a.spf);
    t.get_bool("dkim", a.dkim);
    t.get_bool("dmarc", a.dmarc);
    t.get_string("authserv_id", a.authserv_id, false);
    std::vector<std::string> nameservers;
    if (t.get_string_list("nameservers", nameservers)) {
      for (size_t n = 0; n < nameservers.size(); ++n) {
        // Name servers are addresses: resolving a resolver's name needs a resolver.
        Result<Endpoint> ep = parse_endpoint(nameservers[n], kDnsPort);
        unsigned char buf[16];
        bool is_ip = ep && (inet_pton(AF_INET, ep->host.c_str(), buf) == 1 ||
                            inet_pton(AF_INET6, ep->host.c_str(), buf) == 1);
        if (!is_ip) {
          t.error("nameservers[" + std::to_string(n) + "]",
                  "expected \"IP\", \"IP:port\" or \"[IPv6]:port\", got \"" + nameservers[n] + "\"");
        }
      }
      a.nameservers = std::move(nameservers);
    }
    t.get_duration("dns_timeout", a.dns_timeout, seconds(1));
    t.reject_unknown_keys();
    if (a.authserv_id.empty()) a.authserv_id = hostname;
  }

  void read_cluster(TableReader t, ClusterConfig& c) {
    if (!t.get_string("postgresql", c.postgresql, false) && c.postgresql.empty()) {
      t.error("postgresql", "is required in [cluster]: a libpq connection string such as "
                            "\"host=db.example.net dbname=holdd user=holdd\"");
    }
    c.node = default_hostname();
    t.get_string("node", c.node, false);
    if (c.node.size() > 63 ||
        !std::all_of(c.node.begin(), c.node.end(), [](unsigned char ch) {
          return std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.';
        })) {
      t.error("node", "must be 1 to 63 letters, digits, '-', '_' or '.' (got \"" + c.node + "\")");
    }
    t.reject_unknown_keys();
  }

  void read(const toml::table& root, Config& config) {
    TableReader t(&root, "", file, errors);
    // Sections are read even when absent (a null table), so that defaults derived
    // from other keys (hostname, authserv_id) are filled in one place.
    read_server(TableReader(t.get_table("server"), "server", file, errors), config.server);
    read_tls(TableReader(t.get_table("tls"), "tls", file, errors), config.tls);
    read_spool(TableReader(t.get_table("spool"), "spool", file, errors), config.spool);
    read_control(TableReader(t.get_table("control"), "control", file, errors), config.control);
    read_directory(TableReader(t.get_table("directory"), "directory", file, errors), config.directory);
    read_upstreams(TableReader(t.get_table("upstream"), "upstream", file, errors), config);
    read_delivery(TableReader(t.get_table("delivery"), "delivery", file, errors), config.delivery);
    read_auth(TableReader(t.get_table("auth"), "auth", file, errors), config.auth, config.server.hostname);
    if (const toml::table* cluster = t.get_table("cluster")) {
      read_cluster(TableReader(cluster, "cluster", file, errors), config.cluster);
    }
    t.reject_unknown_keys();
    if (config.directory.recipients == RecipientPolicy::kVerify && !config.upstream_old &&
        !config.upstream_new) {
      errors.push_back(ConfigError{file, "directory.recipients",
                                   "\"verify\" asks [upstream.old] and [upstream.new], and neither is configured"});
    }
  }
};

std::filesystem::path directory_of(const std::string& path) {
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  if (ec) absolute = path;
  return absolute.lexically_normal().parent_path();
}

}  // namespace

uint64_t default_max_message_memory(uint64_t physical_memory, uint64_t max_message_size) {
  uint64_t budget = 512ull << 20;
  if (physical_memory > 0) budget = std::min(budget, physical_memory / 4);
  return std::max(budget, one_message_memory(max_message_size));
}

std::string ConfigError::to_string() const {
  std::string where = file;
  if (key.empty() || key == file || key.rfind(file + ":", 0) == 0) {
    // A syntax error, or a directory-file error whose key is already "FILE:LINE".
    if (line > 0 && key.empty()) {
      where += ":" + std::to_string(line);
      if (column > 0) where += ":" + std::to_string(column);
    } else if (!key.empty()) {
      where = key;
    }
  } else {
    where += ": " + key;
  }
  return where + ": " + reason;
}

std::variant<Config, std::vector<ConfigError>> parse_config(std::string_view text,
                                                            const std::string& path,
                                                            FileChecks checks) {
  toml::table root;
  try {
    root = toml::parse(text, std::string_view{path});
  } catch (const toml::parse_error& e) {
    ConfigError err{path, "", std::string(e.description())};
    err.line = e.source().begin.line;
    err.column = e.source().begin.column;
    return std::vector<ConfigError>{std::move(err)};
  }
  std::vector<ConfigError> errors;
  Config config;
  config.path = path;
  Loader loader{path, directory_of(path), errors, checks};
  loader.read(root, config);
  if (!errors.empty()) return errors;
  return config;
}

std::variant<Config, std::vector<ConfigError>> load_config(const std::string& path,
                                                           FileChecks checks) {
  if (std::string why = unreadable_reason(path); !why.empty()) {
    return std::vector<ConfigError>{ConfigError{path, "", "cannot read: " + why}};
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return std::vector<ConfigError>{ConfigError{path, "", "cannot read: I/O error"}};
  }
  return parse_config(text.str(), path, checks);
}

}  // namespace holdd
