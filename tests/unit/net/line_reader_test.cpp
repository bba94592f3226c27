#include "holdd/net/line_reader.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace holdd {
namespace {

// smtp::kMaxCommandLine (SPEC: 1000 octets with the CRLF, RFC 5321 4.5.3.1.4);
// net/ sits below smtp/, so its tests do not include smtp/command.h.
constexpr size_t kMaxCommandLine = 1000;

std::vector<CommandLine> lines_of(LineReader& r) {
  std::vector<CommandLine> out;
  while (auto l = r.next_line()) out.push_back(*l);
  return out;
}

TEST_CASE("LineReader: only CRLF ends a command, bare CR or LF is reported") {
  LineReader r(kMaxCommandLine);
  r.append("EHLO a\r\nNOOP\nQUIT\r\nRSET\rX\r\nMAIL");
  auto lines = lines_of(r);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].text == "EHLO a");
  CHECK(!lines[0].bare_newline);
  CHECK(lines[1].text == "NOOP\nQUIT");
  CHECK(lines[1].bare_newline);
  CHECK(lines[2].text == "RSET\rX");
  CHECK(lines[2].bare_newline);
  CHECK(r.buffered() == "MAIL");  // incomplete: waits for more
  r.append(" FROM:<a@b>\r\n");
  lines = lines_of(r);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].text == "MAIL FROM:<a@b>");
  CHECK(r.buffered_size() == 0);
}

TEST_CASE("LineReader: CRLF split across reads") {
  LineReader r(kMaxCommandLine);
  r.append("NOOP\r");
  CHECK(!r.next_line());
  r.append("\n");
  auto l = r.next_line();
  REQUIRE(l);
  CHECK(l->text == "NOOP");
}

TEST_CASE("LineReader: 1000 octets with CRLF is fine, 1001 is too long") {
  LineReader r(kMaxCommandLine);
  const std::string ok(998, 'a');
  r.append(ok + "\r\n");
  auto l = r.next_line();
  REQUIRE(l);
  CHECK(!l->too_long);
  CHECK(l->text == ok);

  r.append(std::string(999, 'b') + "\r\nNOOP\r\n");
  l = r.next_line();
  REQUIRE(l);
  CHECK(l->too_long);
  l = r.next_line();
  REQUIRE(l);
  CHECK(l->text == "NOOP");
}

TEST_CASE("LineReader: an endless line is discarded as it arrives, not buffered") {
  LineReader r(kMaxCommandLine);
  for (int i = 0; i < 1000; ++i) {
    r.append(std::string(4096, 'x'));
    CHECK(!r.next_line());
    CHECK(r.buffered_size() <= kMaxCommandLine);
  }
  r.append("xx\r");  // the CR survives discarding, to pair with the next LF
  CHECK(!r.next_line());
  r.append("\nQUIT\r\n");
  auto l = r.next_line();
  REQUIRE(l);
  CHECK(l->too_long);
  CHECK(l->text.empty());
  l = r.next_line();
  REQUIRE(l);
  CHECK(l->text == "QUIT");
  CHECK(!l->too_long);
}

TEST_CASE("LineReader: a 999-octet line whose CR came alone is not too long") {
  LineReader r(kMaxCommandLine);
  r.append(std::string(998, 'a') + "\r");
  CHECK(!r.next_line());
  r.append("\n");
  auto l = r.next_line();
  REQUIRE(l);
  CHECK(!l->too_long);
  CHECK(l->text.size() == 998);
}

TEST_CASE("LineReader: consume leaves the rest for content decoders") {
  LineReader r(kMaxCommandLine);
  r.append("DATA\r\nbody\r\n.\r\n");
  auto l = r.next_line();
  REQUIRE(l);
  CHECK(l->text == "DATA");
  CHECK(r.buffered() == "body\r\n.\r\n");
  r.consume(4);
  CHECK(r.buffered() == "\r\n.\r\n");
}

TEST_CASE("LineReader: a reply line ends at LF, with or without the CR before it") {
  struct Case {
    std::vector<std::string> reads;  // as they arrive
    std::vector<std::string> lines;
    std::string left;  // still buffered after the last read
  };
  const Case cases[] = {
      {{"250 ok\r\n"}, {"250 ok"}, ""},
      {{"250 ok\n"}, {"250 ok"}, ""},                        // a server's bare LF
      {{"250-a\r", "\n250 b\n"}, {"250-a", "250 b"}, ""},    // CR and LF in two reads
      {{"220 x\r\r\n"}, {"220 x\r"}, ""},                   // one CR dropped, no more
      {{"250 a\rb\r\n"}, {"250 a\rb"}, ""},                 // a CR inside is the parser's
      {{"250-a\r\n250 b"}, {"250-a"}, "250 b"},              // waits for the rest
      {{std::string(5000, 'x') + "\n"}, {std::string(5000, 'x')}, ""},  // no limit here
  };
  for (const Case& c : cases) {
    CAPTURE(c.reads.front().substr(0, 20));
    LineReader r(SIZE_MAX, LineEnd::kLf);
    std::vector<std::string> got;
    for (const std::string& read : c.reads) {
      r.append(read);
      for (const CommandLine& l : lines_of(r)) {
        CHECK(!l.too_long);
        got.push_back(l.text);
      }
    }
    CHECK(got == c.lines);
    CHECK(r.buffered() == c.left);
  }
}

TEST_CASE("LineReader: the room of an earlier read that was not filled is never buffered") {
  // prepare() reuses its storage without clearing it: only commit()ted bytes count.
  LineReader r(SIZE_MAX, LineEnd::kLf);
  auto read = [&r](std::string_view bytes, size_t room) {
    std::span<char> into = r.prepare(room);
    REQUIRE(into.size() == room);
    std::copy(bytes.begin(), bytes.end(), into.begin());
    r.commit(bytes.size());
  };
  read("250-first line of a long reply\n250 o", 64);
  auto lines = lines_of(r);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].text == "250-first line of a long reply");
  CHECK(r.buffered() == "250 o");
  read("k\n", 64);  // after the 5 bytes kept, not after the 64 of room
  lines = lines_of(r);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].text == "250 ok");
  CHECK(r.buffered_size() == 0);
  read("", 64);  // a failed read commits nothing
  CHECK(r.buffered_size() == 0);
  read("220 x\n", 8);
  CHECK(r.buffered() == "220 x\n");
  r.release();  // not empty: keeps it
  CHECK(r.buffered() == "220 x\n");
  lines = lines_of(r);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].text == "220 x");
  r.release();
  read("221 bye\n", 16);
  CHECK(r.buffered() == "221 bye\n");
}

}  // namespace
}  // namespace holdd
