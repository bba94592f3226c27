#include "holdd/auth/spf.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>  // the spf2 headers need it first
#include <resolv.h>

extern "C" {  // the spf2 headers lack extern "C"
#include <spf2/spf.h>
#include <spf2/spf_dns.h>
}

#include <spdlog/spdlog.h>

#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>

#include "holdd/base/ascii.h"

namespace holdd::auth {

namespace {

// libspf2 reports bugs and allocation failures through SPF_error_handler, whose
// default prints and calls abort(). Ours throws instead (the handler must not
// return: the caller is declared noreturn); check_spf catches it. libspf2 is C
// built with unwind tables (x86-64 ABI), so the exception crosses its frames,
// leaking what they allocated: acceptable for what should never happen.
struct SpfLibraryError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void on_spf_error(const char* file, int line, const char* msg) {
  throw SpfLibraryError(std::string("libspf2: ") + (msg ? msg : "") + " (" + (file ? file : "?") +
                        ":" + std::to_string(line) + ")");
}
void on_spf_warning(const char* /*file*/, int /*line*/, const char* msg) {
  spdlog::debug("libspf2: {}", msg ? msg : "");
}
void on_spf_quiet(const char*, int, const char*) {}

void install_spf_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    SPF_error_handler = on_spf_error;
    SPF_warning_handler = on_spf_warning;
    SPF_info_handler = on_spf_quiet;
    SPF_debug_handler = on_spf_quiet;
  });
}

SPF_dns_stat_t herrno_for(DnsStatus s) {
  switch (s) {
    case DnsStatus::kFound: return NETDB_SUCCESS;
    case DnsStatus::kNxDomain: return HOST_NOT_FOUND;
    case DnsStatus::kNoData: return NO_DATA;
    case DnsStatus::kTemporary: return TRY_AGAIN;
  }
  return TRY_AGAIN;
}

// Copies the answers of type `type` from `reply` into `rr`, as libspf2's own
// resolv layer does: A/AAAA as addresses, MX/PTR as expanded names, TXT (and
// type 99) with their character-strings concatenated, NUL-terminated.
void fill_rr(SPF_dns_rr_t* rr, const DnsReply& reply, ns_type type) {
  ns_msg msg;
  const unsigned char* base = reply.packet.data();
  if (ns_initparse(base, static_cast<int>(reply.packet.size()), &msg) != 0) {
    rr->herrno = TRY_AGAIN;
    return;
  }
  const unsigned char* eom = base + reply.packet.size();
  int count = ns_msg_count(msg, ns_s_an);
  int n = 0;
  for (int i = 0; i < count; ++i) {
    ns_rr r;
    if (ns_parserr(&msg, ns_s_an, i, &r) != 0) break;
    if (ns_rr_type(r) != type) continue;
    const unsigned char* rdata = ns_rr_rdata(r);
    std::size_t rdlen = ns_rr_rdlen(r);
    switch (type) {
      case ns_t_a:
        if (rdlen != sizeof(in_addr)) continue;
        if (SPF_dns_rr_buf_realloc(rr, n, sizeof(in_addr)) != SPF_E_SUCCESS) return;
        std::memcpy(&rr->rr[n]->a, rdata, sizeof(in_addr));
        break;
      case ns_t_aaaa:
        if (rdlen != sizeof(in6_addr)) continue;
        if (SPF_dns_rr_buf_realloc(rr, n, sizeof(in6_addr)) != SPF_E_SUCCESS) return;
        std::memcpy(&rr->rr[n]->aaaa, rdata, sizeof(in6_addr));
        break;
      case ns_t_mx:
      case ns_t_ptr: {
        const unsigned char* at = rdata;
        if (type == ns_t_mx) {
          if (rdlen < NS_INT16SZ) continue;
          at += NS_INT16SZ;  // preference
        }
        char name[NS_MAXDNAME + 1];
        if (dn_expand(base, eom, at, name, sizeof name) < 0) continue;
        std::size_t len = std::strlen(name) + 1;
        if (SPF_dns_rr_buf_realloc(rr, n, len) != SPF_E_SUCCESS) return;
        std::memcpy(type == ns_t_mx ? rr->rr[n]->mx : rr->rr[n]->ptr, name, len);
        break;
      }
      case ns_t_txt:
      case ns_t_spf: {
        if (SPF_dns_rr_buf_realloc(rr, n, rdlen + 1) != SPF_E_SUCCESS) return;
        char* dst = rr->rr[n]->txt;
        const unsigned char* p = rdata;
        const unsigned char* end = rdata + rdlen;
        while (p < end) {
          std::size_t len = *p++;
          if (len > static_cast<std::size_t>(end - p)) len = static_cast<std::size_t>(end - p);
          std::memcpy(dst, p, len);
          dst += len;
          p += len;
        }
        *dst = '\0';
        break;
      }
      default:
        continue;
    }
    ++n;
  }
  rr->num_rr = n;
  if (n == 0) rr->herrno = NO_DATA;
}

