#pragma once
// PgConnection: one libpq connection, used from one thread (ClusterDatabase's).
// Blocking calls with every parameter as text: holdd's statements are few and
// small, and the thread that makes them does nothing else.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "holdd/base/status.h"

struct pg_conn;

namespace holdd::cluster {

// A row of a result; NULL comes back as nullopt.
using PgRow = std::vector<std::optional<std::string>>;
using PgRows = std::vector<PgRow>;

class PgConnection {
 public:
  // `conninfo` as libpq takes it; holdd adds connect_timeout=5 and TCP keepalives
  // (a database behind a partition must not hang a call for minutes) unless the
  // conninfo sets them. A failure is temporary, with libpq's words.
  static Result<PgConnection> connect(const std::string& conninfo);

  PgConnection(PgConnection&& other) noexcept;
  PgConnection& operator=(PgConnection&& other) noexcept;
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;
  ~PgConnection();

  // Runs one statement with $1.. parameters (nullopt: NULL). Any failure is a
  // temporary Status with the server's message.
  Result<PgRows> query(std::string_view sql, const std::vector<std::optional<std::string>>& params = {});
  Status exec(std::string_view sql, const std::vector<std::optional<std::string>>& params = {});
  // Several statements without parameters (a schema migration).
  Status run_script(std::string_view sql);

  // False once the connection broke (the caller reconnects).
  bool healthy() const;
  int socket() const;
  // Reads what the server sent and returns the NOTIFY channels received since.
  std::vector<std::string> notifications();
  std::string server_version() const;

 private:
  explicit PgConnection(pg_conn* conn) : conn_(conn) {}
  pg_conn* conn_ = nullptr;
};

// The conninfo with holdd's defaults added (connect_timeout, keepalives,
// application_name); the password is never logged: see redact().
std::string with_defaults(const std::string& conninfo);
// The conninfo without its password=..., for logs and errors.
std::string redact(const std::string& conninfo);

}  // namespace holdd::cluster
