#include "holdd/smtp/recipient_verifier.h"

#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "holdd/base/printable.h"

namespace holdd::smtp {

namespace {
constexpr auto kAsTuple = net::as_tuple(net::use_awaitable);

std::string_view word(UpstreamAnswer::Verdict v) {
  switch (v) {
    case UpstreamAnswer::Verdict::kAccepted: return "accepted";
    case UpstreamAnswer::Verdict::kRefused: return "refused";
    case UpstreamAnswer::Verdict::kUnknown: break;
  }
  return "no answer";
}
}  // namespace

// A probe in progress. The RCPT that started it (the first to ask) runs it; the
// others wait on `done`, which is cancelled when `answer` is set.
struct RecipientVerifier::Pending {
  explicit Pending(const net::any_io_executor& ex) : done(ex, net::steady_timer::time_point::max()) {}
  net::steady_timer done;
  std::optional<Answer> answer;
};

// Lives in the waiting coroutine's frame; release_slot() hands it the slot by
// setting `granted` and cancelling its timer. A waiter whose timer ran out, or
// that stop() woke, is not granted and takes itself off the list.
struct RecipientVerifier::SlotWaiter {
  explicit SlotWaiter(const net::any_io_executor& ex) : timer(ex) {}
  net::steady_timer timer;
  bool granted = false;
};

RecipientVerifier::RecipientVerifier(net::any_io_executor ex, Probe probe, Options options,
                                     RecipientVerifyStats* stats)
    : ex_(std::move(ex)),
      probe_(std::move(probe)),
      options_(std::move(options)),
      stats_(stats != nullptr ? stats : &own_stats_) {}

RecipientVerifier::~RecipientVerifier() = default;

net::awaitable<RecipientVerifier::Answer> RecipientVerifier::verify(const std::string& key,
                                                                    const std::string& address) {
  const auto now = std::chrono::steady_clock::now();
  if (auto it = cache_.find(key); it != cache_.end()) {
    if (it->second.until > now) {
      ++stats_->cache_hits;
      co_return counted(it->second.answer);
    }
    cache_.erase(it);
  }
  if (auto it = pending_.find(key); it != pending_.end()) {
    std::shared_ptr<Pending> pending = it->second;
    if (!pending->answer) co_await pending->done.async_wait(kAsTuple);
    co_return counted(pending->answer.value_or(Answer::kNoAnswer));
  }

  auto pending = std::make_shared<Pending>(ex_);
  pending_.emplace(key, pending);
  Answer answer = Answer::kNoAnswer;
  if (co_await acquire_slot()) {
    ++stats_->probes;
    try {
      answer = co_await ask_upstreams(address);
    } catch (const std::exception& e) {
      spdlog::error("verify: probing <{}> failed: {}", printable(address), e.what());
    }
    release_slot();
    remember(key, answer);
  } else {
    ++stats_->busy;
    spdlog::debug("verify: <{}>: every probe slot busy for {} ms, 450", printable(address),
                  options_.wait_for_slot.count());
  }
  pending->answer = answer;
  pending->done.cancel();
  pending_.erase(key);
  co_return counted(answer);
}

RecipientVerifier::Answer RecipientVerifier::counted(Answer answer) {
  switch (answer) {
    case Answer::kKnown: ++stats_->known; break;
    case Answer::kUnknown: ++stats_->unknown; break;
    case Answer::kNoAnswer: ++stats_->no_answer; break;
  }
  return answer;
}

net::awaitable<RecipientVerifier::Answer> RecipientVerifier::ask_upstreams(const std::string& address) {
  bool unanswered = false;
  std::string said;  // "old refused (550 5.1.1 ...), new no answer (...)"
  for (const std::string& upstream : options_.upstreams) {
    if (stopped_) co_return Answer::kNoAnswer;
    UpstreamAnswer a = co_await probe_(upstream, address);
    if (!said.empty()) said += ", ";
    said += upstream + " " + std::string(word(a.verdict)) + " (" + printable(a.reply) + ")";
    if (a.verdict == UpstreamAnswer::Verdict::kAccepted) {
      spdlog::info("verify: <{}> is a mailbox: {}", printable(address), said);
      co_return Answer::kKnown;
    }
    if (a.verdict == UpstreamAnswer::Verdict::kUnknown) unanswered = true;
  }
  spdlog::info("verify: <{}> {}: {}", printable(address), unanswered ? "not verified" : "unknown", said);
  co_return unanswered ? Answer::kNoAnswer : Answer::kUnknown;
}

void RecipientVerifier::remember(const std::string& key, Answer answer) {
  if (answer == Answer::kNoAnswer) return;  // asked again next time
  const auto now = std::chrono::steady_clock::now();
  if (cache_.size() >= options_.max_cached) {
    std::erase_if(cache_, [&](const auto& entry) { return entry.second.until <= now; });
    if (cache_.size() >= options_.max_cached) return;
  }
  const auto keep = answer == Answer::kKnown ? options_.cache_for : options_.cache_for / 10;
  cache_[key] = Cached{answer, now + keep};
}

net::awaitable<bool> RecipientVerifier::acquire_slot() {
  if (stopped_) co_return false;
  if (in_flight_ < options_.max_in_flight) {
    ++in_flight_;
    co_return true;
  }
  SlotWaiter waiter(ex_);
  waiter.timer.expires_after(options_.wait_for_slot);
  auto it = waiters_.insert(waiters_.end(), &waiter);
  co_await waiter.timer.async_wait(kAsTuple);
  if (!waiter.granted) waiters_.erase(it);
  co_return waiter.granted;
}

void RecipientVerifier::release_slot() {
  if (!waiters_.empty() && !stopped_) {
    SlotWaiter* next = waiters_.front();  // the slot passes on; in_flight_ stays
    waiters_.pop_front();
    next->granted = true;
    next->timer.cancel();
    return;
  }
  --in_flight_;
}

void RecipientVerifier::reconfigure(Options options) {
  options_ = std::move(options);
  cache_.clear();  // the upstreams behind the names may have changed
}

void RecipientVerifier::stop() {
  stopped_ = true;
  for (SlotWaiter* w : waiters_) w->timer.cancel();
}

}  // namespace holdd::smtp
