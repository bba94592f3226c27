#include "holdd/smtp/data_reader.h"

#include <doctest/doctest.h>

#include <string>

namespace holdd::smtp {
namespace {

using namespace std::literals;

struct Case {
  std::string_view wire, body;
};

// Cases for SPEC "SMTP intake" (SMTP smuggling) and RFC 5321 4.5.2.
const Case kCases[] = {
    {"a\r\n.\r\n", "a\r\n"},
    {".\r\n", ""},                                   // empty message: the first line counts
    {"..x\r\n.\r\n", ".x\r\n"},                      // dot-stuffing undone
    {"...\r\n.\r\n", "..\r\n"},
    {".x\r\n.\r\n", "x\r\n"},                        // a lone leading dot is dropped too
    {"a\n.\nb\r\n.\r\n", "a\r\n.\r\nb\r\n"},         // <LF>.<LF>: content, normalized
    {"a\r.\rb\r\n.\r\n", "a\r\n.\r\nb\r\n"},         // <CR>.<CR>: likewise
    {"a\n.\r\nb\r\n.\r\n", "a\r\n.\r\nb\r\n"},       // <LF>.<CR><LF>: content, dot kept
    {"a\r\n.\nb\r\n.\r\n", "a\r\n\r\nb\r\n"},        // <CR><LF>.<LF>: dot is stuffing
    {"a\r\n.\rb\r\n.\r\n", "a\r\n\r\nb\r\n"},        // <CR><LF>.<CR>x: likewise
    {"a\r\r\nb\r\n.\r\n", "a\r\n\r\nb\r\n"},         // bare CR before CRLF
    {"a\n\r\nb\r\n.\r\n", "a\r\n\r\nb\r\n"},
    {"a\r\n..\r\n.\r\n", "a\r\n.\r\n"},
    {"a\r\n\r\n.\r\n", "a\r\n\r\n"},
    {"x\0y\r\n.\r\n"sv, "x\0y\r\n"sv},               // NUL kept
    {"a\r\n.\r\nQUIT\r\n", "a\r\n"},                 // stops at the end marker
};

TEST_CASE("DataReader: only CRLF.CRLF ends DATA, bare CR/LF become CRLF content") {
  for (const Case& c : kCases) {
    CAPTURE(std::string(c.wire));
    DataReader reader(/*max_size=*/1024);
    reader.feed(c.wire);
    CHECK(reader.ended());
    CHECK(reader.body() == c.body);
    CHECK(reader.size() == c.body.size());
  }
}

TEST_CASE("DataReader: split at every byte boundary, and byte by byte, gives the same") {
  for (const Case& c : kCases) {
    CAPTURE(std::string(c.wire));
    for (size_t cut = 0; cut <= c.wire.size(); ++cut) {
      CAPTURE(cut);
      DataReader reader(1024);
      size_t used = reader.feed(c.wire.substr(0, cut));
      if (!reader.ended()) used += reader.feed(c.wire.substr(used));
      CHECK(reader.ended());
      CHECK(reader.body() == c.body);
    }
    DataReader bytewise(1024);
    size_t used = 0;
    while (used < c.wire.size() && !bytewise.ended()) {
      used += bytewise.feed(c.wire.substr(used, 1));
    }
    CHECK(bytewise.ended());
    CHECK(bytewise.body() == c.body);
  }
}

TEST_CASE("DataReader: feed returns what it used, the rest is left for commands") {
  DataReader reader(1024);
  const std::string_view wire = "hello\r\n.\r\nQUIT\r\n";
  const size_t used = reader.feed(wire);
  CHECK(reader.ended());
  CHECK(wire.substr(used) == "QUIT\r\n");
}

TEST_CASE("DataReader: no end marker means not ended") {
  const std::string_view unfinished[] = {"a\n.\n", "a\r.\r", "a\n.\r\n", "a\r\n.", "a\r\n.\r",
                                         "a\r\n. \r\n", "a\r\n.\n\r\n"};
  for (std::string_view wire : unfinished) {
    CAPTURE(std::string(wire));
    DataReader reader(1024);
    CHECK(reader.feed(wire) == wire.size());
    CHECK(!reader.ended());
  }
}

TEST_CASE("DataReader: over max_size it stops storing but reads to the end") {
  DataReader reader(/*max_size=*/10);
  const std::string wire = std::string(100, 'x') + "\r\n.\r\nNOOP\r\n";
  const size_t used = reader.feed(wire);
  CHECK(reader.ended());
  CHECK(reader.too_big());
  CHECK(reader.size() == 102);
  CHECK(reader.body().size() == 10);
  CHECK(wire.substr(used) == "NOOP\r\n");

  DataReader exact(4);
  exact.feed("abc\n.\r\n");  // "abc\r\n" is 5 > 4
  CHECK(exact.too_big());
  DataReader fits(5);
  fits.feed("abc\r\n.\r\n");
  CHECK(!fits.too_big());
}

TEST_CASE("DataReader: notes 8-bit content") {
  DataReader seven(1024);
  seven.feed("plain\r\n.\r\n");
  CHECK(!seven.eight_bit());
  DataReader eight(1024);
  eight.feed("J\xC3\xB6rg\r\n.\r\n");
  CHECK(eight.eight_bit());
}

}  // namespace
}  // namespace holdd::smtp
