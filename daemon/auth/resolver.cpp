#include "holdd/auth/resolver.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <resolv.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "holdd/config/endpoint.h"

namespace holdd::auth {

namespace {

constexpr uint16_t kDnsPort = 53;
constexpr std::size_t kMaxAnswer = 65535;

// RFC 1035 section 2.3.4: at most 253 characters (without the root dot), labels
// of 1 to 63 octets. Anything else never reaches the wire: SPF and DMARC take
// names from MAIL FROM and From:, which the sender controls.
bool is_valid_name(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return false;
  std::size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (++label > 63 || c == '\0' || c == ' ' || c == '\\') {
      return false;
    }
  }
  return label > 0;
}

// A resolver state that lives for one query. res_nclose also frees the IPv6
// server addresses glibc keeps in _u._ext.nsaddrs (malloc'ed), ours included.
class ResState {
 public:
  ResState() { std::memset(&state_, 0, sizeof state_); }
  ~ResState() {
    if (initialised_) res_nclose(&state_);
  }
  ResState(const ResState&) = delete;
  ResState& operator=(const ResState&) = delete;
  bool init() {
    initialised_ = res_ninit(&state_) == 0;
    return initialised_;
  }
  res_state get() { return &state_; }

 private:
  struct __res_state state_;
  bool initialised_ = false;
};

}  // namespace

Result<Resolver> Resolver::create(const std::vector<std::string>& nameservers,
                                  std::chrono::seconds timeout) {
  Resolver r;
  r.timeout_ = std::max(timeout, std::chrono::seconds(1));
  if (nameservers.size() > MAXNS) {
    return Status::invalid("at most " + std::to_string(MAXNS) + " nameservers");
  }
  for (const std::string& text : nameservers) {
    Result<Endpoint> ep = parse_endpoint(text, kDnsPort);
    if (!ep) return Status::invalid("nameserver \"" + text + "\": " + ep.status().message());
    Server s;
    if (inet_pton(AF_INET, ep->host.c_str(), &s.in4.sin_addr) == 1) {
      s.in4.sin_family = AF_INET;
      s.in4.sin_port = htons(ep->port);
    } else if (inet_pton(AF_INET6, ep->host.c_str(), &s.in6.sin6_addr) == 1) {
      s.v6 = true;
      s.in6.sin6_family = AF_INET6;
      s.in6.sin6_port = htons(ep->port);
    } else {
      return Status::invalid("nameserver \"" + text + "\": not an IP address");
    }
    r.servers_.push_back(s);
  }
  return r;
}

DnsReply Resolver::query(std::string_view name, int type) const {
  DnsReply reply;
  if (!is_valid_name(name)) {
    reply.status = DnsStatus::kNxDomain;
    return reply;
  }
  auto left = std::chrono::ceil<std::chrono::seconds>(deadline_ - Clock::now());
  if (deadline_ != Clock::time_point::max() && left <= std::chrono::seconds(0)) {
    reply.error = "time limit for DNS look-ups reached";
    return reply;
  }
  int budget = static_cast<int>(std::min(timeout_, left).count());

  ResState rs;
  if (!rs.init()) {
    reply.error = "res_ninit failed";
    return reply;
  }
  res_state st = rs.get();
  if (!servers_.empty()) {
    // Override what res_ninit read from /etc/resolv.conf. glibc keeps IPv4
    // servers in nsaddr_list and IPv6 ones in malloc'ed _u._ext.nsaddrs entries
    // (nsaddr_list[i].sin_family == 0 marks those); res_nclose frees them.
    for (auto*& a : st->_u._ext.nsaddrs) {
      std::free(a);
      a = nullptr;
    }
    for (std::size_t i = 0; i < servers_.size(); ++i) {
      const Server& s = servers_[i];
      if (s.v6) {
        st->nsaddr_list[i] = sockaddr_in{};
        st->nsaddr_list[i].sin_family = 0;
        auto* a6 = static_cast<sockaddr_in6*>(std::malloc(sizeof(sockaddr_in6)));
        if (a6 == nullptr) {
          reply.error = "out of memory";
          return reply;
        }
        *a6 = s.in6;
        st->_u._ext.nsaddrs[i] = a6;
      } else {
        st->nsaddr_list[i] = s.in4;
      }
    }
    st->nscount = static_cast<int>(servers_.size());
  }
  // glibc waits `retrans` seconds for the first try and twice that for the
  // second (per server), so two tries of budget/3 stay within the budget.
  if (budget >= 3) {
    st->retry = 2;
    st->retrans = budget / 3;
  } else {
    st->retry = 1;
    st->retrans = budget;
  }
  st->options |= RES_USE_EDNS0;  // TXT sets often exceed 512 bytes; TCP on truncation

  std::string qname(name);
  reply.packet.resize(kMaxAnswer);
  int n = res_nquery(st, qname.c_str(), ns_c_in, type, reply.packet.data(),
                     static_cast<int>(reply.packet.size()));
  if (n >= 0) {
    reply.packet.resize(static_cast<std::size_t>(std::min<int>(n, kMaxAnswer)));
    reply.status = DnsStatus::kFound;
    return reply;
  }
  reply.packet.clear();
  // res_nquery's verdict: NXDOMAIN -> HOST_NOT_FOUND, NOERROR without answers ->
  // NO_DATA, SERVFAIL and send failures (timeout, refused) -> TRY_AGAIN,
  // FORMERR/NOTIMP/REFUSED -> NO_RECOVERY.
  switch (st->res_h_errno) {
    case HOST_NOT_FOUND: reply.status = DnsStatus::kNxDomain; break;
    case NO_DATA: reply.status = DnsStatus::kNoData; break;
    case TRY_AGAIN: reply.error = "DNS timeout or server failure"; break;
    case NO_RECOVERY: reply.error = "DNS server refused the query"; break;
    default: reply.error = "DNS failure"; break;
  }
  return reply;
}

TxtReply Resolver::txt(std::string_view name) const {
  TxtReply out;
  DnsReply r = query(name, ns_t_txt);
  out.status = r.status;
  out.error = std::move(r.error);
  if (!r.found()) return out;
  ns_msg msg;
  if (ns_initparse(r.packet.data(), static_cast<int>(r.packet.size()), &msg) != 0) {
    out.status = DnsStatus::kTemporary;
    out.error = "malformed DNS answer";
    return out;
  }
  int count = ns_msg_count(msg, ns_s_an);
  for (int i = 0; i < count; ++i) {
    ns_rr rr;
    if (ns_parserr(&msg, ns_s_an, i, &rr) != 0) break;
    if (ns_rr_type(rr) != ns_t_txt) continue;  // CNAMEs on the way
    const unsigned char* p = ns_rr_rdata(rr);
    const unsigned char* end = p + ns_rr_rdlen(rr);
    std::string text;
    while (p < end) {  // <character-string>s: a length octet, then that many octets
      std::size_t len = *p++;
      len = std::min<std::size_t>(len, static_cast<std::size_t>(end - p));
      text.append(reinterpret_cast<const char*>(p), len);
      p += len;
    }
    out.records.push_back(std::move(text));
  }
  if (out.records.empty()) out.status = DnsStatus::kNoData;
  return out;
}

}  // namespace holdd::auth
