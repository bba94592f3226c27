#include "holdd/net/line_reader.h"

#include <cstring>

namespace holdd {

LineReader::LineReader(size_t max_line, LineEnd end) : max_line_(max_line), end_(end) {}

void LineReader::consume(size_t n) {
  begin_ += n;
  scanned_ = scanned_ > n ? scanned_ - n : 0;
  if (begin_ == filled_) {
    begin_ = 0;
    filled_ = 0;
  }
}

std::span<char> LineReader::prepare(size_t n) {
  // Compact first, so the buffer stays bounded by what is unconsumed.
  if (begin_ > 0 && begin_ >= filled_ / 2) {
    std::memmove(buf_.data(), buf_.data() + begin_, filled_ - begin_);
    filled_ -= begin_;
    begin_ = 0;
  }
  committed_ = filled_;
  // resize() zero-fills what it adds: only when the storage grows.
  if (buf_.size() < filled_ + n) buf_.resize(filled_ + n);
  return {buf_.data() + committed_, n};
}

void LineReader::commit(size_t n) { filled_ = committed_ + n; }

void LineReader::append(std::string_view bytes) {
  std::span<char> room = prepare(bytes.size());
  if (!bytes.empty()) std::memcpy(room.data(), bytes.data(), bytes.size());
  commit(bytes.size());
}

void LineReader::release() {
  if (begin_ != filled_ || discarding_) return;
  std::string().swap(buf_);
  begin_ = 0;
  filled_ = 0;
  scanned_ = 0;
}

void LineReader::clear() {
  begin_ = 0;
  filled_ = 0;
  scanned_ = 0;
  discarding_ = false;
}

std::optional<CommandLine> LineReader::next_line() {
  std::string_view in = buffered();
  size_t eol = std::string_view::npos;  // where the line end starts
  size_t eol_size = 0;
  if (end_ == LineEnd::kCrlf) {
    // Resume the search one byte back: a CR may have ended the previous read.
    eol = in.find("\r\n", scanned_ > 0 ? scanned_ - 1 : 0);
    eol_size = 2;
  } else {
    eol_size = 1;
    eol = in.find('\n', scanned_);
    if (eol != std::string_view::npos && eol > 0 && in[eol - 1] == '\r') {
      --eol;
      eol_size = 2;
    }
  }
  if (eol == std::string_view::npos) {
    scanned_ = in.size();
    if (in.size() >= max_line_ || (discarding_ && !in.empty())) {
      // Overlong: drop what we have, but keep a trailing CR that may pair
      // with the LF of the next read.
      discarding_ = true;
      const size_t keep = in.back() == '\r' ? 1 : 0;
      consume(in.size() - keep);
      scanned_ = keep;
    }
    return std::nullopt;
  }
  CommandLine line;
  if (discarding_ || eol + eol_size > max_line_) {
    line.too_long = true;
    discarding_ = false;
  } else {
    const std::string_view text = in.substr(0, eol);
    line.text.assign(text);
    // Two memchr scans: find_first_of() tests each byte against the set.
    line.bare_newline =
        text.find('\r') != std::string_view::npos || text.find('\n') != std::string_view::npos;
  }
  consume(eol + eol_size);
  scanned_ = 0;
  return line;
}

}  // namespace holdd
