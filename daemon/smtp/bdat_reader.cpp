#include "holdd/smtp/bdat_reader.h"

#include <algorithm>
#include <utility>

namespace holdd::smtp {
namespace {
constexpr char kCrlf[] = "\r\n";
}  // namespace

BdatReader::BdatReader(uint64_t max_size, MessageMemoryBudget::Reservation reservation)
    : max_size_(max_size), body_(std::move(reservation), max_size) {}

void BdatReader::emit(const char* p, size_t n) {
  if (n == 0) return;
  if (!eight_bit_) {
    eight_bit_ = std::any_of(p, p + n, [](char c) { return static_cast<unsigned char>(c) > 127; });
  }
  if (size_ < max_size_ && !body_.refused()) {
    body_.append(p, static_cast<size_t>(std::min<uint64_t>(max_size_ - size_, n)));
  }
  size_ += n;
  last_was_lf_ = p[n - 1] == '\n';
}

void BdatReader::feed(std::string_view octets) {
  const char* p = octets.data();
  const char* const end = p + octets.size();
  while (p != end) {
    if (pending_cr_) {
      pending_cr_ = false;
      emit(kCrlf, 2);  // CRLF, or a bare CR made one
      if (*p == '\n') ++p;
      continue;
    }
    const char* brk = std::find_if(p, end, [](char c) { return c == '\r' || c == '\n'; });
    emit(p, static_cast<size_t>(brk - p));
    p = brk;
    if (p == end) break;
    if (*p == '\r') {
      pending_cr_ = true;
    } else {
      emit(kCrlf, 2);  // bare LF
    }
    ++p;
  }
}

void BdatReader::finish() {
  if (pending_cr_) {
    pending_cr_ = false;
    emit(kCrlf, 2);
  }
  if (size_ > 0 && !last_was_lf_) emit(kCrlf, 2);
}

}  // namespace holdd::smtp
