#pragma once
// LMDB key layouts. A queue key is mailbox + '\0' + big-endian u64 seq, so a cursor
// positioned at mailbox + '\0' (MDB_SET_RANGE) walks that mailbox's entries in
// arrival order, and the mailboxes in byte order after it.
#include <cstdint>
#include <string>
#include <string_view>

namespace holdd::keys {

std::string queue_key(std::string_view mailbox, uint64_t seq);
std::string queue_prefix(std::string_view mailbox);  // mailbox + '\0'
// Splits a queue key; false when it is not one.
bool parse_queue_key(std::string_view key, std::string_view& mailbox, uint64_t& seq);
std::string u64_be(uint64_t v);
uint64_t read_u64_be(std::string_view bytes);  // 0 unless exactly 8 bytes

}  // namespace holdd::keys
