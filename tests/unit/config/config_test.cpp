#include "holdd/config/config.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace holdd {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

const std::string kFile = "/etc/holdd/holdd.toml";

std::string join(const std::vector<ConfigError>& errors) {
  std::string out;
  for (const ConfigError& e : errors) out += e.to_string() + "\n";
  return out;
}

Config parse_ok(std::string_view text, const std::string& file = kFile) {
  auto result = parse_config(text, file);
  if (auto errors = std::get_if<std::vector<ConfigError>>(&result)) {
    FAIL("unexpected errors:\n" << join(*errors));
  }
  return std::get<Config>(std::move(result));
}

std::vector<ConfigError> parse_errors(std::string_view text, const std::string& file = kFile) {
  auto result = parse_config(text, file);
  if (std::holds_alternative<Config>(result)) return {};
  return std::get<std::vector<ConfigError>>(std::move(result));
}

// A scratch directory removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "holdd-config-test-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string write(const std::string& name, std::string_view content) {
    fs::path p = path / name;
    std::ofstream(p) << content;
    return p.string();
  }
};

std::string source_dir() { return fs::path(__FILE__).parent_path().parent_path().parent_path().parent_path().string(); }

TEST_CASE("parse_config: an empty file gives the documented defaults") {
  Config c = parse_ok("");
  CHECK(c.path == kFile);
  REQUIRE(c.server.listen.size() == 2);
  CHECK(c.server.listen[0].to_string() == "0.0.0.0:25");
  CHECK(c.server.listen[1].to_string() == "[::]:25");
  CHECK_FALSE(c.server.hostname.empty());
  CHECK(c.server.max_message_size == 50ull << 20);
  CHECK(c.server.max_recipients == 1000);
  CHECK(c.server.max_connections == 2000);
  CHECK(c.server.max_connections_per_ip == 50);
  CHECK(c.server.command_timeout == seconds(300));
  CHECK(c.server.data_timeout == seconds(600));
  CHECK(c.server.max_hops == 50);
  CHECK(c.server.shutdown_grace == seconds(30));
  CHECK_FALSE(c.tls.enabled());
  CHECK(c.spool.path == "/var/spool/holdd");
  CHECK(c.spool.min_free_disk == 2ull << 30);
  CHECK(c.control.socket == "/run/holdd/control.sock");
  CHECK(c.control.socket_mode == 0660);
  REQUIRE(c.control.metrics_listen.has_value());
  CHECK(c.control.metrics_listen->to_string() == "127.0.0.1:9725");
  CHECK(c.directory.domains.empty());
  CHECK(c.directory.mailboxes.empty());
  CHECK(c.directory.aliases.empty());
  CHECK(c.directory.recipients == RecipientPolicy::kListed);
  CHECK(c.directory.initial_state == MailboxState::kOld);
  CHECK(c.directory.local_part_case == LocalPartCase::kInsensitive);
  CHECK_FALSE(c.upstream_old.has_value());
  CHECK_FALSE(c.upstream_new.has_value());
  CHECK(c.delivery.concurrency == 20);
  CHECK(c.delivery.retry_min == seconds(60));
  CHECK(c.delivery.retry_max == seconds(1800));
  CHECK(c.delivery.warn_after == seconds(4 * 3600));
  CHECK(c.delivery.pipeline == 1);
  CHECK((c.auth.spf && c.auth.dkim && c.auth.dmarc));
  CHECK(c.auth.authserv_id == c.server.hostname);
  CHECK(c.auth.nameservers.empty());
  CHECK(c.auth.dns_timeout == seconds(5));
}

