#include "holdd/protocol/framing.h"

#include <doctest/doctest.h>

using namespace holdd;

TEST_CASE("protocol: --file lists: one address a line, comments and blanks ignored") {
  struct Case {
    const char* text;
    std::vector<std::string> addresses;
  };
  const Case cases[] = {
      {"", {}},
      {"a@x\nb@x\n", {"a@x", "b@x"}},
      {"a@x", {"a@x"}},                                   // no final newline
      {"# batch 1\n\n  a@x  \r\n\t\nb@x # anna's\n", {"a@x", "b@x"}},
      {"a#b@x\n", {"a#b@x"}},                             // '#' inside a local part stays
      {"   # indented comment\n", {}},
  };
  for (const Case& c : cases) {
    CAPTURE(std::string(c.text));
    CHECK(protocol::parse_address_list(c.text) == c.addresses);
  }
}

TEST_CASE("protocol: a request or response is one JSON object on one line") {
  std::string line = protocol::encode_line(protocol::make_request("lock", {{"mailboxes", {"a@x", "b\nc@x"}}}));
  CHECK(line.back() == '\n');
  CHECK(line.find('\n') == line.size() - 1);  // a newline inside a value is escaped
  std::optional<protocol::json> back = protocol::decode_line(line);
  REQUIRE(back);
  CHECK((*back)["command"] == "lock");
  CHECK((*back)["args"]["mailboxes"][1] == "b\nc@x");

  CHECK_FALSE(protocol::decode_line("not json"));
  CHECK_FALSE(protocol::decode_line("[1,2]"));  // an object, not any JSON value
  CHECK(protocol::decode_line("{\"ok\":true}\r\n"));
}

TEST_CASE("protocol: invalid UTF-8 from the network does not break a response") {
  protocol::json r = protocol::ok_response({{"sender", std::string("bad\xff@x")}});
  std::string line;
  CHECK_NOTHROW(line = protocol::encode_line(r));
  CHECK(protocol::decode_line(line));
  CHECK(protocol::error_response("no")["ok"] == false);
}
