#include "holdd/auth/dkim.h"

#include <stdbool.h>  // dkim.h uses _Bool

#include <dkim.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <memory>
#include <set>
#include <utility>

#include "holdd/base/ascii.h"

namespace holdd::auth {

namespace {

// What one verification's key look-ups need and learn; reached from the
// opendkim callback through dkim_get_user_context.
struct KeyLookup {
  const Resolver* resolver = nullptr;
  std::size_t lookups = 0;
  std::set<std::pair<std::string, std::string>> temporary_failures;  // (d=, s=)
};

std::string str(const unsigned char* s) { return s ? reinterpret_cast<const char*>(s) : ""; }

// opendkim's key look-up, replaced so that DNS goes through our Resolver.
// Called on the verifying thread; C caller, so nothing may escape.
DKIM_CBSTAT lookup_key(DKIM* dkim, DKIM_SIGINFO* sig, u_char* buf, size_t buflen) {
  try {
    auto* ctx = static_cast<KeyLookup*>(dkim_get_user_context(dkim));
    std::string selector = str(dkim_sig_getselector(sig));
    std::string domain = str(dkim_sig_getdomain(sig));
    if (ctx == nullptr || selector.empty() || domain.empty()) return DKIM_CBSTAT_ERROR;
    if (++ctx->lookups > kMaxDkimSignatures) return DKIM_CBSTAT_ERROR;
    TxtReply reply = ctx->resolver->txt(selector + "._domainkey." + domain);
    switch (reply.status) {
      case DnsStatus::kNxDomain:
      case DnsStatus::kNoData:
        return DKIM_CBSTAT_NOTFOUND;
      case DnsStatus::kTemporary:
        // Told "try again", opendkim gives up on the whole message; told "not
        // found", it goes on with the other signatures, and judge() turns this
        // one into a temperror from the record kept here.
        ctx->temporary_failures.emplace(to_lower_ascii(domain), selector);
        return DKIM_CBSTAT_NOTFOUND;
      case DnsStatus::kFound:
        break;
    }
    const std::string& key = reply.records.front();
    if (key.size() + 1 > buflen) return DKIM_CBSTAT_ERROR;
    std::memcpy(buf, key.data(), key.size());
    buf[key.size()] = '\0';
    return DKIM_CBSTAT_CONTINUE;
  } catch (const std::exception& e) {
    spdlog::error("dkim: key look-up: {}", e.what());
    return DKIM_CBSTAT_ERROR;
  }
}

// One DKIM_LIB per process: options are set once, before any verification;
// the handle is then shared by all threads (one DKIM* per message) and lives
// until exit.
DKIM_LIB* library() {
  static DKIM_LIB* lib = [] {
    DKIM_LIB* l = dkim_init(nullptr, nullptr);
    if (l == nullptr) return l;
    // Keep handles for signatures with syntax errors, so that each gets its own
    // permerror with its d= and s= instead of vanishing.
    unsigned int flags = DKIM_LIBFLAGS_BADSIGHANDLES;
    dkim_options(l, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof flags);
    dkim_set_key_lookup(l, lookup_key);
    return l;
  }();
  return lib;
}

bool is_temporary(DKIM_STAT st) {
  return st == DKIM_STAT_CBTRYAGAIN || st == DKIM_STAT_KEYFAIL || st == DKIM_STAT_NORESOURCE;
}

struct DkimFree {
  void operator()(DKIM* d) const { dkim_free(d); }
};

DkimSignatureResult judge(DKIM_SIGINFO* sig, const KeyLookup& ctx, DKIM_STAT overall) {
  DkimSignatureResult r;
  r.domain = to_lower_ascii(str(dkim_sig_getdomain(sig)));
  r.selector = str(dkim_sig_getselector(sig));
  static unsigned char b_tag[] = "b";
  for (char c : str(dkim_sig_gettagvalue(sig, false, b_tag))) {
    if (r.b_prefix.size() == 8) break;
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') r.b_prefix.push_back(c);
  }
  unsigned int flags = dkim_sig_getflags(sig);
  int bh = dkim_sig_getbh(sig);
  int err = dkim_sig_geterror(sig);
  if (ctx.temporary_failures.count({r.domain, r.selector}) != 0) {
    r.verdict = Verdict::kTemperror;
    r.reason = "key look-up failed";
  } else if ((flags & DKIM_SIGFLAG_PASSED) != 0 && bh == DKIM_SIGBH_MATCH) {
    r.verdict = Verdict::kPass;
  } else if (bh == DKIM_SIGBH_MISMATCH) {
    r.verdict = Verdict::kFail;
    r.reason = "body hash mismatch";
  } else if (err == DKIM_SIGERROR_BADSIG) {
    r.verdict = Verdict::kFail;
    r.reason = "signature mismatch";
  } else if (err == DKIM_SIGERROR_KEYFAIL) {
    r.verdict = Verdict::kTemperror;
    r.reason = "key look-up failed";
  } else if (err != DKIM_SIGERROR_OK && err != DKIM_SIGERROR_UNKNOWN) {
    r.verdict = Verdict::kPermerror;
    const char* why = dkim_sig_geterrorstr(err);
    r.reason = why ? why : "signature error";
  } else if ((flags & DKIM_SIGFLAG_PROCESSED) == 0) {
    r.verdict = is_temporary(overall) ? Verdict::kTemperror : Verdict::kNeutral;
    r.reason = "not verified";
  } else {
    r.verdict = Verdict::kFail;
    r.reason = "verification failed";
  }
  return r;
}

}  // namespace

DkimResult verify_dkim(const Resolver& resolver, std::string_view content) {
  DkimResult result;
  DKIM_LIB* lib = library();
  if (lib == nullptr) {
    result.verdict = Verdict::kTemperror;
    result.reason = "libopendkim initialisation failed";
    return result;
  }
  static const unsigned char kId[] = "holdd";
  DKIM_STAT st = DKIM_STAT_OK;
  std::unique_ptr<DKIM, DkimFree> dkim(dkim_verify(lib, kId, nullptr, &st));
  if (!dkim) {
    result.verdict = Verdict::kTemperror;
    result.reason = dkim_getresultstr(st);
    return result;
  }
  KeyLookup ctx;
  ctx.resolver = &resolver;
  dkim_set_user_context(dkim.get(), &ctx);

  // Feed the message, stopping at the first status that is not OK: an unsigned
  // message gives NOSIG at the end of the header, and calling on gives INVALID.
  auto* bytes = reinterpret_cast<unsigned char*>(const_cast<char*>(content.data()));
  st = dkim_chunk(dkim.get(), bytes, content.size());
  if (st == DKIM_STAT_OK) st = dkim_chunk(dkim.get(), nullptr, 0);
  if (st == DKIM_STAT_OK) st = dkim_eom(dkim.get(), nullptr);
  if (st == DKIM_STAT_NOSIG) return result;  // none

  DKIM_SIGINFO** sigs = nullptr;
  int nsigs = 0;
  if (dkim_getsiglist(dkim.get(), &sigs, &nsigs) != DKIM_STAT_OK || nsigs <= 0) {
    result.verdict = is_temporary(st) ? Verdict::kTemperror : Verdict::kPermerror;
    result.reason = dkim_getresultstr(st);
    // A failed key look-up stops opendkim before it hands out the signatures;
    // the look-ups we answered still say which ones they were.
    for (const auto& [domain, selector] : ctx.temporary_failures) {
      DkimSignatureResult sig;
      sig.verdict = Verdict::kTemperror;
      sig.domain = domain;
      sig.selector = selector;
      sig.reason = "key look-up failed";
      result.signatures.push_back(std::move(sig));
    }
    return result;
  }
  for (int i = 0; i < nsigs && result.signatures.size() < kMaxDkimSignatures; ++i) {
    result.signatures.push_back(judge(sigs[i], ctx, st));
  }
  // The summary: pass when any signature passed, else the first one's verdict.
  result.verdict = result.signatures.front().verdict;
  for (const DkimSignatureResult& sig : result.signatures) {
    if (sig.verdict == Verdict::kPass) result.verdict = Verdict::kPass;
  }
  return result;
}

}  // namespace holdd::auth
