#pragma once
// Counters of the SMTP intake, for /metrics and `holdctl status`. Written by the
// sessions and read by the control server, all on the io_context's thread.
#include <array>
#include <chrono>
#include <cstdint>

namespace holdd {

namespace smtp {
class MessageMemoryBudget;
}

// Prometheus-style cumulative histogram of seconds.
struct LatencyHistogram {
  static constexpr std::array<double, 13> kBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                     0.1,   0.25,   0.5,   1.0,  2.5,   5.0, 10.0};
  std::array<uint64_t, kBounds.size()> buckets{};  // counts per bound (not cumulative)
  uint64_t count = 0;
  double sum = 0;
  void observe(std::chrono::duration<double> d) {
    double s = d.count();
    for (size_t i = 0; i < kBounds.size(); ++i) {
      if (s <= kBounds[i]) { ++buckets[i]; break; }
    }
    ++count;
    sum += s;
  }
};

// [directory] recipients = "verify" (smtp::RecipientVerifier).
struct RecipientVerifyStats {
  uint64_t probes = 0;      // addresses asked of the upstreams
  uint64_t cache_hits = 0;  // RCPTs answered from the cache
  uint64_t busy = 0;        // 450s because every probe slot stayed busy
  uint64_t known = 0;       // RCPTs accepted after verification
  uint64_t unknown = 0;     // 550 5.1.1: refused by every upstream
  uint64_t no_answer = 0;   // 450 4.1.1: an upstream did not answer (busy included)
};

struct IntakeStats {
  uint64_t connections_total = 0;    // accepted TCP connections
  uint64_t connections_refused = 0;  // 421 4.7.0 over max_connections(_per_ip)
  uint64_t connections_open = 0;
  std::array<uint64_t, 6> replies_by_class{};  // index 2..5: 2xx..5xx replies sent
  uint64_t messages_accepted = 0;
  uint64_t bytes_accepted = 0;
  uint64_t recipients_accepted = 0;
  LatencyHistogram intake_latency;  // end of DATA -> 250 sent
  RecipientVerifyStats verify;
  // Live, not copied: /metrics reads its use and limit when it renders. Null
  // when the sessions have no budget.
  const smtp::MessageMemoryBudget* message_memory = nullptr;
};

}  // namespace holdd
