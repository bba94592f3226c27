#include "holdd/relay/dot_stuffer.h"

#include <doctest/doctest.h>

#include <string>
#include <string_view>

namespace holdd {
namespace {

TEST_CASE("DotStuffer: lines starting with a dot get another, and the end is CRLF.CRLF") {
  struct Case {
    std::string_view content, wire;
  };
  const Case cases[] = {
      {"", ".\r\n"},                                      // empty message: the end line only
      {"a\r\n", "a\r\n.\r\n"},
      {".\r\n", "..\r\n.\r\n"},                           // a lone dot is not the end
      {"..x\r\n", "...x\r\n.\r\n"},
      {"a\r\n.b\r\nc.\r\n", "a\r\n..b\r\nc.\r\n.\r\n"},  // only at line start
      {"a\r\n.", "a\r\n..\r\n.\r\n"},                     // last line without CRLF
      {"abc", "abc\r\n.\r\n"},                            // CRLF added before the end line
      {"a\n.\r\n", "a\n..\r\n.\r\n"},                     // bare LF: stuffed, never an end
  };
  for (const Case& c : cases) {
    CAPTURE(std::string(c.content));
    CHECK(DotStuffer::stuff(c.content) == c.wire);
  }
}

TEST_CASE("DotStuffer: small chunks give the same bytes as one piece") {
  const std::string content = ".a\r\n..\r\nline\r\n.\r\n" + std::string(100, 'x') + "\r\n.z";
  const std::string whole = DotStuffer::stuff(content);
  for (std::size_t max : {1u, 2u, 3u, 7u, 64u}) {
    CAPTURE(max);
    DotStuffer stuffer(content);
    std::string out, chunk;
    int chunks = 0;
    while (true) {
      chunk.clear();
      if (!stuffer.next(chunk, max)) break;
      CHECK(chunk.size() <= max + 6);  // a stuffed dot and the end line may ride along
      out += chunk;
      ++chunks;
    }
    CHECK(out == whole);
    CHECK(chunks > 1);
  }
}

}  // namespace
}  // namespace holdd