TEST_CASE("parse_config: SPEC's example reads as written") {
  TempDir dir;
  dir.write("fullchain.pem", "cert");
  dir.write("privkey.pem", "key");
  const std::string text = R"(
[server]
listen = ["0.0.0.0:25", "[::]:25"]
hostname = "mx1.example.com"
max_message_size = "50MiB"
max_recipients = 1000
max_connections = 2000
max_connections_per_ip = 50
command_timeout = "5m"
data_timeout = "10m"
max_hops = 50

[tls]
certificate = "fullchain.pem"
private_key = "privkey.pem"

[spool]
path = "/var/spool/holdd"
min_free_disk = "2GiB"

[control]
socket = "/run/holdd/control.sock"
metrics_listen = "127.0.0.1:9725"

[directory]
domains = ["example.com", "Example.ORG"]
mailboxes = "/etc/holdd/mailboxes.txt"
aliases = "/etc/holdd/aliases.txt"
recipients = "listed"
initial_state = "old"
local_part_case = "insensitive"

[upstream.old]
host = "10.0.0.5"
port = 25
protocol = "smtp"
tls = "opportunistic"

[upstream.new]
host = "new-mx.example.net"
port = 25
protocol = "smtp"
tls = "required"

[delivery]
concurrency = 20
retry_min = "1m"
retry_max = "30m"
warn_after = "4h"

[auth]
spf = true
dkim = true
dmarc = true
authserv_id = "mx1.example.com"
nameservers = []
)";
  Config c = parse_ok(text, (dir.path / "holdd.toml").string());
  CHECK(c.server.hostname == "mx1.example.com");
  CHECK(c.tls.enabled());
  CHECK(c.tls.certificate == (dir.path / "fullchain.pem").string());
  CHECK(c.tls.private_key == (dir.path / "privkey.pem").string());
  CHECK(c.directory.domains == std::vector<std::string>{"example.com", "example.org"});
  CHECK(c.directory.local_part_case == LocalPartCase::kInsensitive);
  REQUIRE(c.upstream_old.has_value());
  CHECK(c.upstream_old->name == "old");
  CHECK(c.upstream_old->host == "10.0.0.5");
  CHECK(c.upstream_old->tls == UpstreamTls::kOpportunistic);
  REQUIRE(c.upstream_new.has_value());
  CHECK(c.upstream_new->name == "new");
  CHECK(c.upstream_new->host == "new-mx.example.net");
  CHECK(c.upstream_new->tls == UpstreamTls::kRequired);
  CHECK(c.upstream_for(MailboxState::kMigrated)->name == "new");
  CHECK(c.upstream_for(MailboxState::kOld)->name == "old");
  CHECK(c.upstream_for(MailboxState::kHeld)->name == "old");
  CHECK(c.auth.authserv_id == "mx1.example.com");
}

TEST_CASE("parse_config: the extra keys beyond SPEC are read") {
  TempDir dir;
  std::string ca = dir.write("ca.pem", "ca");
  Config c = parse_ok(R"(
[server]
shutdown_grace = 0
hostname = "mx.example.com"
[control]
socket_owner = "holdd"
socket_group = "mailadm"
socket_mode = "0640"
metrics_listen = ""
[upstream.new]
host = "[2001:db8::25]"
port = 24
protocol = "lmtp"
tls = "none"
ca_file = "ca.pem"
tls_name = "mail.example.net"
connect_timeout = "10s"
command_timeout = 120
max_connections = 4
[auth]
dns_timeout = "3s"
nameservers = ["192.0.2.53", "192.0.2.54:5353", "[2001:db8::53]:53", "2001:db8::54"]
)",
                      (dir.path / "holdd.toml").string());
  CHECK(c.server.shutdown_grace == seconds(0));
  CHECK(c.control.socket_owner == "holdd");
  CHECK(c.control.socket_group == "mailadm");
  CHECK(c.control.socket_mode == 0640);
  CHECK_FALSE(c.control.metrics_listen.has_value());
  REQUIRE(c.upstream_new.has_value());
  CHECK(c.upstream_new->host == "2001:db8::25");
  CHECK(c.upstream_new->port == 24);
  CHECK(c.upstream_new->protocol == UpstreamProtocol::kLmtp);
  CHECK(c.upstream_new->tls == UpstreamTls::kNone);
  CHECK(c.upstream_new->ca_file == ca);
  CHECK(c.upstream_new->tls_name == "mail.example.net");
  CHECK(c.upstream_new->connect_timeout == seconds(10));
  CHECK(c.upstream_new->command_timeout == seconds(120));
  CHECK(c.upstream_new->max_connections == 4);
  CHECK(c.auth.dns_timeout == seconds(3));
  CHECK(c.auth.nameservers.size() == 4);
  CHECK(c.auth.authserv_id == "mx.example.com");  // defaults to server.hostname
}

