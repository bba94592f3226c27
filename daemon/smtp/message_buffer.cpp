#include "holdd/smtp/message_buffer.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>

namespace holdd::smtp {
namespace {

// Blocks double the capacity (4 KiB, 4, 8, 16 KiB...) up to 1 MiB each: a
// short message takes a few KiB, a long one wastes at most one block, and a
// 50 MiB message is some fifty allocations.
constexpr uint64_t kMinBlock = 4 * 1024;
constexpr uint64_t kMaxBlock = 1024 * 1024;

// Blocks from this size on are mapped directly (mmap), not taken from malloc's
// heap: freeing one gives its pages back to the kernel at once, so resident
// memory follows the budget (which counts a freed block as gone). malloc itself
// maps only from 4 MiB on (app/daemon.cpp), so that LMDB's per-transaction
// arrays (2 MiB) are reused rather than mapped and unmapped at every write.
constexpr size_t kMappedBlock = 128 * 1024;

char* allocate_block(size_t capacity) {
  if (capacity < kMappedBlock) return new char[capacity];
  void* p = mmap(nullptr, capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return static_cast<char*>(p);
}

}  // namespace

void MessageBuffer::BlockFree::operator()(char* p) const {
  if (p == nullptr) return;
  if (capacity < kMappedBlock) {
    delete[] p;
  } else {
    munmap(p, capacity);
  }
}

MessageBuffer::MessageBuffer(MessageMemoryBudget::Reservation reservation, uint64_t max_size)
    : reservation_(std::move(reservation)), max_size_(max_size) {}

bool MessageBuffer::charge(uint64_t charge) {
  const uint64_t held = reservation_.bytes();
  return charge <= held || reservation_.grow(charge - held);
}

bool MessageBuffer::reserve(uint64_t n) {
  if (refused_) return false;
  return charge(kPeakCopies * std::max(capacity_, size_ + n));
}

bool MessageBuffer::add_block() {
  uint64_t capacity = std::clamp(capacity_, kMinBlock, kMaxBlock);
  if (max_size_ > size_) capacity = std::min(capacity, max_size_ - size_);
  if (!charge(kPeakCopies * (capacity_ + capacity))) return false;
  const auto size = static_cast<size_t>(capacity);
  blocks_.push_back(Block{std::unique_ptr<char, BlockFree>(allocate_block(size), BlockFree{size}), size, 0});
  capacity_ += capacity;
  return true;
}

bool MessageBuffer::append(const char* p, size_t n) {
  if (refused_) return false;
  while (n > 0) {
    if (blocks_.empty() || blocks_.back().used == blocks_.back().capacity) {
      if (!add_block()) {
        refuse();
        return false;
      }
    }
    Block& b = blocks_.back();
    const size_t k = std::min(n, b.capacity - b.used);
    std::memcpy(b.data.get() + b.used, p, k);
    b.used += k;
    size_ += k;
    p += k;
    n -= k;
  }
  return true;
}

void MessageBuffer::refuse() {
  refused_ = true;
  blocks_.clear();
  blocks_.shrink_to_fit();
  capacity_ = 0;
  size_ = 0;
  reservation_.release();
}

std::optional<std::string> MessageBuffer::take(size_t headroom) {
  const uint64_t whole = size_ + headroom;
  // While copying, the blocks and the string; after it, the string and the copy
  // Spool::put() makes.
  const uint64_t after = kPeakCopies * whole;
  if (!charge(std::max(capacity_ + whole, after))) return std::nullopt;
  std::string out;
  out.reserve(static_cast<size_t>(whole));
  for (Block& b : blocks_) {
    out.append(b.data.get(), b.used);
    b.data.reset();  // freed at once: the peak is the blocks not yet copied
  }
  blocks_.clear();
  capacity_ = 0;
  size_ = 0;
  if (reservation_.bytes() > after) reservation_.shrink(reservation_.bytes() - after);
  return out;
}

std::string MessageBuffer::str() const {
  std::string out;
  out.reserve(static_cast<size_t>(size_));
  for (const Block& b : blocks_) out.append(b.data.get(), b.used);
  return out;
}

}  // namespace holdd::smtp
