#include "holdd/smtp/data_reader.h"

#include <algorithm>

namespace holdd::smtp {
namespace {

constexpr char kCrlf[] = "\r\n";

// The first CR or LF in [p, end), or end.
const char* find_line_break(const char* p, const char* end) {
  for (; p != end; ++p) {
    if (*p == '\r' || *p == '\n') return p;
  }
  return end;
}

}  // namespace

DataReader::DataReader(uint64_t max_size) : max_size_(max_size) {}

void DataReader::emit(const char* p, size_t n) {
  if (n == 0) return;
  if (!eight_bit_) {
    eight_bit_ = std::any_of(p, p + n, [](char c) { return static_cast<unsigned char>(c) > 127; });
  }
  if (size_ < max_size_) {
    const uint64_t room = max_size_ - size_;
    body_.append(p, static_cast<size_t>(std::min<uint64_t>(room, n)));
  }
  size_ += n;
}

size_t DataReader::feed(std::string_view wire) {
  const char* const begin = wire.data();
  const char* const end = begin + wire.size();
  const char* p = begin;
  while (p != end && !ended_) {
    switch (state_) {
      case State::kText: {
        const char* brk = find_line_break(p, end);
        emit(p, static_cast<size_t>(brk - p));
        p = brk;
        if (p == end) break;
        if (*p == '\r') {
          state_ = State::kCr;
        } else {
          emit(kCrlf, 2);  // bare LF: content, and it does not begin a line
        }
        ++p;
        break;
      }
      case State::kCr:
        emit(kCrlf, 2);
        if (*p == '\n') {
          ++p;
          state_ = State::kLineStart;
        } else {
          state_ = State::kText;  // bare CR; *p is looked at again as text
        }
        break;
      case State::kLineStart:
        if (*p == '.') {
          ++p;
          state_ = State::kDot;
        } else {
          state_ = State::kText;
        }
        break;
      case State::kDot:
        if (*p == '\r') {
          ++p;
          state_ = State::kDotCr;
        } else {
          state_ = State::kText;  // dot-stuffing: the leading dot is dropped
        }
        break;
      case State::kDotCr:
        if (*p == '\n') {
          ++p;
          ended_ = true;
        } else {
          // ".<CR>x": the dot is stuffing, the CR is bare.
          emit(kCrlf, 2);
          state_ = State::kText;
        }
        break;
    }
  }
  return static_cast<size_t>(p - begin);
}

}  // namespace holdd::smtp
