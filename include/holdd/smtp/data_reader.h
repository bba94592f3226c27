#pragma once
// DataReader decodes DATA content as it arrives, in pieces of any size.
//
// SPEC "SMTP intake", against SMTP smuggling:
//  - The end is only <CR><LF>.<CR><LF>; the "." of the first line after the 354
//    counts as beginning a line. <LF>.<LF>, <LF>.<CR><LF>, <CR>.<CR> are content.
//  - Dot-stuffing is undone only on lines that begin after a CRLF as the client
//    sent them (RFC 5321 4.5.2: a leading "." is dropped when the line has other
//    characters). A line begun by a bare LF or CR is never unstuffed.
//  - Then each bare CR and each bare LF becomes CRLF, so the stored content is
//    CRLF lines only (Postfix smtpd_forbid_bare_newline = normalize) and no
//    upstream can see an end of DATA that holdd did not see.
// Example: "a\n.\nb\r\n.\r\n" gives "a\r\n.\r\nb\r\n" (the dot stays).
//
// NUL octets are kept as content, as Postfix does: they are not line ends and
// harmless to the relay, and refusing them would bounce legitimate mail.
//
// Beyond max_size decoded octets it stops storing (the prefix is kept, for the
// header checks) but keeps decoding to the end marker, so the session can
// answer 552 5.3.4 at the right place. Likewise when the memory budget refuses
// more content (out_of_memory(): the session answers 452 4.3.1 at the end).
// The content is kept in a MessageBuffer: bounded by max_size and the budget.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "holdd/smtp/memory_budget.h"
#include "holdd/smtp/message_buffer.h"

namespace holdd::smtp {

class DataReader {
 public:
  // Without a reservation from a budget, memory is bounded by max_size only.
  explicit DataReader(uint64_t max_size, MessageMemoryBudget::Reservation reservation = {});

  // Decodes bytes from the front of `wire`; returns how many it used. It stops
  // right after the end marker, so what follows (pipelined commands) is left.
  size_t feed(std::string_view wire);

  bool ended() const { return ended_; }
  bool too_big() const { return size_ > max_size_; }
  uint64_t size() const { return size_; }  // decoded octets, including any beyond max_size
  bool eight_bit() const { return eight_bit_; }  // an octet > 127 was seen
  // The budget refused to hold more: the content is gone, decoding goes on.
  bool out_of_memory() const { return body_.refused(); }
  std::string body() const { return body_.str(); }  // a copy (tests)
  MessageBuffer& content() { return body_; }
  MessageBuffer take_content() { return std::move(body_); }

 private:
  enum class State {
    kLineStart,  // after a CRLF as sent (or at the start): "." is special
    kText,
    kCr,         // a CR not yet known to be part of a CRLF
    kDot,        // "." at a line start
    kDotCr,      // CRLF "." CR: one LF from the end
  };
  void emit(const char* p, size_t n);

  uint64_t max_size_;
  uint64_t size_ = 0;
  MessageBuffer body_;
  State state_ = State::kLineStart;
  bool ended_ = false;
  bool eight_bit_ = false;
};

}  // namespace holdd::smtp
