#include "holdd/config/units.h"

#include <limits>

namespace holdd {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Reads the leading decimal digits of `s` into `out`; false if there are none or
// the number does not fit in 64 bits.
bool take_number(std::string_view& s, uint64_t& out) {
  size_t i = 0;
  out = 0;
  while (i < s.size() && is_digit(s[i])) {
    uint64_t d = static_cast<uint64_t>(s[i] - '0');
    if (out > (std::numeric_limits<uint64_t>::max() - d) / 10) return false;
    out = out * 10 + d;
    ++i;
  }
  if (i == 0) return false;
  s.remove_prefix(i);
  return true;
}

std::string_view trim_spaces(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<uint64_t> parse_size(std::string_view text) {
  std::string_view s = trim_spaces(text);
  uint64_t n;
  if (!take_number(s, n)) return std::nullopt;
  s = trim_spaces(s);  // "50 MiB" reads as well as "50MiB"
  // Only the units SPEC names. "50MB" is refused rather than guessed: an operator
  // who meant 10^6 and one who meant 2^20 would both be surprised by a guess.
  unsigned shift;
  if (s.empty() || s == "B") shift = 0;
  else if (s == "KiB") shift = 10;
  else if (s == "MiB") shift = 20;
  else if (s == "GiB") shift = 30;
  else if (s == "TiB") shift = 40;
  else return std::nullopt;
  if (shift > 0 && n > (std::numeric_limits<uint64_t>::max() >> shift)) return std::nullopt;
  return n << shift;
}

std::optional<std::chrono::seconds> parse_duration(std::string_view text) {
  std::string_view s = trim_spaces(text);
  if (s.empty()) return std::nullopt;
  using Rep = std::chrono::seconds::rep;
  constexpr Rep kMax = std::numeric_limits<Rep>::max();
  uint64_t n;
  // A bare number is seconds, the same as an integer in TOML.
  if (std::string_view rest = s; take_number(rest, n) && rest.empty()) {
    if (n > static_cast<uint64_t>(kMax)) return std::nullopt;
    return std::chrono::seconds(static_cast<Rep>(n));
  }
  // Units must come largest first and at most once: "1h30m", not "30m1h" or "1m1m",
  // so a typo is an error instead of a surprising sum.
  const struct { char unit; Rep seconds; } kUnits[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};
  size_t next_unit = 0;
  Rep total = 0;
  while (!s.empty()) {
    if (!take_number(s, n) || s.empty()) return std::nullopt;
    char unit = s.front();
    s.remove_prefix(1);
    size_t u = next_unit;
    while (u < std::size(kUnits) && kUnits[u].unit != unit) ++u;
    if (u == std::size(kUnits)) return std::nullopt;
    next_unit = u + 1;
    if (n > static_cast<uint64_t>(kMax / kUnits[u].seconds)) return std::nullopt;
    Rep part = static_cast<Rep>(n) * kUnits[u].seconds;
    if (total > kMax - part) return std::nullopt;
    total += part;
  }
  return std::chrono::seconds(total);
}

}  // namespace holdd
