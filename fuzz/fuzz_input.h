#pragma once
// FuzzInput hands a libFuzzer input out in pieces: flags, split points and the
// rest as text. Deterministic, so a crashing input replays the same way.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace holdd::fuzz {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size)
      : s_(reinterpret_cast<const char*>(data), size) {}

  // One byte from the front (0 when empty).
  uint8_t take_byte() {
    if (s_.empty()) return 0;
    uint8_t b = static_cast<uint8_t>(s_.front());
    s_.remove_prefix(1);
    return b;
  }
  // Up to `n` bytes from the front.
  std::string_view take(size_t n) {
    n = std::min(n, s_.size());
    std::string_view out = s_.substr(0, n);
    s_.remove_prefix(n);
    return out;
  }
  // Everything up to the first `sep` (dropped) or the end.
  std::string_view take_until(char sep) {
    size_t at = s_.find(sep);
    std::string_view out = s_.substr(0, at);
    s_.remove_prefix(at == std::string_view::npos ? s_.size() : at + 1);
    return out;
  }
  std::string_view rest() const { return s_; }

 private:
  std::string_view s_;
};

// Piece sizes (1..max_piece) derived from `seed` bytes, covering `total` bytes:
// the same content fed in these pieces must decode like in one piece.
inline std::vector<size_t> split_points(std::string_view seed, size_t total, size_t max_piece = 16) {
  std::vector<size_t> pieces;
  size_t used = 0, i = 0;
  while (used < total) {
    size_t n = seed.empty() ? 1 : 1 + static_cast<uint8_t>(seed[i++ % seed.size()]) % max_piece;
    n = std::min(n, total - used);
    pieces.push_back(n);
    used += n;
  }
  return pieces;
}

// A broken property: print what is needed to understand it, then abort so that
// libFuzzer records the input as a crash.
[[noreturn]] inline void property_failed(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "PROPERTY FAILED: %s\n", what);
  if (!detail.empty()) {
    std::fprintf(stderr, "detail (%zu bytes): ", detail.size());
    for (unsigned char c : detail.substr(0, 512)) {
      if (c >= 32 && c < 127 && c != '\\') std::fputc(c, stderr);
      else std::fprintf(stderr, "\\x%02x", c);
    }
    std::fputc('\n', stderr);
  }
  std::abort();
}

#define FUZZ_CHECK(cond, detail) \
  do { if (!(cond)) ::holdd::fuzz::property_failed(#cond, (detail)); } while (0)

// True if every CR and LF in `s` belongs to a CRLF pair.
inline bool crlf_only(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      if (i + 1 >= s.size() || s[i + 1] != '\n') return false;
      ++i;
    } else if (s[i] == '\n') {
      return false;
    }
  }
  return true;
}

}  // namespace holdd::fuzz
