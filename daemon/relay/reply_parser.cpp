#include "holdd/relay/reply_parser.h"

#include <utility>

namespace holdd {

std::string SmtpReply::to_string() const {
  std::string out = std::to_string(code);
  for (const std::string& line : lines) {
    if (!line.empty()) {
      out += ' ';
      out += line;
    }
  }
  return out;
}

ReplyParser::State ReplyParser::feed(std::string_view line) {
  if (state_ != State::kNeedMore) return state_;
  if (line.size() > kMaxLineLength) return fail("reply line longer than 4096 bytes");
  if (reply_.lines.size() >= kMaxLines) return fail("reply longer than 100 lines");
  // "250" alone is tolerated (RFC 5321 4.2: the text is optional); otherwise the
  // fourth character must be the separator.
  if (line.size() < 3) return fail("reply line too short");
  for (int i = 0; i < 3; ++i) {
    if (line[i] < '0' || line[i] > '9') return fail("reply code is not 3 digits");
  }
  const int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
  if (code < 200 || code > 599) return fail("reply code outside 2xx-5xx");
  if (line.size() > 3 && line[3] != ' ' && line[3] != '-') {
    return fail("no space or dash after the reply code");
  }
  if (reply_.code != 0 && code != reply_.code) {
    return fail("reply lines with different codes");
  }
  reply_.code = code;
  // The text goes into logs, holdctl output and metrics labels: a control
  // character (a bare CR the line reader left in, NUL, ESC) becomes '?', so an
  // upstream cannot forge log lines or terminal output. Not garbage: a 250 with
  // odd text is still a 250 (deferring it would deliver the message twice).
  std::string& text = reply_.lines.emplace_back(line.size() > 4 ? line.substr(4) : std::string_view{});
  for (char& c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) c = '?';
  }
  const bool last = line.size() == 3 || line[3] == ' ';
  if (last) state_ = State::kComplete;
  return state_;
}

SmtpReply ReplyParser::take() { return std::exchange(reply_, SmtpReply{}); }

void ReplyParser::reset() {
  reply_ = SmtpReply{};
  state_ = State::kNeedMore;
  error_.clear();
}

ReplyParser::State ReplyParser::fail(std::string why) {
  error_ = std::move(why);
  state_ = State::kGarbage;
  return state_;
}

}  // namespace holdd
