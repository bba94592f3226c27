#pragma once
// The daemon's configuration (SPEC "Configuration"), as loaded from TOML and
// validated. Every key is optional and has the default documented in
// conf/holdd.toml; unknown keys, wrong types and impossible values are errors that
// name the file, the key and the reason.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "holdd/base/mailbox_state.h"
#include "holdd/config/endpoint.h"  // Endpoint

namespace holdd {

// A message's content is held twice in RAM at its peak (smtp/message_buffer.h:
// the blocks it arrived in and the string it is stored from; then that string
// and LMDB's copy until the commit), and counted so against max_message_memory.
inline constexpr uint64_t kMessageCopiesInMemory = 2;

struct ServerConfig {
  std::vector<Endpoint> listen = {{"0.0.0.0", 25}, {"::", 25}};
  std::string hostname;                  // default: gethostname()
  uint64_t max_message_size = 50ull << 20;
  // Message content in RAM across all sessions (MessageMemoryBudget); beyond
  // it intake answers 452 4.3.1. Default: default_max_message_memory().
  uint64_t max_message_memory = 512ull << 20;
  uint32_t max_recipients = 1000;
  uint32_t max_connections = 2000;
  uint32_t max_connections_per_ip = 50;
  std::chrono::seconds command_timeout{300};
  std::chrono::seconds data_timeout{600};
  uint32_t max_hops = 50;
  std::chrono::seconds shutdown_grace{30};  // SIGTERM: how long sessions may finish
  // Not a [server] key: [upstream.old] forwarders, copied here by load_config so
  // that sessions (which see ServerConfig, swapped on SIGHUP) can mark forwards.
  std::vector<std::string> old_forwarders;
  bool is_old_forwarder(const std::string& ip) const {
    for (const std::string& f : old_forwarders) {
      if (f == ip) return true;
    }
    return false;
  }
};

struct TlsConfig {
  std::string certificate;  // PEM chain
  std::string private_key;  // PEM
  bool enabled() const { return !certificate.empty() && !private_key.empty(); }
};

struct SpoolConfig {
  std::string path = "/var/spool/holdd";  // directory holding the LMDB environment
  uint64_t min_free_disk = 2ull << 30;    // below this intake answers 452 4.3.1
};

struct ControlConfig {
  std::string socket = "/run/holdd/control.sock";
  uint32_t socket_mode = 0660;
  std::string socket_owner;  // user name; empty: the daemon's user
  std::string socket_group;  // group name; empty: the daemon's group
  std::optional<Endpoint> metrics_listen = Endpoint{"127.0.0.1", 9725};  // "" disables
};

// What RCPT TO does with a local address that is neither a listed mailbox nor an
// alias: kListed refuses it (550 5.1.1), kAny accepts it, kVerify asks the old
// server, then the new one (SPEC "The old server").
enum class RecipientPolicy { kListed, kAny, kVerify };

// How the local part of an address names a mailbox (SPEC: "compared
// case-insensitively (ASCII) ... by default, in the local part too"). People type
// John.Smith@ for john.smith@; almost every server delivers both to one mailbox,
// so holdd must hold and release them together. kExact is for the rare server
// whose local parts really are case-sensitive.
enum class LocalPartCase { kInsensitive, kExact };

struct DirectoryConfig {
  std::vector<std::string> domains;  // lower-cased
  std::string mailboxes;             // path; empty: no mailboxes file
  std::string aliases;               // path; empty: no aliases file
  RecipientPolicy recipients = RecipientPolicy::kListed;
  // recipients = "verify": how long an upstream's answer is kept (a refusal: a
  // tenth of it).
  std::chrono::seconds verify_cache{3600};
  MailboxState initial_state = MailboxState::kOld;
  LocalPartCase local_part_case = LocalPartCase::kInsensitive;  // needs a restart (spool keys)
};

enum class UpstreamProtocol { kSmtp, kLmtp };
enum class UpstreamTls { kNone, kOpportunistic, kRequired };

struct UpstreamConfig {
  std::string name;  // "old" or "new"
  std::string host;
  uint16_t port = 25;
  UpstreamProtocol protocol = UpstreamProtocol::kSmtp;
  UpstreamTls tls = UpstreamTls::kOpportunistic;
  std::string ca_file;      // PEM bundle to verify the upstream; empty: system store
  std::string tls_name;     // name the certificate must match; empty: host
  std::chrono::seconds connect_timeout{30};
  std::chrono::seconds command_timeout{300};  // per reply; DATA's final reply gets 10m
  uint32_t max_connections = 0;               // 0: no limit beyond [delivery] concurrency
  // [upstream.old] only: the client addresses the old server forwards from
  // (SPEC "The old server"), in canonical text form (v4-mapped v6 as v4).
  std::vector<std::string> forwarders;
};

struct DeliveryConfig {
  uint32_t concurrency = 20;
  std::chrono::seconds retry_min{60};
  std::chrono::seconds retry_max{1800};
  std::chrono::seconds warn_after{4 * 3600};
  // Messages of one mailbox that an upstream accepted and whose removal from the
  // spool may still be committing while the next one is sent. 1: none (the next
  // message waits for the durable removal). A crash resends at most this many
  // per mailbox being relayed (SPEC "Relay and replay": at-least-once).
  uint32_t pipeline = 1;
};

struct AuthConfig {
  bool spf = true;
  bool dkim = true;
  bool dmarc = true;
  std::string authserv_id;               // default: server.hostname
  std::vector<std::string> nameservers;  // "IP", "IP:port", "[v6]:port"
  std::chrono::seconds dns_timeout{5};

