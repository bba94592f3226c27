#pragma once
// [directory] recipients = "verify" (SPEC "The old server"): a local address that
// is neither listed nor an alias is asked of the old server, then of the new one,
// as `holdctl probe` asks (MAIL FROM:<>, RCPT TO, RSET). Postfix's
// reject_unverified_recipient, for a migration:
//   - either upstream accepts it: the address is a mailbox (kKnown);
//   - every configured upstream refuses it with a 5xx: 550 5.1.1 (kUnknown);
//   - otherwise (a 4xx, no connection, a timeout): 450 4.1.1 (kNoAnswer), never
//     a 5xx because an upstream is down.
// Answers are cached: kKnown for verify_cache, kUnknown for a tenth of it,
// kNoAnswer not at all. At most `max_in_flight` addresses are being asked at any
// time; an RCPT that finds them all busy waits for one for `wait_for_slot`, then
// gets 450 4.1.1, so a dictionary attack costs the old server no more than
// `max_in_flight` probes at once. Sessions asking about the same address at the
// same time share one probe.
//
// The probing itself (an SMTP client) belongs to relay/, which smtp/ may not
// include: the daemon passes it in as a Probe function. Runs on the io thread.
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "holdd/smtp/intake_stats.h"

namespace holdd::smtp {

namespace net = boost::asio;

// One upstream's answer to RCPT TO.
struct UpstreamAnswer {
  enum class Verdict { kAccepted, kRefused, kUnknown };
  Verdict verdict = Verdict::kUnknown;
  std::string reply;  // the upstream's reply, or why there is none (for the log)
};

class RecipientVerifier {
 public:
  enum class Answer {
    kKnown,     // accept; the address becomes a mailbox in initial_state
    kUnknown,   // 550 5.1.1
    kNoAnswer,  // 450 4.1.1
  };
  // Asks `upstream` ("old" or "new") whether it knows `address`. Never throws;
  // trouble is kUnknown with the reason.
  using Probe = std::function<net::awaitable<UpstreamAnswer>(std::string upstream, std::string address)>;

  struct Options {
    std::vector<std::string> upstreams{"old", "new"};  // asked in this order
    std::chrono::seconds cache_for{3600};             // a refusal: a tenth of it
    size_t max_in_flight = 4;
    std::chrono::milliseconds wait_for_slot{10'000};
    size_t max_cached = 100'000;  // past it, expired answers go; then nothing new is kept
  };

  // `stats` (optional) is counted into; it must outlive the verifier.
  RecipientVerifier(net::any_io_executor ex, Probe probe, Options options,
                    RecipientVerifyStats* stats = nullptr);
  ~RecipientVerifier();
  RecipientVerifier(const RecipientVerifier&) = delete;
  RecipientVerifier& operator=(const RecipientVerifier&) = delete;

  // `key` is the mailbox key (what the cache is keyed by), `address` what the
  // sender wrote (what the upstreams are asked).
  net::awaitable<Answer> verify(const std::string& key, const std::string& address);

  // SIGHUP: new upstreams and cache time for the next probes; the cache is
  // emptied when the upstreams changed (their answers may differ).
  void reconfigure(Options options);
  // Shutdown: RCPTs waiting for a slot get kNoAnswer at once; no new probe starts.
  void stop();

  size_t cached() const { return cache_.size(); }

 private:
  struct Cached {
    Answer answer;
    std::chrono::steady_clock::time_point until;
  };
  struct Pending;      // a probe in progress, shared by the RCPTs asking for it
  struct SlotWaiter;   // an RCPT waiting for a probe slot

  net::awaitable<bool> acquire_slot();
  void release_slot();
  net::awaitable<Answer> ask_upstreams(const std::string& address);
  void remember(const std::string& key, Answer answer);
  Answer counted(Answer answer);

  net::any_io_executor ex_;
  Probe probe_;
  Options options_;
  std::unordered_map<std::string, Cached> cache_;
  std::unordered_map<std::string, std::shared_ptr<Pending>> pending_;
  std::list<SlotWaiter*> waiters_;  // FIFO
  size_t in_flight_ = 0;
  bool stopped_ = false;
  RecipientVerifyStats own_stats_;  // when the daemon passed none
  RecipientVerifyStats* stats_;
};

}  // namespace holdd::smtp
