// The LMDB key layouts of keys.h: queue keys and big-endian integers.
#include "holdd/spool/keys.h"

namespace holdd::keys {

std::string u64_be(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

uint64_t read_u64_be(std::string_view bytes) {
  if (bytes.size() != 8) return 0;
  uint64_t v = 0;
  for (char c : bytes) v = (v << 8) | static_cast<unsigned char>(c);
  return v;
}

std::string queue_prefix(std::string_view mailbox) {
  std::string key(mailbox);
  key.push_back('\0');
  return key;
}

std::string queue_key(std::string_view mailbox, uint64_t seq) {
  return queue_prefix(mailbox) + u64_be(seq);
}

bool parse_queue_key(std::string_view key, std::string_view& mailbox, uint64_t& seq) {
  if (key.size() < 10 || key[key.size() - 9] != '\0') return false;
  mailbox = key.substr(0, key.size() - 9);
  seq = read_u64_be(key.substr(key.size() - 8));
  return true;
}

}  // namespace holdd::keys
