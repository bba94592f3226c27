#pragma once
// LineReader is a connection's input buffer: bytes read from the socket wait
// here until they make a line, or until DATA/BDAT content decoders take them.
// Pure (no I/O): the reader's owner reads into prepare()/commit().
//
// Server side (commands, LineEnd::kCrlf): a command ends only at <CR><LF>
// (SPEC: a bare LF or bare CR never ends a command: otherwise a client and an
// upstream could disagree about where commands end). A line holding a bare CR
// or LF is reported (bare_newline) and the session answers 500 5.5.2. A line
// longer than max_line (CRLF included) is not buffered: its bytes are
// discarded as they arrive, and when its CRLF finally comes it is reported as
// too_long (500 5.5.2). So the buffer never holds more than max_line plus one
// socket read.
//
// Client side (an upstream's replies, LineEnd::kLf): a line ends at LF and a
// CR right before it is dropped, so a server that ends replies with a bare LF
// is still understood; what a line holds is for the reply parser to judge.
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace holdd {

struct CommandLine {
  std::string text;           // without the line end; empty when too_long
  bool too_long = false;      // longer than max_line: its content was discarded
  bool bare_newline = false;  // a CR or LF inside the line, not part of its end
};

// What ends a line: <CR><LF> only (commands), or <LF> with or without a <CR>
// before it (replies).
enum class LineEnd { kCrlf, kLf };

class LineReader {
 public:
  explicit LineReader(size_t max_line, LineEnd end = LineEnd::kCrlf);

  // Bytes received and not yet consumed.
  std::string_view buffered() const { return {buf_.data() + begin_, filled_ - begin_}; }
  size_t buffered_size() const { return filled_ - begin_; }
  void consume(size_t n);
  // Room for a read of up to n bytes; then commit() what the read returned.
  // The room is not cleared: only growing the buffer writes to new memory (a
  // read per reply line must not zero 4 KiB each time).
  std::span<char> prepare(size_t n);
  void commit(size_t n);
  void append(std::string_view bytes);
  // Drops everything buffered (e.g. after STARTTLS, CVE-2011-0411).
  void clear();
  // Frees the buffer's memory when nothing is buffered (an idle session).
  void release();

  // The next complete command line, or nullopt when more input is needed.
  std::optional<CommandLine> next_line();

 private:
  // Storage: buf_[begin_, filled_) is buffered; buf_[filled_, buf_.size()) is room
  // kept for the next prepare(), never shrunk except by release().
  std::string buf_;
  size_t begin_ = 0;       // first unconsumed byte
  size_t filled_ = 0;      // one past the last received byte
  size_t committed_ = 0;   // filled_ before prepare()
  size_t scanned_ = 0;     // bytes after begin_ already searched for a line end
  size_t max_line_;
  LineEnd end_;
  bool discarding_ = false;  // inside an overlong line
};

}  // namespace holdd
