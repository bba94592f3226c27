#include "holdd/smtp/data_reader.h"

#include <algorithm>
#include <cstring>
#include <utility>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace holdd::smtp {
namespace {

constexpr char kCrlf[] = "\r\n";

// The first CR or LF in [p, end), or end. With SSE2 (every x86-64) 16 bytes a
// step: mail lines are ~80 bytes, and this search is most of DATA's CPU.
const char* find_line_break(const char* p, const char* end) {
#if defined(__SSE2__)
  const __m128i cr = _mm_set1_epi8('\r');
  const __m128i lf = _mm_set1_epi8('\n');
  while (end - p >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const int mask = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)));
    if (mask != 0) return p + __builtin_ctz(static_cast<unsigned>(mask));
    p += 16;
  }
#endif
  for (; p != end; ++p) {
    if (*p == '\r' || *p == '\n') return p;
  }
  return end;
}

// Whether any octet of [p, p + n) is > 127: an OR of 8 bytes at a time.
bool has_eight_bit(const char* p, size_t n) {
  uint64_t acc = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t word;
    std::memcpy(&word, p + i, 8);
    acc |= word;
  }
  for (; i < n; ++i) acc |= static_cast<unsigned char>(p[i]);
  return (acc & 0x8080808080808080ull) != 0;
}

}  // namespace

DataReader::DataReader(uint64_t max_size, MessageMemoryBudget::Reservation reservation)
    : max_size_(max_size), body_(std::move(reservation), max_size) {}

void DataReader::emit(const char* p, size_t n) {
  if (n == 0) return;
  if (!eight_bit_) eight_bit_ = has_eight_bit(p, n);
  if (size_ < max_size_ && !body_.refused()) {
    const uint64_t room = max_size_ - size_;
    // Refused: the buffer gave its memory back; the rest is only decoded.
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
        // Ordinary lines (ended by CRLF, the next one not beginning with ".")
        // pass through unchanged, so a run of them is emitted at once; the state
        // machine below only sees a CR or LF that may need work.
        const char* brk = find_line_break(p, end);
        while (end - brk >= 3 && brk[0] == '\r' && brk[1] == '\n' && brk[2] != '.') {
          brk = find_line_break(brk + 2, end);
        }
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
