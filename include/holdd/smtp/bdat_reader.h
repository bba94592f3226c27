#pragma once
// BdatReader collects the content of a BDAT transaction (RFC 3030 CHUNKING):
// chunk octets are taken exactly as counted (no dot handling, no end marker),
// but bare CR and bare LF become CRLF as in DATA (SPEC: stored content is CRLF
// lines only), also when a CR ends one chunk and its LF starts the next.
// Beyond max_size it stops storing and remembers it was too big; when the
// memory budget refuses more content, it stops storing (out_of_memory()).
// The content is kept in a MessageBuffer: bounded by max_size and the budget.
#include <cstdint>
#include <string>
#include <string_view>

#include "holdd/smtp/memory_budget.h"
#include "holdd/smtp/message_buffer.h"

namespace holdd::smtp {

class BdatReader {
 public:
  // Without a reservation from a budget, memory is bounded by max_size only.
  explicit BdatReader(uint64_t max_size, MessageMemoryBudget::Reservation reservation = {});

  // Octets of a chunk, in pieces of any size.
  void feed(std::string_view octets);
  // After the LAST chunk: a pending CR becomes CRLF, and content that does not
  // end with CRLF gets one (so it relays as CRLF lines).
  void finish();

  bool too_big() const { return size_ > max_size_; }
  uint64_t size() const { return size_; }
  bool eight_bit() const { return eight_bit_; }
  // The budget refused to hold more: the content is gone, octets are still counted.
  bool out_of_memory() const { return body_.refused(); }
  std::string body() const { return body_.str(); }  // a copy (tests)
  MessageBuffer& content() { return body_; }
  MessageBuffer take_content() { return std::move(body_); }

 private:
  void emit(const char* p, size_t n);

  uint64_t max_size_;
  uint64_t size_ = 0;
  MessageBuffer body_;
  bool pending_cr_ = false;
  bool last_was_lf_ = true;  // the content so far ends with CRLF (or is empty)
  bool eight_bit_ = false;
};

}  // namespace holdd::smtp
