#include "holdd/base/printable.h"

#include <doctest/doctest.h>

#include <string>

namespace holdd {

TEST_CASE("printable: valid UTF-8 and printable ASCII stay, other bytes become \\xNN") {
  struct Case {
    std::string in, out;
  };
  const Case cases[] = {
      {"250 2.0.0 Ok", "250 2.0.0 Ok"},
      {"250 2.0.0 Message re\xe7u", "250 2.0.0 Message re\\xE7u"},   // Latin-1
      {"550 Benutzer unbekannt: M\xc3\xbcller", "550 Benutzer unbekannt: M\xc3\xbcller"},  // UTF-8
      {"a\r\nb\tc\x7f", "a\\x0D\\x0Ab\\x09c\\x7F"},                  // controls
      {"\xc3", "\\xC3"},                                             // truncated sequence
      {"\xc0\xaf", "\\xC0\\xAF"},                                    // overlong '/'
      {"\xed\xa0\x80", "\\xED\\xA0\\x80"},                           // surrogate
      {"\xf0\x9f\x93\xa7 mail", "\xf0\x9f\x93\xa7 mail"},            // 4-byte sequence
      {"", ""},
  };
  for (const Case& c : cases) {
    CAPTURE(c.in);
    CHECK(printable(c.in) == c.out);
    CHECK(is_valid_utf8(printable(c.in)));
  }
}

TEST_CASE("is_valid_utf8: RFC 3629 well-formedness") {
  CHECK(is_valid_utf8("plain"));
  CHECK(is_valid_utf8("M\xc3\xbcller"));
  CHECK_FALSE(is_valid_utf8("re\xe7u"));
  CHECK_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  CHECK_FALSE(is_valid_utf8("\xe0\x80\x80"));      // overlong
}

}  // namespace holdd
