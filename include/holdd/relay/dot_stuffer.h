#pragma once
// A DotStuffer turns stored content into the DATA wire form (RFC 5321 4.5.2): a
// '.' is added before every line that starts with '.', the content is made to end
// with CRLF, and the end-of-data line ".\r\n" follows. It hands the result out in
// bounded chunks, so a 50 MiB message is never copied whole and every chunk's
// write can get its own timeout. The content must outlive the DotStuffer.
#include <cstddef>
#include <string>
#include <string_view>

namespace holdd {

class DotStuffer {
 public:
  explicit DotStuffer(std::string_view content) : content_(content) {}

  // Appends the next part of the wire form to `out`, about `max_bytes` at most
  // (a few bytes more at the end). Returns false once everything, including the
  // final ".\r\n", was handed out.
  bool next(std::string& out, std::size_t max_bytes);
  // The whole wire form at once (tests, small messages).
  static std::string stuff(std::string_view content);

 private:
  std::string_view content_;
  std::size_t pos_ = 0;
  // A line starts at the beginning and after every LF. Stored content has CRLF
  // lines only; counting a bare LF as a line end too means a malformed "\n.\r\n"
  // gets stuffed rather than read as end of data by a lenient upstream.
  bool at_line_start_ = true;
  bool done_ = false;
};

}  // namespace holdd
