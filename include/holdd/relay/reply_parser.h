#pragma once
// A ReplyParser assembles one SMTP/LMTP reply (RFC 5321 4.2) from the lines an
// upstream sends: "250-first", "250-second", "250 last". It is the guard between
// an untrusted peer and the relay's decisions, so it refuses anything odd (wrong
// code, mixed codes, too many or too long lines) instead of guessing: a garbage
// reply ends the connection and defers the message. No I/O here; the caller reads
// lines (without CRLF) and feeds them one at a time.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace holdd {

// One complete reply.
struct SmtpReply {
  int code = 0;                    // 200..599
  std::vector<std::string> lines;  // text after "250-" / "250 ", one per line
  int klass() const { return code / 100; }  // 2, 3, 4 or 5
  bool is_positive() const { return klass() == 2; }
  // "250 2.0.0 Ok: queued as X"; a multi-line reply is joined with spaces.
  std::string to_string() const;
};

class ReplyParser {
 public:
  // RFC 5321 4.5.3.1.5 allows 512 octets per reply line; real servers send more
  // (long EHLO lists, verbose rejections), so allow 4096 before calling it garbage.
  static constexpr std::size_t kMaxLineLength = 4096;
  // A reply longer than this is a peer that never ends its continuation lines.
  static constexpr std::size_t kMaxLines = 100;

  enum class State { kNeedMore, kComplete, kGarbage };

  // Feeds one line, without its CRLF. After kComplete, take() the reply; after
  // kGarbage, error() says why. Either way the parser must be reset() to be reused.
  State feed(std::string_view line);
  SmtpReply take();
  const std::string& error() const { return error_; }
  void reset();

 private:
  State fail(std::string why);

  SmtpReply reply_;
  State state_ = State::kNeedMore;
  std::string error_;
};

}  // namespace holdd
