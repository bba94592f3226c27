#pragma once
// Organizational domains (RFC 7489 section 3.2) from the Public Suffix List:
// the public suffix of a name plus one label ("mail.example.co.uk" ->
// "example.co.uk"). DMARC uses it for relaxed alignment and for the policy
// look-up fallback.
#include <string>
#include <string_view>
#include <unordered_set>

namespace holdd::auth {

class PublicSuffixList {
 public:
  // The rules in `text` (publicsuffix.org format: one rule a line, "//"
  // comments, "*." wildcards, "!" exceptions).
  static PublicSuffixList parse(std::string_view text);

  // Debian's list (/usr/share/publicsuffix/public_suffix_list.dat, package
  // publicsuffix), read once. When it is missing, a heuristic stands in: the
  // last label is a suffix, and so are two labels when the second-level one is
  // a generic label under a two-letter country code ("co.uk", "com.au",
  // "ac.jp"); it misses suffixes like "github.io" or "pvt.k12.ma.us".
  static const PublicSuffixList& system();

  // The organizational domain of `domain` (lower-cased, trailing dot removed);
  // `domain` itself when it is a public suffix or has a single label.
  std::string organizational_domain(std::string_view domain) const;

  bool is_heuristic() const { return heuristic_; }

 private:
  std::unordered_set<std::string> rules_;       // "co.uk", "*.ck"
  std::unordered_set<std::string> exceptions_;  // "www.ck" (from "!www.ck")
  bool heuristic_ = false;
};

}  // namespace holdd::auth
