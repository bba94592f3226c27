#pragma once
// ASCII-only case handling for protocol text: SMTP verbs and parameters, header
// field names, domains, authserv-ids. Locale-independent on purpose: the C
// locale's tolower() must never decide whether "MAIL" equals "mail".
#include <string>
#include <string_view>

namespace holdd {

constexpr char to_lower_ascii(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}
std::string to_lower_ascii(std::string_view s);
bool iequals(std::string_view a, std::string_view b);
bool istarts_with(std::string_view s, std::string_view prefix);

}  // namespace holdd