TEST_CASE("parse_config: directory.local_part_case is \"insensitive\" or \"exact\"") {
  CHECK(parse_ok("[directory]\nlocal_part_case = \"exact\"").directory.local_part_case == LocalPartCase::kExact);
  CHECK(parse_ok("[directory]\nlocal_part_case = \"insensitive\"").directory.local_part_case ==
        LocalPartCase::kInsensitive);
}

TEST_CASE("parse_config: recipients = \"verify\" with verify_cache, and it needs an upstream to ask") {
  Config c = parse_ok("[directory]\nrecipients = \"verify\"\nverify_cache = \"30m\"\n"
                      "[upstream.old]\nhost = \"10.0.0.5\"\n");
  CHECK(c.directory.recipients == RecipientPolicy::kVerify);
  CHECK(c.directory.verify_cache == seconds(1800));
  CHECK(parse_ok("").directory.verify_cache == seconds(3600));
  std::vector<ConfigError> errors = parse_errors("[directory]\nrecipients = \"verify\"\n");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].key == "directory.recipients");
  CHECK(errors[0].reason.find("neither is configured") != std::string::npos);
  errors = parse_errors("[directory]\nverify_cache = \"5s\"\n");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].key == "directory.verify_cache");
}

TEST_CASE("parse_config: [cluster] names the database and the node; absent, a single node") {
  Config single = parse_ok("");
  CHECK_FALSE(single.cluster.enabled());
  Config c = parse_ok("[cluster]\npostgresql = \"host=db.example.net dbname=holdd user=holdd\"\nnode = \"mx1\"\n");
  CHECK(c.cluster.enabled());
  CHECK(c.cluster.postgresql == "host=db.example.net dbname=holdd user=holdd");
  CHECK(c.cluster.node == "mx1");
  Config by_host = parse_ok("[cluster]\npostgresql = \"dbname=holdd\"\n");
  CHECK_FALSE(by_host.cluster.node.empty());  // the host name
  std::vector<ConfigError> errors = parse_errors("[cluster]\nnode = \"mx 1\"\n");
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].key == "cluster.postgresql");
  CHECK(errors[0].reason.find("is required") != std::string::npos);
  CHECK(errors[1].key == "cluster.node");
  errors = parse_errors("[cluster]\npostgresql = \"dbname=holdd\"\nnodes = \"mx1\"\n");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].key == "cluster.nodes");
}

TEST_CASE("parse_config: sizes and durations also accept integers (bytes, seconds)") {
  Config c = parse_ok(R"(
[server]
max_message_size = 1048576
command_timeout = 60
data_timeout = "1h30m"
[spool]
min_free_disk = 0
)");
  CHECK(c.server.max_message_size == 1048576);
  CHECK(c.server.command_timeout == seconds(60));
  CHECK(c.server.data_timeout == seconds(5400));
  CHECK(c.spool.min_free_disk == 0);
}

TEST_CASE("parse_config: max_message_memory as written, else the default for this machine") {
  Config set = parse_ok("[server]\nmax_message_size = \"30MiB\"\nmax_message_memory = \"60MiB\"\n");
  CHECK(set.server.max_message_memory == 60ull << 20);  // exactly two messages' worth is enough
  Config unset = parse_ok("");
  const uint64_t ram = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) *
                       static_cast<uint64_t>(sysconf(_SC_PAGE_SIZE));
  CHECK(unset.server.max_message_memory == default_max_message_memory(ram, 50ull << 20));
  CHECK(unset.server.max_message_memory <= std::max<uint64_t>(512ull << 20, 100ull << 20));
}

