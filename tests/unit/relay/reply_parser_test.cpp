#include "holdd/relay/reply_parser.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace holdd {
namespace {

// Feeds lines until the parser is done; returns the final state.
ReplyParser::State feed_all(ReplyParser& parser, const std::vector<std::string>& lines) {
  ReplyParser::State state = ReplyParser::State::kNeedMore;
  for (const std::string& line : lines) state = parser.feed(line);
  return state;
}

TEST_CASE("ReplyParser: single and multi-line replies") {
  struct Case {
    std::vector<std::string> lines;
    int code;
    std::string text;
  };
  const Case cases[] = {
      {{"250 2.0.0 Ok: queued as X"}, 250, "250 2.0.0 Ok: queued as X"},
      {{"220"}, 220, "220"},
      {{"354 End data with <CR><LF>.<CR><LF>"}, 354, "354 End data with <CR><LF>.<CR><LF>"},
      {{"550-5.1.1 user", "550 5.1.1 unknown"}, 550, "550 5.1.1 user 5.1.1 unknown"},
      {{"250-mx.test", "250-PIPELINING", "250 SIZE 100"}, 250, "250 mx.test PIPELINING SIZE 100"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    ReplyParser parser;
    REQUIRE(feed_all(parser, c.lines) == ReplyParser::State::kComplete);
    SmtpReply reply = parser.take();
    CHECK(reply.code == c.code);
    CHECK(reply.lines.size() == c.lines.size());
    CHECK(reply.to_string() == c.text);
  }
}

TEST_CASE("ReplyParser: continuation lines wait for the last line") {
  ReplyParser parser;
  CHECK(parser.feed("250-a") == ReplyParser::State::kNeedMore);
  CHECK(parser.feed("250-b") == ReplyParser::State::kNeedMore);
  CHECK(parser.feed("250 c") == ReplyParser::State::kComplete);
  CHECK(parser.take().lines == std::vector<std::string>{"a", "b", "c"});
}

TEST_CASE("ReplyParser: anything odd is garbage, never a guess") {
  const std::vector<std::vector<std::string>> cases = {
      {"hello"},                  // no code
      {"25 ok"},                  // too short a code
      {"2x0 ok"},                 // not digits
      {"199 ok"},                 // outside 2xx-5xx
      {"600 ok"},
      {"250ok"},                  // no separator
      {"250-a", "251 b"},         // mixed codes
      {std::string(4097, '2')},   // line too long
  };
  for (const auto& lines : cases) {
    CAPTURE(lines.front().substr(0, 20));
    ReplyParser parser;
    CHECK(feed_all(parser, lines) == ReplyParser::State::kGarbage);
    CHECK(!parser.error().empty());
  }
}

TEST_CASE("ReplyParser: a reply of more than 100 lines is garbage") {
  ReplyParser parser;
  ReplyParser::State state = ReplyParser::State::kNeedMore;
  for (int i = 0; i < 100 && state == ReplyParser::State::kNeedMore; ++i) {
    state = parser.feed("250-more");
  }
  CHECK(state == ReplyParser::State::kNeedMore);
  CHECK(parser.feed("250 last") == ReplyParser::State::kGarbage);
}

// Found by fuzz/reply_parser_fuzzer.cpp: a bare CR (the relay's line reader
// splits at LF and strips only a final CR) or other control characters in the
// text reached logs and holdctl output unchanged.
TEST_CASE("ReplyParser: control characters in the text become '?', the code still counts") {
  ReplyParser parser;
  REQUIRE(parser.feed(std::string("250 2.0.0 ok\rX-Forged: 1\x1b[2J\0end", 32)) ==
          ReplyParser::State::kComplete);
  SmtpReply reply = parser.take();
  CHECK(reply.code == 250);
  CHECK(reply.to_string() == "250 2.0.0 ok?X-Forged: 1?[2J?end");
  parser.reset();
  REQUIRE(parser.feed("250 tab\tkept") == ReplyParser::State::kComplete);
  CHECK(parser.take().to_string() == "250 tab\tkept");
}

}  // namespace
}  // namespace holdd