// The DNS layer: libspf2 calls this for every look-up; `hook` is our Resolver.
// It must return a record set, never NULL, and must not throw (C caller).
SPF_dns_rr_t* lookup(SPF_dns_server_t* server, const char* domain, ns_type type,
                     int /*should_cache*/) {
  const auto* resolver = static_cast<const Resolver*>(server->hook);
  DnsReply reply;
  try {
    reply = resolver->query(domain ? domain : "", type);
  } catch (const std::exception& e) {
    reply.status = DnsStatus::kTemporary;
    reply.error = e.what();
  }
  if (!reply.found() && !reply.error.empty()) {
    spdlog::debug("spf: {} {}: {}", domain ? domain : "", static_cast<int>(type), reply.error);
  }
  SPF_dns_rr_t* rr = SPF_dns_rr_new_init(server, domain ? domain : "", type, 0,
                                         herrno_for(reply.status));
  if (rr != nullptr && reply.found()) fill_rr(rr, reply, type);
  return rr;
}

Verdict verdict_for(SPF_result_t r, SPF_errcode_t err) {
  switch (r) {
    case SPF_RESULT_PASS: return Verdict::kPass;
    case SPF_RESULT_FAIL: return Verdict::kFail;
    case SPF_RESULT_SOFTFAIL: return Verdict::kSoftfail;
    case SPF_RESULT_NEUTRAL: return Verdict::kNeutral;
    case SPF_RESULT_NONE: return Verdict::kNone;
    case SPF_RESULT_TEMPERROR: return Verdict::kTemperror;
    case SPF_RESULT_PERMERROR: return Verdict::kPermerror;
    case SPF_RESULT_INVALID: break;  // the top-level record could not be had
  }
  return err == SPF_E_DNS_ERROR ? Verdict::kTemperror : Verdict::kPermerror;
}

// Owns what check_spf allocates, whatever way it leaves.
struct SpfHandles {
  SPF_server_t* server = nullptr;
  SPF_request_t* request = nullptr;
  SPF_response_t* response = nullptr;
  ~SpfHandles() {
    if (response) SPF_response_free(response);
    if (request) SPF_request_free(request);
    if (server) SPF_server_free(server);
  }
};

std::string domain_of(std::string_view address) {
  std::size_t at = address.rfind('@');
  return to_lower_ascii(at == std::string_view::npos ? address : address.substr(at + 1));
}

}  // namespace

SpfResult check_spf(const Resolver& resolver, std::string_view client_ip, std::string_view helo,
                    std::string_view mail_from, std::string_view receiver) {
  install_spf_handlers();
  SpfResult result;
  // RFC 7208 section 2.4: for the null reverse-path, check postmaster@HELO.
  std::string sender;
  if (mail_from.empty()) {
    result.helo_identity = true;
    result.identity = std::string(helo);
    sender = "postmaster@" + std::string(helo);
  } else {
    result.identity = std::string(mail_from);
    sender = std::string(mail_from);
  }
  result.domain = domain_of(sender);
  // "HELO [192.0.2.1]" (an address literal) names no domain either.
  if (result.domain.empty() || sender.back() == '@' || result.domain.front() == '[') {
    result.reason = "no domain to check";
    return result;  // none
  }

  // Our DNS layer, one per call: libspf2 does not own it (no destroy function).
  SPF_dns_server_t layer{};
  layer.lookup = lookup;
  layer.name = "holdd";
  layer.hook = const_cast<Resolver*>(&resolver);

  try {
    SpfHandles h;
    h.server = SPF_server_new_dns(&layer, 0);
    if (h.server == nullptr) throw SpfLibraryError("SPF_server_new_dns failed");
    std::string rec_dom(receiver.empty() ? std::string_view("localhost") : receiver);
    SPF_server_set_rec_dom(h.server, rec_dom.c_str());
    h.request = SPF_request_new(h.server);
    std::string ip(client_ip);
    SPF_errcode_t err = ip.find(':') != std::string::npos
                            ? SPF_request_set_ipv6_str(h.request, ip.c_str())
                            : SPF_request_set_ipv4_str(h.request, ip.c_str());
    if (err != SPF_E_SUCCESS) {
      result.verdict = Verdict::kPermerror;
      result.reason = "bad client address \"" + ip + "\"";
      return result;
    }
    std::string helo_dom(helo);
    if (!helo_dom.empty()) SPF_request_set_helo_dom(h.request, helo_dom.c_str());  // before env_from
    if (SPF_request_set_env_from(h.request, sender.c_str()) != 0) {
      result.verdict = Verdict::kNone;
      result.reason = "unusable sender";
      return result;
    }
    err = SPF_request_query_mailfrom(h.request, &h.response);
    if (h.response == nullptr) {
      result.verdict = err == SPF_E_DNS_ERROR ? Verdict::kTemperror : Verdict::kPermerror;
      result.reason = SPF_strerror(err);
      return result;
    }
    if (err == SPF_E_SUCCESS) err = SPF_response_errcode(h.response);
    result.verdict = verdict_for(SPF_response_result(h.response), err);
    if (result.verdict == Verdict::kTemperror || result.verdict == Verdict::kPermerror) {
      result.reason = err == SPF_E_DNS_ERROR ? "DNS failure" : SPF_strerror(err);
    }
  } catch (const std::exception& e) {
    spdlog::error("spf: {}", e.what());
    result.verdict = Verdict::kPermerror;
    result.reason = "internal error";
  }
  return result;
}

}  // namespace holdd::auth
