#pragma once
// A MessageBuffer holds one message's content in RAM while it arrives (decoded
// DATA or BDAT content), under the MessageMemoryBudget: each block of memory is
// reserved before it is allocated. When the budget cannot cover a block, the
// buffer is refused(): it frees what it held, gives the memory back at once (so
// that other messages can go on) and ignores whatever is appended later.
//
// Why blocks: a std::string growing by doubling holds up to twice its content,
// and three times while it reallocates. Blocks hold the content plus at most one
// partly filled block, and never move it while it arrives.
//
// What is charged: kPeakCopies bytes for each byte of block capacity, because
// the content is held twice at its peak after its last byte arrived: take()
// copies the blocks into one string (blocks and string), then Spool::put()
// copies that string into LMDB's dirty pages until its commit (string and
// LMDB's copy). Charging the peak from the first byte means that a complete
// message never needs more memory to be stored, so no session waits holding
// content for memory that other such sessions hold.
//
// Use from one coroutine at a time. Move-only.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "holdd/config/config.h"  // kMessageCopiesInMemory
#include "holdd/smtp/memory_budget.h"

namespace holdd::smtp {

class MessageBuffer {
 public:
  static constexpr uint64_t kPeakCopies = kMessageCopiesInMemory;

  // Tied to no budget: grows without limit.
  MessageBuffer() = default;
  // Content beyond `max_size` is never appended (the readers stop storing
  // there), so no block is made larger than what may still come.
  MessageBuffer(MessageMemoryBudget::Reservation reservation, uint64_t max_size);
  MessageBuffer(MessageBuffer&&) noexcept = default;
  MessageBuffer& operator=(MessageBuffer&&) noexcept = default;

  // Makes sure the budget covers n more bytes of content before they arrive,
  // without allocating them: the session asks before its 354 (and before each
  // BDAT chunk), so that a client is refused before it uploads, not after.
  // False when the budget cannot cover them (the buffer is not refused for it).
  bool reserve(uint64_t n);
  // Appends n bytes; false when the budget could not cover them: the buffer is
  // then refused() and empty. REQUIRES: size() + n <= max_size.
  bool append(const char* p, size_t n);
  bool refused() const { return refused_; }
  uint64_t size() const { return size_; }
  // What the reservation holds (charged bytes, not content bytes).
  uint64_t charged() const { return reservation_.bytes(); }

  // The content as one string with at least `headroom` spare capacity (holdd's
  // headers are then prepended in place), the blocks freed as they are copied.
  // The reservation then covers that string and the copy Spool::put() makes of
  // it: keep it (take_reservation()) until put() completed. nullopt when the
  // budget cannot cover the headroom. REQUIRES: !refused().
  std::optional<std::string> take(size_t headroom);
  MessageMemoryBudget::Reservation take_reservation() { return std::move(reservation_); }

  // A copy of the content (tests and tools).
  std::string str() const;

 private:
  // Frees a block the way it was allocated (message_buffer.cpp: large ones are
  // mapped directly, so that their pages go back to the kernel when freed).
  struct BlockFree {
    size_t capacity = 0;
    void operator()(char* p) const;
  };
  struct Block {
    std::unique_ptr<char, BlockFree> data;  // uninitialized: no page is touched before it is written
    size_t capacity = 0;
    size_t used = 0;
  };
  bool add_block();
  // Makes the reservation at least `charge` bytes.
  bool charge(uint64_t charge);
  void refuse();

  MessageMemoryBudget::Reservation reservation_;
  uint64_t max_size_ = std::numeric_limits<uint64_t>::max();
  std::vector<Block> blocks_;
  uint64_t capacity_ = 0;  // of all blocks
  uint64_t size_ = 0;
  bool refused_ = false;
};

}  // namespace holdd::smtp
