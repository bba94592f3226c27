#pragma once
// The header fields of a message (RFC 5322 section 2.2), found without copying:
// the block ends at the first empty line (or at the end of the message when
// there is no body). A field is its first line plus the continuation lines that
// start with a space or a tab. Lines end in CRLF; a bare LF is tolerated.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "holdd/base/ascii.h"

namespace holdd::auth {

struct HeaderField {
  std::string_view name;   // before the colon, trailing whitespace removed
  std::string_view value;  // after the colon, folded lines and final CRLF included
  std::size_t begin = 0;   // offset of the field's first byte in the message
  std::size_t end = 0;     // offset just after its last line's line break
};

// Every field of the header block, in order. A line without a colon that is not
// a continuation line ends the header block (it is body, not header).
std::vector<HeaderField> header_fields(std::string_view message);

// `value` unfolded (CRLF before whitespace removed) and trimmed at both ends.
std::string unfold(std::string_view value);

// Header names, domains and authserv-ids compare ASCII case-insensitively.
using holdd::iequals;
inline std::string to_lower(std::string_view s) { return to_lower_ascii(s); }

}  // namespace holdd::auth
