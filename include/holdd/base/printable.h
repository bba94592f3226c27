#pragma once
// Bytes from the network shown to people. SMTP text is bytes: an old Exchange
// answers "250 2.0.0 Message re\xE7u" in Latin-1, a client says EHLO with an 8-bit
// name. holdd stores such text as it came (spool records are binary-safe) and
// escapes it only where it is shown: logs, holdctl, the control protocol's JSON,
// metrics. SPEC "SMTP intake": 8-bit text is data, never a reason to fail.
#include <cstddef>
#include <string>
#include <string_view>

namespace holdd {

// Length of the well-formed UTF-8 sequence (RFC 3629: no overlongs, no surrogates,
// nothing above U+10FFFF) that starts at s[i], or 0 if none starts there.
size_t utf8_sequence_length(std::string_view s, size_t i);
bool is_valid_utf8(std::string_view s);

// `s` as valid UTF-8 without control characters: well-formed UTF-8 and printable
// ASCII stay as they are; every other byte (invalid UTF-8, C0 controls, DEL)
// becomes "\xNN" (upper-case hex). A literal backslash stays a backslash, so the
// result is for reading, not for decoding back.
std::string printable(std::string_view s);

}  // namespace holdd