  bool operator==(const AuthConfig&) const = default;
};

// [cluster] (SPEC "Several nodes"): absent, holdd is a single node and never
// touches PostgreSQL. Changes need a restart.
struct ClusterConfig {
  std::string postgresql;  // libpq conninfo; empty: a single node
  std::string node;        // unique per node; default: the host name
  bool enabled() const { return !postgresql.empty(); }
  bool operator==(const ClusterConfig&) const = default;
};

struct Config {
  std::string path;  // the file this was loaded from
  ServerConfig server;
  TlsConfig tls;
  SpoolConfig spool;
  ControlConfig control;
  DirectoryConfig directory;
  std::optional<UpstreamConfig> upstream_old;  // absent: mail for `old` stays queued
  std::optional<UpstreamConfig> upstream_new;  // absent: mail for `migrated` stays queued
  DeliveryConfig delivery;
  AuthConfig auth;
  ClusterConfig cluster;

  const std::optional<UpstreamConfig>& upstream_for(MailboxState s) const {
    return s == MailboxState::kMigrated ? upstream_new : upstream_old;
  }
};

// One problem found in a configuration file.
struct ConfigError {
  std::string file;
  std::string key;     // dotted: "server.max_message_size"; "" for a syntax error
  std::string reason;  // "expected a size such as \"50MiB\", got \"fifty\""
  uint32_t line = 0;    // 1-based, when known (syntax errors, directory files)
  uint32_t column = 0;  // 1-based, when known (syntax errors)
  // "FILE: KEY: REASON"; "FILE:LINE:COL: REASON" for a syntax error; and
  // "FILE:LINE: REASON" when the key already is "FILE:LINE" (directory files).
  std::string to_string() const;
};

// [server] max_message_memory when the file does not set it: 512 MiB, or a
// quarter of `physical_memory` if that is smaller; but never less than one
// message of max_message_size needs (kMessageCopiesInMemory times its size), so
// that any message within the SIZE holdd advertises can be accepted.
uint64_t default_max_message_memory(uint64_t physical_memory, uint64_t max_message_size);

// Whether load_config checks that the files the config names (tls.certificate,
// tls.private_key, upstream.*.ca_file) can be read. The daemon and --check-config
// check; holdctl, which only wants control.socket and often runs as a user who
// may not read the private key, skips the check.
enum class FileChecks { kCheck, kSkip };

// Reads and validates the file at `path`. Returns the Config, or every problem
// found (not only the first), so --check-config can print them all. Relative
// paths in the file are resolved against the file's directory.
std::variant<Config, std::vector<ConfigError>> load_config(const std::string& path,
                                                           FileChecks checks = FileChecks::kCheck);
// Same, from text already read (for tests); `path` is used in messages and to
// resolve relative paths.
std::variant<Config, std::vector<ConfigError>> parse_config(std::string_view text,
                                                            const std::string& path,
                                                            FileChecks checks = FileChecks::kCheck);

}  // namespace holdd
