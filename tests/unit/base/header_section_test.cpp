#include "holdd/base/header_section.h"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

namespace holdd {
namespace {

// "Name=unfolded value" for each field.
std::vector<std::string> described(const HeaderSection& section) {
  std::vector<std::string> out;
  for (const HeaderField& f : section.fields) out.push_back(std::string(f.name) + "=" + unfold(f.value));
  return out;
}

std::string lf_only(std::string_view crlf) {
  std::string out;
  for (std::size_t i = 0; i < crlf.size(); ++i) {
    if (crlf.compare(i, 2, "\r\n") != 0) out += crlf[i];
  }
  return out;
}

struct Case {
  const char* why;
  std::string message;
  std::vector<std::string> fields;  // "Name=unfolded value"
  std::string body;                 // from HeaderSection::body on
};

const Case kCases[] = {
    {"fields, the empty line, the body", "From: a\r\nTo: b\r\n\r\nbody\r\n", {"From=a", "To=b"}, "body\r\n"},
    {"no body: the empty line is the last line", "Subject: x\r\n\r\n", {"Subject=x"}, ""},
    {"no empty line: all of it is header", "Subject: x\r\nTo: y\r\n", {"Subject=x", "To=y"}, ""},
    {"the last line has no line break", "Subject: x\r\nTo: y", {"Subject=x", "To=y"}, ""},
    {"empty message", "", {}, ""},
    {"an empty first line: no header at all", "\r\nSubject: body\r\n", {}, "Subject: body\r\n"},
    {"folded fields", "Subject: a\r\n b\r\n\tc\r\nTo: d\r\n\r\nx", {"Subject=a b\tc", "To=d"}, "x"},
    {"a line of white space continues the field", "Subject: x\r\n \r\nTo: y\r\n\r\n", {"Subject=x", "To=y"}, ""},
    {"a continuation with nothing to continue is body", " folded: x\r\nSubject: y\r\n", {},
     " folded: x\r\nSubject: y\r\n"},
    {"a line with no colon ends the header and is body", "Subject: x\r\nnot a header\r\nTo: y\r\n\r\n",
     {"Subject=x"}, "not a header\r\nTo: y\r\n\r\n"},
    {"an empty name is not a field", ": x\r\nTo: y\r\n", {}, ": x\r\nTo: y\r\n"},
    {"obsolete white space before the colon", "Received : a\r\nX\t:b\r\n\r\n", {"Received=a", "X=b"}, ""},
    {"a space inside a name is not a field", "Subject: x\r\nBad Name: y\r\n\r\n", {"Subject=x"},
     "Bad Name: y\r\n\r\n"},
    {"8-bit bytes in a value are kept", "Subject: caf\xc3\xa9 \xe9\r\n\r\nb", {"Subject=caf\xc3\xa9 \xe9"}, "b"},
    {"an 8-bit byte in a name is not a field", "Subject: x\r\nX-\xe9t\xe9: y\r\nTo: z\r\n\r\n", {"Subject=x"},
     "X-\xe9t\xe9: y\r\nTo: z\r\n\r\n"},
    {"a control character in a name is not a field", "X\x01Y: z\r\n\r\n", {}, "X\x01Y: z\r\n\r\n"},
    {"empty value, colon in a value", "X-Empty:\r\nSubject: a: b\r\n\r\n", {"X-Empty=", "Subject=a: b"}, ""},
    {"a bare CR does not end a line", "Subject: x\rTo: y\r\n\r\n", {"Subject=xTo: y"}, ""},  // unfold drops the CR
    {"LF-only lines", "From: a\n b\nTo: c\n\nbody\n", {"From=a b", "To=c"}, "body\n"},
    {"an LF-only empty line after CRLF lines", "Subject: x\r\n\nbody", {"Subject=x"}, "body"},
    {"a body line that looks like a field stays body", "A: 1\r\n\r\nB: 2\r\n\r\nC: 3\r\n", {"A=1"},
     "B: 2\r\n\r\nC: 3\r\n"},
};

void check_case(const std::string& message, const std::vector<std::string>& fields, const std::string& body) {
  const HeaderSection section = parse_header_section(message);
  CHECK(described(section) == fields);
  CHECK(message.substr(section.body) == body);
  // The fields tile the header from the first byte, up to the body.
  std::size_t pos = 0;
  for (const HeaderField& f : section.fields) {
    CHECK(f.begin == pos);
    CHECK(f.end > f.begin);
    CHECK(std::string_view(message).substr(f.begin).starts_with(f.name));
    CHECK(f.value.data() + f.value.size() == message.data() + f.end);
    pos = f.end;
  }
  CHECK(pos <= section.body);
}

TEST_CASE("parse_header_section: where the header ends, and its fields") {
  for (const Case& c : kCases) {
    CAPTURE(c.why);
    CAPTURE(c.message);
    check_case(c.message, c.fields, c.body);
  }
}

TEST_CASE("parse_header_section: LF-only text parses as its CRLF form") {
  for (const Case& c : kCases) {
    if (std::string_view(c.message).find('\r') == std::string_view::npos) continue;
    if (lf_only(c.message).find('\r') != std::string::npos) continue;  // bare CR: no LF-only form
    CAPTURE(c.why);
    std::vector<std::string> fields;
    for (const std::string& f : c.fields) fields.push_back(lf_only(f));
    check_case(lf_only(c.message), fields, lf_only(c.body));
  }
}

TEST_CASE("parse_header_section: offsets and raw values") {
  const std::string m =
      "From: Anna\r\n <anna@example.com>\r\nSubject:  hi \r\nX-Empty:\r\n\r\nNot: a header\r\n";
  const HeaderSection section = parse_header_section(m);
  REQUIRE(section.fields.size() == 3);
  CHECK(section.fields[0].name == "From");
  CHECK(section.fields[0].value == " Anna\r\n <anna@example.com>\r\n");
  CHECK(unfold(section.fields[0].value) == "Anna <anna@example.com>");
  CHECK(section.fields[0].begin == 0);
  CHECK(m.substr(section.fields[0].end, 8) == "Subject:");
  CHECK(unfold(section.fields[1].value) == "hi");
  CHECK(section.fields[2].value == "\r\n");
  CHECK(section.fields[2].end == m.find("\r\n\r\n") + 2);
  CHECK(section.body == m.find("Not:"));
}

TEST_CASE("is_field_name: RFC 5322 ftext") {
  CHECK(is_field_name("Received"));
  CHECK(is_field_name("X-!#$%&'*+-/=?^_`{|}~"));
  CHECK_FALSE(is_field_name(""));
  CHECK_FALSE(is_field_name("A B"));
  CHECK_FALSE(is_field_name("A:B"));
  CHECK_FALSE(is_field_name("A\x7f"));
  CHECK_FALSE(is_field_name("caf\xc3\xa9"));
}

}  // namespace
}  // namespace holdd
