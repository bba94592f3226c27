#include "holdd/auth/org_domain.h"

#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "holdd/base/ascii.h"

namespace holdd::auth {

namespace {

constexpr const char* kSystemList = "/usr/share/publicsuffix/public_suffix_list.dat";

std::vector<std::string_view> labels_of(std::string_view d) {
  std::vector<std::string_view> labels;
  while (!d.empty()) {
    std::size_t dot = d.find('.');
    labels.push_back(d.substr(0, dot));
    if (dot == std::string_view::npos) break;
    d.remove_prefix(dot + 1);
  }
  return labels;
}

// labels [from, end) joined with dots.
std::string join(const std::vector<std::string_view>& labels, std::size_t from) {
  std::string out;
  for (std::size_t i = from; i < labels.size(); ++i) {
    if (!out.empty()) out.push_back('.');
    out.append(labels[i]);
  }
  return out;
}

bool is_generic_second_level(std::string_view label) {
  static const char* const kGeneric[] = {"ac", "co", "com", "edu", "gov", "ltd", "me", "mil",
                                         "net", "nhs", "or", "org", "plc", "sch", "ne", "go"};
  for (const char* g : kGeneric) {
    if (label == g) return true;
  }
  return false;
}

}  // namespace

PublicSuffixList PublicSuffixList::parse(std::string_view text) {
  PublicSuffixList list;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    // A rule is the first whitespace-separated word of a line.
    std::size_t b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos || line.compare(b, 2, "//") == 0) continue;
    std::size_t e = line.find_first_of(" \t\r", b);
    std::string rule = to_lower_ascii(line.substr(b, e == std::string::npos ? e : e - b));
    if (rule.front() == '!') {
      list.exceptions_.insert(rule.substr(1));
    } else {
      list.rules_.insert(rule);
    }
  }
  return list;
}

const PublicSuffixList& PublicSuffixList::system() {
  static const PublicSuffixList list = [] {
    std::ifstream file(kSystemList);
    if (file) {
      std::stringstream text;
      text << file.rdbuf();
      PublicSuffixList l = parse(text.str());
      if (!l.rules_.empty()) return l;
    }
    spdlog::warn("dmarc: {} not found (Debian package publicsuffix): organizational "
                 "domains are guessed from the last two or three labels",
                 kSystemList);
    PublicSuffixList l;
    l.heuristic_ = true;
    return l;
  }();
  return list;
}

std::string PublicSuffixList::organizational_domain(std::string_view domain) const {
  std::string d = to_lower_ascii(domain);
  while (!d.empty() && d.back() == '.') d.pop_back();
  std::vector<std::string_view> labels = labels_of(d);
  if (labels.size() < 2) return d;

  // How many labels the public suffix has.
  std::size_t suffix = 1;  // the implicit "*" rule: the last label
  if (heuristic_) {
    std::size_t n = labels.size();
    if (labels[n - 1].size() == 2 && is_generic_second_level(labels[n - 2])) suffix = 2;
  } else {
    // publicsuffix.org algorithm: the longest matching rule wins; an exception
    // rule ("!www.ck") makes its own name a registrable domain. Candidates run
    // from the whole name down to its last label, so the first match is the
    // longest. A wildcard "*.ck" matches "<any>.ck", one label longer than "ck".
    for (std::size_t i = 0; i < labels.size(); ++i) {
      std::size_t count = labels.size() - i;
      std::string candidate = join(labels, i);
      if (exceptions_.count(candidate) != 0) {
        suffix = count - 1;
        break;
      }
      if (i + 1 < labels.size() && rules_.count("*." + join(labels, i + 1)) != 0) {
        suffix = count;
        break;
      }
      if (rules_.count(candidate) != 0) {
        suffix = count;
        break;
      }
    }
  }
  if (suffix >= labels.size()) return d;  // a public suffix itself
  return join(labels, labels.size() - suffix - 1);
}

}  // namespace holdd::auth
