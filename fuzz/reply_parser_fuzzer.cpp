// ReplyParser: what an untrusted upstream sends, line by line. Any bytes give
// complete replies with a 2xx-5xx code and bounded lines, or "garbage"; the
// parser never accepts more than kMaxLines lines or kMaxLineLength octets.
// Input: the upstream's bytes; lines end at LF (a trailing CR is stripped).
#include <string>
#include <string_view>

#include "fuzz_input.h"
#include "holdd/relay/reply_parser.h"

using namespace holdd;
using namespace holdd::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  ReplyParser parser;
  size_t lines_fed = 0;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    ++lines_fed;
    switch (parser.feed(line)) {
      case ReplyParser::State::kNeedMore:
        FUZZ_CHECK(lines_fed <= ReplyParser::kMaxLines, line);  // line 101 is garbage
        break;
      case ReplyParser::State::kComplete: {
        SmtpReply reply = parser.take();
        FUZZ_CHECK(reply.code >= 200 && reply.code <= 599, line);
        FUZZ_CHECK(!reply.lines.empty() && reply.lines.size() <= ReplyParser::kMaxLines, line);
        for (const std::string& l : reply.lines) {
          FUZZ_CHECK(l.size() <= ReplyParser::kMaxLineLength, l);
          FUZZ_CHECK(l.find_first_of("\r\n") == std::string::npos, l);
        }
        const std::string text = reply.to_string();
        FUZZ_CHECK(text.find_first_of("\r\n") == std::string::npos, text);
        parser.reset();
        lines_fed = 0;
        break;
      }
      case ReplyParser::State::kGarbage:
        FUZZ_CHECK(!parser.error().empty(), line);
        parser.reset();
        lines_fed = 0;
        break;
    }
  }
  return 0;
}