TEST_CASE("default_max_message_memory: 512 MiB, or a quarter of RAM, but room for one largest message") {
  struct Case {
    uint64_t ram, max_message_size, expected;
  };
  constexpr uint64_t MiB = 1ull << 20, GiB = 1ull << 30;
  const Case cases[] = {
      {64 * GiB, 50 * MiB, 512 * MiB},  // a big machine: 512 MiB
      {2 * GiB, 50 * MiB, 512 * MiB},   // a quarter is exactly 512 MiB
      {1 * GiB, 50 * MiB, 256 * MiB},   // a quarter of RAM is smaller
      {256 * MiB, 50 * MiB, 100 * MiB}, // but never below 2 x max_message_size
      {64 * GiB, 400 * MiB, 800 * MiB}, // likewise on a big machine
      {0, 50 * MiB, 512 * MiB},         // RAM unknown
      {64 * GiB, ~0ull, ~0ull},         // no overflow
  };
  for (const Case& c : cases) {
    CAPTURE(c.ram);
    CAPTURE(c.max_message_size);
    CHECK(default_max_message_memory(c.ram, c.max_message_size) == c.expected);
  }
}

TEST_CASE("parse_config: socket_mode is octal, as a string or an octal integer") {
  struct Case {
    std::string_view value;
    uint32_t mode;
  };
  const Case cases[] = {{"\"0660\"", 0660}, {"\"660\"", 0660}, {"\"0600\"", 0600}, {"0o660", 0660}, {"432", 0660}};
  for (const Case& c : cases) {
    CAPTURE(c.value);
    Config config = parse_ok("[control]\nsocket_mode = " + std::string(c.value) + "\n");
    CHECK(config.control.socket_mode == c.mode);
  }
}

TEST_CASE("parse_config: relative paths are relative to the config file's directory") {
  TempDir dir;
  dir.write("cert.pem", "c");
  dir.write("key.pem", "k");
  fs::create_directories(dir.path / "conf");
  Config c = parse_ok(R"(
[tls]
certificate = "../cert.pem"
private_key = "../key.pem"
[spool]
path = "../build/spool"
[control]
socket = "run/control.sock"
[directory]
mailboxes = "mailboxes.txt"
aliases = "/abs/aliases.txt"
)",
                      (dir.path / "conf" / "holdd.toml").string());
  CHECK(c.tls.certificate == (dir.path / "cert.pem").string());
  CHECK(c.tls.private_key == (dir.path / "key.pem").string());
  CHECK(c.spool.path == (dir.path / "build" / "spool").string());
  CHECK(c.control.socket == (dir.path / "conf" / "run" / "control.sock").string());
  CHECK(c.directory.mailboxes == (dir.path / "conf" / "mailboxes.txt").string());
  CHECK(c.directory.aliases == "/abs/aliases.txt");
}

