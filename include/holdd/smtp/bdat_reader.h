#pragma once
// BdatReader collects the content of a BDAT transaction (RFC 3030 CHUNKING):
// chunk octets are taken exactly as counted (no dot handling, no end marker),
// but bare CR and bare LF become CRLF as in DATA (SPEC: stored content is CRLF
// lines only), also when a CR ends one chunk and its LF starts the next.
// Beyond max_size it stops storing and remembers it was too big.
#include <cstdint>
#include <string>
#include <string_view>

namespace holdd::smtp {

class BdatReader {
 public:
  explicit BdatReader(uint64_t max_size);

  // Octets of a chunk, in pieces of any size.
  void feed(std::string_view octets);
  // After the LAST chunk: a pending CR becomes CRLF, and content that does not
  // end with CRLF gets one (so it relays as CRLF lines).
  void finish();

  bool too_big() const { return size_ > max_size_; }
  uint64_t size() const { return size_; }
  bool eight_bit() const { return eight_bit_; }
  const std::string& body() const { return body_; }
  std::string take_body() { return std::move(body_); }

 private:
  void emit(const char* p, size_t n);

  uint64_t max_size_;
  uint64_t size_ = 0;
  std::string body_;
  bool pending_cr_ = false;
  bool last_was_lf_ = true;  // the content so far ends with CRLF (or is empty)
  bool eight_bit_ = false;
};

}  // namespace holdd::smtp
