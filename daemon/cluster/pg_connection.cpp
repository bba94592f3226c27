#include "holdd/cluster/pg_connection.h"

#include <libpq-fe.h>

#include <memory>


namespace holdd::cluster {

namespace {

std::string last_error(PGconn* conn) {
  std::string message = conn ? PQerrorMessage(conn) : "out of memory";
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  for (char& c : message) {
    if (c == '\n') c = ' ';
  }
  return message;
}

std::string result_error(PGresult* result, PGconn* conn) {
  const char* message = result ? PQresultErrorMessage(result) : nullptr;
  std::string text = message && *message ? message : last_error(conn);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  for (char& c : text) {
    if (c == '\n') c = ' ';
  }
  return text;
}

bool has_key(const std::string& conninfo, std::string_view key) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  if (error) PQfreemem(error);
  if (!options) return false;
  bool found = false;
  for (PQconninfoOption* o = options; o->keyword; ++o) {
    if (key == o->keyword && o->val && *o->val) found = true;
  }
  PQconninfoFree(options);
  return found;
}

}  // namespace

std::string with_defaults(const std::string& conninfo) {
  // A URI ("postgresql://...") takes its options after '?'.
  const bool uri = conninfo.starts_with("postgresql://") || conninfo.starts_with("postgres://");
  std::string out = conninfo;
  auto add = [&](std::string_view key, std::string_view value) {
    if (has_key(conninfo, key)) return;
    if (uri) {
      out += out.find('?') == std::string::npos ? '?' : '&';
      out += std::string(key) + "=" + std::string(value);
    } else {
      out += " " + std::string(key) + "=" + std::string(value);
    }
  };
  add("connect_timeout", "5");
  add("keepalives", "1");
  add("keepalives_idle", "5");
  add("keepalives_interval", "2");
  add("keepalives_count", "3");
  add("tcp_user_timeout", "10000");
  add("application_name", "holdd");
  return out;
}

std::string redact(const std::string& conninfo) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  if (error) PQfreemem(error);
  if (!options) return "(a conninfo libpq cannot parse)";
  std::string out;
  for (PQconninfoOption* o = options; o->keyword; ++o) {
    if (!o->val || !*o->val) continue;
    std::string_view key = o->keyword;
    if (key == "password" || key == "sslpassword") continue;
    if (!out.empty()) out += ' ';
    out += std::string(key) + "=" + o->val;
  }
  PQconninfoFree(options);
  return out;
}

Result<PgConnection> PgConnection::connect(const std::string& conninfo) {
  PGconn* conn = PQconnectdb(with_defaults(conninfo).c_str());
  if (!conn || PQstatus(conn) != CONNECTION_OK) {
    std::string why = last_error(conn);
    if (conn) PQfinish(conn);
    return Status::temporary("cannot connect to PostgreSQL (" + redact(conninfo) + "): " + why);
  }
  // The server's NOTICEs ("relation ... already exists, skipping") are not for the log.
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
  return PgConnection(conn);
}

PgConnection::PgConnection(PgConnection&& other) noexcept : conn_(other.conn_) { other.conn_ = nullptr; }

PgConnection& PgConnection::operator=(PgConnection&& other) noexcept {
  if (this != &other) {
    if (conn_) PQfinish(conn_);
    conn_ = other.conn_;
    other.conn_ = nullptr;
  }
  return *this;
}

PgConnection::~PgConnection() {
  if (conn_) PQfinish(conn_);
}

Result<PgRows> PgConnection::query(std::string_view sql, const std::vector<std::optional<std::string>>& params) {
  if (!conn_) return Status::temporary("no connection to PostgreSQL");
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  const std::string text(sql);
  std::unique_ptr<PGresult, decltype(&PQclear)> result(
      PQexecParams(conn_, text.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                   nullptr, 0),
      &PQclear);
  ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    return Status::temporary("PostgreSQL: " + result_error(result.get(), conn_));
  }
  PgRows rows;
  const int n = PQntuples(result.get());
  const int fields = PQnfields(result.get());
  rows.reserve(n);
  for (int r = 0; r < n; ++r) {
    PgRow row;
    row.reserve(fields);
    for (int f = 0; f < fields; ++f) {
      if (PQgetisnull(result.get(), r, f)) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(std::string(PQgetvalue(result.get(), r, f),
                                     static_cast<size_t>(PQgetlength(result.get(), r, f))));
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

Status PgConnection::exec(std::string_view sql, const std::vector<std::optional<std::string>>& params) {
  Result<PgRows> r = query(sql, params);
  return r ? Status::ok() : r.status();
}

Status PgConnection::run_script(std::string_view sql) {
  if (!conn_) return Status::temporary("no connection to PostgreSQL");
  const std::string text(sql);
  std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(conn_, text.c_str()), &PQclear);
  ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    return Status::temporary("PostgreSQL: " + result_error(result.get(), conn_));
  }
  return Status::ok();
}

bool PgConnection::healthy() const { return conn_ && PQstatus(conn_) == CONNECTION_OK; }

int PgConnection::socket() const { return conn_ ? PQsocket(conn_) : -1; }

std::vector<std::string> PgConnection::notifications() {
  std::vector<std::string> channels;
  if (!conn_) return channels;
  PQconsumeInput(conn_);
  while (PGnotify* n = PQnotifies(conn_)) {
    channels.emplace_back(n->relname);
    PQfreemem(n);
  }
  return channels;
}

std::string PgConnection::server_version() const {
  if (!conn_) return "";
  int v = PQserverVersion(conn_);
  return std::to_string(v / 10000) + "." + std::to_string(v % 10000);
}

}  // namespace holdd::cluster
