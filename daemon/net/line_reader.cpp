#include "holdd/net/line_reader.h"

#include <cstring>

namespace holdd {

LineReader::LineReader(size_t max_line, LineEnd end) : max_line_(max_line), end_(end) {}

void LineReader::consume(size_t n) {
  begin_ += n;
  scanned_ = scanned_ > n ? scanned_ - n : 0;
  if (begin_ == buf_.size()) {
    buf_.clear();
    begin_ = 0;
  }
}

std::span<char> LineReader::prepare(size_t n) {
  // Compact first, so the buffer stays bounded by what is unconsumed.
  if (begin_ > 0 && begin_ >= buf_.size() / 2) {
    buf_.erase(0, begin_);
    begin_ = 0;
  }
  committed_ = buf_.size();
  buf_.resize(committed_ + n);
  return {buf_.data() + committed_, n};
}

void LineReader::commit(size_t n) { buf_.resize(committed_ + n); }

void LineReader::append(std::string_view bytes) {
  std::span<char> room = prepare(bytes.size());
  if (!bytes.empty()) std::memcpy(room.data(), bytes.data(), bytes.size());
  commit(bytes.size());
}

void LineReader::release() {
  if (begin_ != buf_.size() || discarding_) return;
  std::string().swap(buf_);
  begin_ = 0;
  scanned_ = 0;
}

void LineReader::clear() {
  buf_.clear();
  begin_ = 0;
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
    line.text.assign(in.substr(0, eol));
    line.bare_newline = line.text.find_first_of("\r\n") != std::string::npos;
  }
  consume(eol + eol_size);
  scanned_ = 0;
  return line;
}

}  // namespace holdd
