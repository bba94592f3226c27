#pragma once
// A blocking DNS stub resolver for SPF, DKIM and DMARC: res_nquery on a fresh
// resolver state per query, pointed at [auth] nameservers when set (any port,
// IPv4 or IPv6), else at /etc/resolv.conf. Each query is bounded by the
// configured timeout, and a Resolver may carry a deadline for a whole message:
// queries after it fail at once as temporary. Blocking: use it on a worker
// thread, never on the io_context. Thread-safe (const methods, no shared state).
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include <netinet/in.h>

#include "holdd/base/status.h"

namespace holdd::auth {

enum class DnsStatus {
  kFound,      // NOERROR with at least one answer of the type asked
  kNxDomain,   // the name does not exist (or is not a valid DNS name)
  kNoData,     // the name exists, but has no record of that type
  kTemporary,  // SERVFAIL, REFUSED, timeout, no server reachable, deadline passed
};

struct DnsReply {
  DnsStatus status = DnsStatus::kTemporary;
  std::vector<unsigned char> packet;  // the whole answer (ns_initparse) when kFound
  std::string error;                  // why kTemporary, for logs
  bool found() const { return status == DnsStatus::kFound; }
};

struct TxtReply {
  DnsStatus status = DnsStatus::kTemporary;
  std::vector<std::string> records;  // one per TXT RR, its strings concatenated
  std::string error;
};

class Resolver {
 public:
  using Clock = std::chrono::steady_clock;

  // `nameservers`: "IP", "IP:port" or "[IPv6]:port" (port 53 when absent);
  // empty: the system's resolver configuration. `timeout` bounds one query
  // (retries included, to the second). Invalid entries are an error.
  static Result<Resolver> create(const std::vector<std::string>& nameservers,
                                 std::chrono::seconds timeout);

  // Queries started after `deadline` fail at once with kTemporary, and no query
  // runs past it by more than a second (glibc counts whole seconds).
  void set_deadline(Clock::time_point deadline) { deadline_ = deadline; }

  // One query of class IN. `type` is an ns_type (ns_t_txt, ns_t_a, ...).
  DnsReply query(std::string_view name, int type) const;
  // TXT records of `name`: kFound only with at least one record.
  TxtReply txt(std::string_view name) const;

 private:
  struct Server {
    bool v6 = false;
    sockaddr_in in4{};
    sockaddr_in6 in6{};
  };
  Resolver() = default;

  std::vector<Server> servers_;  // empty: /etc/resolv.conf
  std::chrono::seconds timeout_{5};
  Clock::time_point deadline_ = Clock::time_point::max();
};

}  // namespace holdd::auth
