#pragma once
// The header section of a message (RFC 5322 2.1, 2.2), found without copying. The
// one parser of it in holdd: the SMTP session counts Received: and looks for
// Message-ID: with it, the auth checks find From: and our own
// Authentication-Results: with it, so they never disagree on where the header
// ends (two parsers that do are how smuggling-type bugs start).
//
// The section is the run of fields at the start of the message. A field is a line
// "name:value" whose name is RFC 5322 ftext (printable US-ASCII but ':', so no
// space, control or 8-bit byte; white space before the colon is allowed, RFC 5322
// 4.5), plus the continuation lines after it that begin with a space or a tab. The
// section ends at the first empty line (the body follows it), at the first line
// that is neither a field nor a continuation (that line is the body's first), or
// at the end of the message (no body).
//
// Lines end in CRLF. A bare LF ends a line too, so LF-only text parses as its
// CRLF-normalized form would; a bare CR does not end a line. (Content from SMTP
// has neither: DataReader and BdatReader store both as CRLF.)
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace holdd {

struct HeaderField {
  std::string_view name;   // before the colon, white space before the colon removed
  std::string_view value;  // after the colon: folded lines and the final line break included
  std::size_t begin = 0;   // offset of the field's first byte in the message
  std::size_t end = 0;     // offset just after its last line's line break (or the end)
};

struct HeaderSection {
  std::vector<HeaderField> fields;  // in order
  // Offset of the body's first byte: just after the empty line that ends the
  // section, at the line that is not a field, or the message's size (no body).
  std::size_t body = 0;
};

// Views into `message`: they live as long as it does.
HeaderSection parse_header_section(std::string_view message);

// RFC 5322 3.6.8 field name: one or more printable US-ASCII characters but ':'.
bool is_field_name(std::string_view name);

// `value` unfolded (every CR and LF removed) and trimmed of spaces and tabs at
// both ends.
std::string unfold(std::string_view value);

}  // namespace holdd
