#include "holdd/smtp/memory_budget.h"

#include <utility>

namespace holdd::smtp {
namespace {

constexpr int64_t kLogIntervalNs = 60'000'000'000;

}  // namespace

MessageMemoryBudget::Reservation::Reservation(Reservation&& other) noexcept
    : budget_(std::exchange(other.budget_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

MessageMemoryBudget::Reservation& MessageMemoryBudget::Reservation::operator=(
    Reservation&& other) noexcept {
  if (this != &other) {
    release();
    budget_ = std::exchange(other.budget_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

bool MessageMemoryBudget::Reservation::grow(uint64_t n) {
  if (n == 0) return true;
  if (budget_ != nullptr && !budget_->take(n)) return false;
  bytes_ += n;
  return true;
}

void MessageMemoryBudget::Reservation::shrink(uint64_t n) {
  if (n > bytes_) n = bytes_;  // REQUIRES violated: never give back more than taken
  if (budget_ != nullptr) budget_->give_back(n);
  bytes_ -= n;
}

void MessageMemoryBudget::Reservation::release() { shrink(bytes_); }

MessageMemoryBudget::MessageMemoryBudget(uint64_t limit) : limit_(limit) {}

void MessageMemoryBudget::set_limit(uint64_t limit) {
  limit_.store(limit, std::memory_order_relaxed);
}

uint64_t MessageMemoryBudget::available() const {
  const uint64_t l = limit(), u = used();
  return u < l ? l - u : 0;
}

bool MessageMemoryBudget::take(uint64_t n) {
  uint64_t used = used_.load(std::memory_order_relaxed);
  for (;;) {
    const uint64_t limit = limit_.load(std::memory_order_relaxed);
    if (used > limit || n > limit - used) {
      count_refusal();
      return false;
    }
    if (used_.compare_exchange_weak(used, used + n, std::memory_order_relaxed)) break;
  }
  const uint64_t now_used = used + n;
  uint64_t peak = peak_.load(std::memory_order_relaxed);
  while (now_used > peak && !peak_.compare_exchange_weak(peak, now_used, std::memory_order_relaxed)) {
  }
  return true;
}

void MessageMemoryBudget::give_back(uint64_t n) { used_.fetch_sub(n, std::memory_order_relaxed); }

uint64_t MessageMemoryBudget::refusals_to_log(std::chrono::steady_clock::time_point now) {
  const int64_t now_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  const uint64_t total = refusals_.load(std::memory_order_relaxed);
  if (total == refusals_logged_.load(std::memory_order_relaxed)) return 0;  // nothing new
  int64_t last = last_log_ns_.load(std::memory_order_relaxed);
  if (last != 0 && now_ns - last < kLogIntervalNs) return 0;
  // Of concurrent callers, the one that moves the clock on reports.
  if (!last_log_ns_.compare_exchange_strong(last, now_ns == 0 ? 1 : now_ns,
                                            std::memory_order_relaxed)) {
    return 0;
  }
  return total - refusals_logged_.exchange(total, std::memory_order_relaxed);
}

}  // namespace holdd::smtp