TEST_CASE("parse_config: each bad value is an error naming the key and the reason") {
  struct Case {
    std::string_view text;
    std::string key;
    std::string reason_part;
  };
  const Case cases[] = {
      {"[server]\nlisten = [\"127.0.0.1:0\"]", "server.listen[0]", "1 to 65535"},
      {"[server]\nlisten = [\"127.0.0.1:65536\"]", "server.listen[0]", "1 to 65535"},
      {"[server]\nlisten = [\"127.0.0.1\"]", "server.listen[0]", "PORT"},
      {"[server]\nlisten = [25]", "server.listen[0]", "expected a string"},
      {"[server]\nlisten = []", "server.listen", "at least one"},
      {"[server]\nlisten = 25", "server.listen", "expected an array"},
      {"[server]\nhostname = \"\"", "server.hostname", "must not be empty"},
      {"[server]\nhostname = \"mx 1\"", "server.hostname", "host name"},
      {"[server]\nmax_message_size = \"fifty\"", "server.max_message_size", "expected a size such as \"50MiB\""},
      {"[server]\nmax_message_size = \"50MB\"", "server.max_message_size", "\"50MB\""},
      {"[server]\nmax_message_size = 0", "server.max_message_size", "at least 1"},
      {"[server]\nmax_message_size = -5", "server.max_message_size", "negative"},
      {"[server]\nmax_message_size = 1.5", "server.max_message_size", "float"},
      {"[server]\nmax_message_memory = \"lots\"", "server.max_message_memory", "expected a size"},
      {"[server]\nmax_message_memory = 0", "server.max_message_memory", "at least 1"},
      {"[server]\nmax_message_memory = \"64MiB\"", "server.max_message_memory",
       "at least 2 x server.max_message_size (104857600 bytes)"},  // against the default 50MiB
      {"[server]\nmax_message_size = \"40MiB\"\nmax_message_memory = \"79MiB\"", "server.max_message_memory",
       "held twice in memory"},
      {"[server]\nmax_recipients = 0", "server.max_recipients", "from 1 to"},
      {"[server]\nmax_recipients = \"1000\"", "server.max_recipients", "expected an integer"},
      {"[server]\nmax_recipients = 4294967296", "server.max_recipients", "from 1 to 4294967295"},
      {"[server]\nmax_connections = 0", "server.max_connections", "from 1"},
      {"[server]\nmax_hops = 0", "server.max_hops", "from 1"},
      {"[server]\ncommand_timeout = \"5 minutes\"", "server.command_timeout", "expected a duration"},
      {"[server]\ncommand_timeout = \"0s\"", "server.command_timeout", "at least 1s"},
      {"[server]\ndata_timeout = true", "server.data_timeout", "boolean"},
      {"[server]\nlisten_port = 25", "server.listen_port", "unknown key"},
      {"[server]\nhostnme = \"x\"", "server.hostnme", "did you mean \"hostname\""},
      {"[spool]\npath = \"\"", "spool.path", "must not be empty"},
      {"[spool]\nmin_free_disk = \"lots\"", "spool.min_free_disk", "expected a size"},
      {"[control]\nsocket = \"\"", "control.socket", "must not be empty"},
      {"[control]\nsocket_mode = \"0999\"", "control.socket_mode", "octal"},
      {"[control]\nsocket_mode = \"rw-rw----\"", "control.socket_mode", "octal"},
      {"[control]\nsocket_mode = 660", "control.socket_mode", "0o660"},
      {"[control]\nsocket_mode = true", "control.socket_mode", "octal"},
      {"[control]\nmetrics_listen = \"9725\"", "control.metrics_listen", "endpoint"},
      {"[directory]\nrecipients = \"all\"", "directory.recipients", "expected one of \"listed\", \"any\""},
      {"[directory]\ninitial_state = \"frozen\"", "directory.initial_state", "\"old\", \"held\", \"migrated\""},
      {"[directory]\nlocal_part_case = \"lower\"", "directory.local_part_case",
       "expected one of \"insensitive\", \"exact\""},
      {"[directory]\nlocal_part_case = false", "directory.local_part_case", "expected a string"},
      {"[directory]\ndomains = [\"exa mple.com\"]", "directory.domains[0]", "domain name"},
      {"[directory]\ndomains = [\"example.com\", 5]", "directory.domains[1]", "expected a string"},
      {"[upstream.old]\nport = 25", "upstream.old.host", "required"},
      {"[upstream.old]\nhost = \"10.0.0.5:25\"", "upstream.old.host", "without port"},
      {"[upstream.old]\nhost = \"h\"\nport = 0", "upstream.old.port", "from 1 to 65535"},
      {"[upstream.old]\nhost = \"h\"\nport = 65536", "upstream.old.port", "from 1 to 65535"},
      {"[upstream.old]\nhost = \"h\"\nprotocol = \"esmtp\"", "upstream.old.protocol", "\"smtp\", \"lmtp\""},
      {"[upstream.old]\nhost = \"h\"\ntls = \"yes\"", "upstream.old.tls",
       "\"none\", \"opportunistic\", \"required\""},
      {"[upstream.old]\nhost = \"h\"\nca_file = \"/nonexistent/ca.pem\"", "upstream.old.ca_file", "cannot read"},
      {"[upstream.old]\nhost = \"h\"\nweight = 3", "upstream.old.weight", "unknown key"},
      {"[upstream.backup]\nhost = \"h\"", "upstream.backup", "unknown table"},
      {"[upstream]\nhost = \"h\"", "upstream.host", "unknown key"},
      {"upstream = \"h\"", "upstream", "expected a table"},
      {"[delivery]\nconcurrency = 0", "delivery.concurrency", "from 1"},
      {"[delivery]\npipeline = 0", "delivery.pipeline", "from 1"},
      {"[delivery]\npipeline = 65", "delivery.pipeline", "at most 64"},
      {"[delivery]\nretry_min = \"1h\"\nretry_max = \"30m\"", "delivery.retry_min", "retry_max"},
      {"[delivery]\nretry_min = \"2h\"", "delivery.retry_min", "retry_max"},  // against the default 30m
      {"[auth]\nspf = \"yes\"", "auth.spf", "true or false"},
      {"[auth]\nnameservers = [\"dns.example.com\"]", "auth.nameservers[0]", "IP"},
      {"[auth]\nnameservers = [\"192.0.2.1:0\"]", "auth.nameservers[0]", "IP"},
      {"[auth]\nauthserv_id = \"\"", "auth.authserv_id", "must not be empty"},
      {"[tls]\ncertificate = \"/nonexistent/cert.pem\"\nprivate_key = \"/nonexistent/key.pem\"", "tls.certificate",
       "cannot read \"/nonexistent/cert.pem\""},
      {"[servr]\nhostname = \"x\"", "servr", "did you mean \"server\""},
      {"hostname = \"x\"", "hostname", "unknown key"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    std::vector<ConfigError> errors = parse_errors(c.text);
    REQUIRE_FALSE(errors.empty());
    bool found = false;
    for (const ConfigError& e : errors) {
      if (e.key == c.key && e.reason.find(c.reason_part) != std::string::npos) found = true;
    }
    CHECK_MESSAGE(found, "wanted " << c.key << ": ..." << c.reason_part << "...; got\n" << join(errors));
    for (const ConfigError& e : errors) CHECK(e.file == kFile);
  }
}

TEST_CASE("parse_config: a certificate without a key (or the reverse) is an error") {
  TempDir dir;
  std::string cert = dir.write("cert.pem", "c");
  std::vector<ConfigError> errors = parse_errors("[tls]\ncertificate = \"" + cert + "\"\n");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].key == "tls.private_key");
  errors = parse_errors("[tls]\nprivate_key = \"" + cert + "\"\n");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].key == "tls.certificate");
}

