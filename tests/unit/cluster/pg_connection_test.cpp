// What holdd adds to an operator's conninfo, and what it shows of it.
#include <doctest/doctest.h>

#include "holdd/cluster/pg_connection.h"

using holdd::cluster::redact;
using holdd::cluster::with_defaults;

TEST_CASE("with_defaults: timeouts and keepalives unless the conninfo sets them") {
  const std::string plain = with_defaults("host=db dbname=holdd");
  CHECK(plain.find("connect_timeout=5") != std::string::npos);
  CHECK(plain.find("keepalives_idle=5") != std::string::npos);
  CHECK(plain.find("tcp_user_timeout=10000") != std::string::npos);
  CHECK(plain.find("application_name=holdd") != std::string::npos);
  // The operator's own value wins.
  const std::string own = with_defaults("host=db connect_timeout=30");
  CHECK(own.find("connect_timeout=30") != std::string::npos);
  CHECK(own.find("connect_timeout=5") == std::string::npos);
  // A URI takes them as query parameters.
  const std::string uri = with_defaults("postgresql://holdd@db/holdd");
  CHECK(uri.rfind("postgresql://holdd@db/holdd?connect_timeout=5&", 0) == 0);
  const std::string uri_with_query = with_defaults("postgresql://db/holdd?sslmode=require");
  CHECK(uri_with_query.find("?sslmode=require&connect_timeout=5") != std::string::npos);
}

TEST_CASE("redact: the conninfo without its password, for logs and errors") {
  const std::string shown = redact("host=db dbname=holdd user=holdd password=s3cret");
  CHECK(shown.find("s3cret") == std::string::npos);
  CHECK(shown.find("host=db") != std::string::npos);
  CHECK(shown.find("user=holdd") != std::string::npos);
  CHECK(redact("postgresql://holdd:s3cret@db/holdd").find("s3cret") == std::string::npos);
  CHECK(redact("host='unterminated").find("cannot parse") != std::string::npos);
}
