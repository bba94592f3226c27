#pragma once
// A MessageMemoryBudget bounds the RAM that message content takes while it is
// received and stored ([server] max_message_memory), across all sessions.
// Without it, max_connections clients each sending max_message_size would make
// the daemon hold their product (about 100 GiB with the defaults) before the
// first of them is stored.
//
// A session takes a Reservation when a message begins and grows it before it
// allocates; it gives the bytes back when the message is stored or dropped
// (destruction releases what is left). Growth beyond the limit is refused at
// once, never waited for: a session waiting for memory while holding some could
// wait for another one waiting for it. The session answers 452 4.3.1 instead
// (SPEC: what holdd cannot do now is a 4xx), and the client retries later.
//
// Thread-safe (atomics): sessions run on the I/O thread, /metrics reads the
// numbers. set_limit() (SIGHUP) applies at once: reservations above a lowered
// limit are kept, new growth is refused until enough has been given back.
//
// Pure (no I/O, no logging): the session says in the log what was refused.
//
// REQUIRES: the budget outlives every Reservation taken from it.
#include <atomic>
#include <chrono>
#include <cstdint>

namespace holdd::smtp {

class MessageMemoryBudget {
 public:
  // Bytes of one message's content, counted against a budget. Move-only.
  class Reservation {
   public:
    // Tied to no budget: grows without limit (tests and tools, which read
    // one message at a time).
    Reservation() = default;
    ~Reservation() { release(); }
    Reservation(Reservation&& other) noexcept;
    Reservation& operator=(Reservation&& other) noexcept;
    Reservation(const Reservation&) = delete;
    Reservation& operator=(const Reservation&) = delete;

    // Takes n more bytes; false (and nothing taken) when the budget cannot
    // cover them.
    bool grow(uint64_t n);
    // Gives back n bytes. REQUIRES: n <= bytes().
    void shrink(uint64_t n);
    // Gives back everything.
    void release();
    uint64_t bytes() const { return bytes_; }

   private:
    friend class MessageMemoryBudget;
    explicit Reservation(MessageMemoryBudget* budget) : budget_(budget) {}
    MessageMemoryBudget* budget_ = nullptr;
    uint64_t bytes_ = 0;
  };

  explicit MessageMemoryBudget(uint64_t limit);
  MessageMemoryBudget(const MessageMemoryBudget&) = delete;
  MessageMemoryBudget& operator=(const MessageMemoryBudget&) = delete;

  // An empty reservation against this budget; it grows as content arrives.
  Reservation reservation() { return Reservation(this); }

  void set_limit(uint64_t limit);
  uint64_t limit() const { return limit_.load(std::memory_order_relaxed); }
  uint64_t used() const { return used_.load(std::memory_order_relaxed); }
  uint64_t available() const;
  uint64_t peak() const { return peak_.load(std::memory_order_relaxed); }  // highest used()
  // How many messages the budget refused since start (each is a 452 to a client).
  uint64_t refusals() const { return refusals_.load(std::memory_order_relaxed); }
  // Counts a refusal decided by the caller from available() (MAIL SIZE= over
  // what is left); a refused grow() counts itself.
  void count_refusal() { refusals_.fetch_add(1, std::memory_order_relaxed); }
  // The refusals since the last time this returned non-zero, if that was at
  // least a minute before `now` (or never); else 0. For one log line a minute
  // at most, whichever session refused: under a flood of clients, one line per
  // refused message would be a flood of its own. Thread-safe: of concurrent
  // callers, one gets the count.
  uint64_t refusals_to_log(std::chrono::steady_clock::time_point now);

 private:
  bool take(uint64_t n);
  void give_back(uint64_t n);

  std::atomic<uint64_t> limit_;
  std::atomic<uint64_t> used_{0};
  std::atomic<uint64_t> peak_{0};
  std::atomic<uint64_t> refusals_{0};
  std::atomic<uint64_t> refusals_logged_{0};
  std::atomic<int64_t> last_log_ns_{0};  // steady clock; 0: never logged
};

}  // namespace holdd::smtp