TEST_CASE("parse_config: FileChecks::kSkip reads file names without opening them") {
  auto result = parse_config("[tls]\ncertificate = \"cert.pem\"\nprivate_key = \"/root/key.pem\"\n"
                             "[upstream.old]\nhost = \"h\"\nca_file = \"/nonexistent/ca.pem\"\n",
                             kFile, FileChecks::kSkip);
  REQUIRE(std::holds_alternative<Config>(result));
  const Config& c = std::get<Config>(result);
  CHECK(c.tls.certificate == "/etc/holdd/cert.pem");
  CHECK(c.upstream_old->ca_file == "/nonexistent/ca.pem");
  // The pairing rule is not about files, so it still applies.
  CHECK(std::holds_alternative<std::vector<ConfigError>>(
      parse_config("[tls]\ncertificate = \"cert.pem\"\n", kFile, FileChecks::kSkip)));
}

TEST_CASE("parse_config: a directory is not a readable certificate") {
  TempDir dir;
  std::string d = dir.path.string();
  std::vector<ConfigError> errors =
      parse_errors("[tls]\ncertificate = \"" + d + "\"\nprivate_key = \"" + d + "\"\n");
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].reason.find("not a regular file") != std::string::npos);
}

TEST_CASE("parse_config: every error is reported, not only the first") {
  std::vector<ConfigError> errors = parse_errors(R"(
[server]
max_recipients = 0
max_message_size = "huge"
colour = "blue"
[delivery]
concurrency = 0
[upstream.old]
port = 0
)");
  std::vector<std::string> keys;
  for (const ConfigError& e : errors) keys.push_back(e.key);
  std::sort(keys.begin(), keys.end());
  CHECK(keys == std::vector<std::string>{"delivery.concurrency", "server.colour", "server.max_message_size",
                                         "server.max_recipients", "upstream.old.host", "upstream.old.port"});
}

TEST_CASE("parse_config: a syntax error names file, line and column") {
  std::vector<ConfigError> errors = parse_errors("[server]\nmax_hops = 50\nhostname = \n");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].key.empty());
  CHECK(errors[0].line == 3);
  CHECK(errors[0].column > 0);
  CHECK(errors[0].to_string().rfind(kFile + ":3:", 0) == 0);
}

TEST_CASE("parse_config: a duplicate key is a syntax error") {
  std::vector<ConfigError> errors = parse_errors("[server]\nmax_hops = 50\nmax_hops = 40\n");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].line == 3);
}

TEST_CASE("ConfigError::to_string: FILE: KEY: REASON, or FILE:LINE for syntax and directory files") {
  CHECK(ConfigError{"/etc/h.toml", "server.max_hops", "must be from 1"}.to_string() ==
        "/etc/h.toml: server.max_hops: must be from 1");
  ConfigError syntax{"/etc/h.toml", "", "expected a value"};
  syntax.line = 3;
  syntax.column = 12;
  CHECK(syntax.to_string() == "/etc/h.toml:3:12: expected a value");
  CHECK(ConfigError{"/etc/h.toml", "", "cannot read: No such file"}.to_string() ==
        "/etc/h.toml: cannot read: No such file");
  ConfigError line{"/etc/mb.txt", "/etc/mb.txt:7", "bad"};
  line.line = 7;
  CHECK(line.to_string() == "/etc/mb.txt:7: bad");
}

TEST_CASE("load_config: reads the file, and a missing file is an error") {
  TempDir dir;
  std::string path = dir.write("holdd.toml", "[server]\nhostname = \"mx.example.com\"\n[spool]\npath = \"spool\"\n");
  auto result = load_config(path);
  REQUIRE(std::holds_alternative<Config>(result));
  CHECK(std::get<Config>(result).server.hostname == "mx.example.com");
  CHECK(std::get<Config>(result).spool.path == (dir.path / "spool").string());

  auto missing = load_config((dir.path / "nope.toml").string());
  REQUIRE(std::holds_alternative<std::vector<ConfigError>>(missing));
  const auto& errors = std::get<std::vector<ConfigError>>(missing);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].reason.find("cannot read") != std::string::npos);
}

TEST_CASE("conf/dev.toml loads and points at loopback and the build tree") {
  const std::string conf = source_dir() + "/conf";
  auto result = load_config(conf + "/dev.toml");
  if (auto errors = std::get_if<std::vector<ConfigError>>(&result)) FAIL(join(*errors));
  const Config& c = std::get<Config>(result);
  REQUIRE(c.server.listen.size() == 1);
  CHECK(c.server.listen[0].to_string() == "127.0.0.1:2525");
  CHECK(c.server.hostname == "localhost");
  CHECK(c.spool.path == fs::path(source_dir() + "/build/dev-spool").lexically_normal().string());
  CHECK(c.directory.mailboxes == conf + "/dev-mailboxes.txt");
  CHECK(c.directory.domains == std::vector<std::string>{"example.com"});
  REQUIRE(c.upstream_old.has_value());
  CHECK(c.upstream_old->port == 2526);
  CHECK(c.upstream_old->tls == UpstreamTls::kNone);
  REQUIRE(c.upstream_new.has_value());
  CHECK(c.upstream_new->port == 2527);
  CHECK_FALSE((c.auth.spf || c.auth.dkim || c.auth.dmarc));
}

TEST_CASE("conf/holdd.toml is valid apart from certificate files absent on this machine") {
  auto result = load_config(source_dir() + "/conf/holdd.toml");
  if (auto errors = std::get_if<std::vector<ConfigError>>(&result)) {
    for (const ConfigError& e : *errors) {
      CAPTURE(e.to_string());
      CHECK((e.key == "tls.certificate" || e.key == "tls.private_key"));
      CHECK(e.reason.find("cannot read") != std::string::npos);
    }
  }
}

}  // namespace
}  // namespace holdd
