// RecipientVerifier's rules with a scripted probe (the real one, through
// UpstreamClient, is covered by tests/integration/test_verify_recipients.py):
// old then new, the verdicts, the cache and its lifetimes, one probe for many
// askers, the bound on probes in flight, and stop().
#include "holdd/smtp/recipient_verifier.h"

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <map>
#include <thread>

namespace holdd::smtp {
namespace {

using namespace std::chrono_literals;
using Answer = RecipientVerifier::Answer;
using V = UpstreamAnswer::Verdict;

// Upstreams whose answers the test sets, each taking `delay` to answer; counts
// the questions and how many were open at once.
struct Upstreams {
  std::map<std::string, V> old_says, new_says;  // default: refused
  std::chrono::milliseconds delay{0};
  std::vector<std::string> asked;  // "old:addr"
  int open = 0, peak = 0;

  RecipientVerifier::Probe probe() {
    return [this](std::string upstream, std::string address) -> net::awaitable<UpstreamAnswer> {
      asked.push_back(upstream + ":" + address);
      ++open;
      peak = std::max(peak, open);
      if (delay.count() > 0) {
        net::steady_timer t(co_await net::this_coro::executor, delay);
        co_await t.async_wait(net::use_awaitable);
      }
      --open;
      const auto& says = upstream == "old" ? old_says : new_says;
      auto it = says.find(address);
      co_return UpstreamAnswer{it == says.end() ? V::kRefused : it->second, "scripted"};
    };
  }
};

// Runs verify() for each address at once; returns the answers in order.
std::vector<Answer> verify_all(net::io_context& io, RecipientVerifier& v, const std::vector<std::string>& addrs) {
  std::vector<Answer> out(addrs.size(), Answer::kNoAnswer);
  for (size_t i = 0; i < addrs.size(); ++i) {
    net::co_spawn(io, [&, i]() -> net::awaitable<void> { out[i] = co_await v.verify(addrs[i], addrs[i]); },
                  net::detached);
  }
  io.restart();
  io.run();
  return out;
}

TEST_CASE("old is asked first; new only when old did not say yes; the verdicts") {
  net::io_context io;
  Upstreams up;
  up.old_says = {{"o@x", V::kAccepted}, {"busy@x", V::kUnknown}};
  up.new_says = {{"n@x", V::kAccepted}, {"busy@x", V::kRefused}, {"down@x", V::kUnknown}};
  RecipientVerifyStats stats;
  RecipientVerifier v(io.get_executor(), up.probe(), {}, &stats);
  auto answers = verify_all(io, v, {"o@x", "n@x", "nobody@x", "busy@x", "down@x"});
  CHECK(answers == std::vector<Answer>{Answer::kKnown, Answer::kKnown, Answer::kUnknown, Answer::kNoAnswer,
                                       Answer::kNoAnswer});
  CHECK(std::count(up.asked.begin(), up.asked.end(), "new:o@x") == 0);
  CHECK(std::count(up.asked.begin(), up.asked.end(), "old:n@x") == 1);
  CHECK(std::count(up.asked.begin(), up.asked.end(), "new:n@x") == 1);
  CHECK(stats.known == 2);
  CHECK(stats.unknown == 1);
  CHECK(stats.no_answer == 2);
  CHECK(stats.probes == 5);
}

TEST_CASE("answers are cached; no answer is not; refusals live a tenth as long") {
  net::io_context io;
  Upstreams up;
  up.old_says = {{"o@x", V::kAccepted}, {"later@x", V::kUnknown}};
  RecipientVerifier::Options options;
  options.cache_for = std::chrono::seconds(10);
  RecipientVerifier v(io.get_executor(), up.probe(), options);
  verify_all(io, v, {"o@x", "nobody@x", "later@x"});
  const size_t first = up.asked.size();  // o: 1, nobody: 2, later: 2
  CHECK(first == 5);
  auto again = verify_all(io, v, {"o@x", "nobody@x", "later@x"});
  CHECK(again == std::vector<Answer>{Answer::kKnown, Answer::kUnknown, Answer::kNoAnswer});
  CHECK(up.asked.size() == first + 2);  // only later@x asked again
  CHECK(v.cached() == 2);
  // 10 s cache: the refusal goes after 1 s, the acceptance stays.
  std::this_thread::sleep_for(1100ms);
  const size_t before = up.asked.size();
  verify_all(io, v, {"o@x", "nobody@x"});
  CHECK(up.asked.size() == before + 2);  // nobody@x: old and new again; o@x cached
}

TEST_CASE("many askers of one address share one probe") {
  net::io_context io;
  Upstreams up;
  up.delay = 20ms;
  up.old_says = {{"o@x", V::kAccepted}};
  RecipientVerifyStats stats;
  RecipientVerifier v(io.get_executor(), up.probe(), {}, &stats);
  auto answers = verify_all(io, v, std::vector<std::string>(10, "o@x"));
  CHECK(answers == std::vector<Answer>(10, Answer::kKnown));
  CHECK(up.asked.size() == 1);
  CHECK(stats.probes == 1);
  CHECK(stats.known == 10);
}

TEST_CASE("at most max_in_flight probes at once; the rest wait their turn") {
  net::io_context io;
  Upstreams up;
  up.delay = 5ms;
  RecipientVerifier::Options options;
  options.max_in_flight = 3;
  RecipientVerifier v(io.get_executor(), up.probe(), options);
  std::vector<std::string> addrs;
  for (int i = 0; i < 40; ++i) addrs.push_back("guess" + std::to_string(i) + "@x");
  auto answers = verify_all(io, v, addrs);
  CHECK(answers == std::vector<Answer>(40, Answer::kUnknown));
  CHECK(up.peak == 3);
  CHECK(up.asked.size() == 80);
}

TEST_CASE("an asker that waits longer than wait_for_slot gets no answer (450), and counts as busy") {
  net::io_context io;
  Upstreams up;
  up.delay = 200ms;
  RecipientVerifier::Options options;
  options.max_in_flight = 1;
  options.upstreams = {"old"};
  options.wait_for_slot = 50ms;
  RecipientVerifyStats stats;
  RecipientVerifier v(io.get_executor(), up.probe(), options, &stats);
  auto answers = verify_all(io, v, {"a@x", "b@x"});
  CHECK(answers == std::vector<Answer>{Answer::kUnknown, Answer::kNoAnswer});
  CHECK(stats.busy == 1);
  CHECK(up.asked.size() == 1);
}

TEST_CASE("stop() answers waiting askers at once and starts no probe") {
  net::io_context io;
  Upstreams up;
  up.delay = 100ms;
  RecipientVerifier::Options options;
  options.max_in_flight = 1;
  options.upstreams = {"old"};
  options.wait_for_slot = 60s;
  RecipientVerifier v(io.get_executor(), up.probe(), options);
  std::vector<Answer> out(2, Answer::kKnown);
  for (int i = 0; i < 2; ++i) {
    net::co_spawn(io, [&, i]() -> net::awaitable<void> {
      out[i] = co_await v.verify("a" + std::to_string(i) + "@x", "a@x");
    }, net::detached);
  }
  net::steady_timer stopper(io, 20ms);
  stopper.async_wait([&](auto) { v.stop(); });
  const auto started = std::chrono::steady_clock::now();
  io.run();
  CHECK(std::chrono::steady_clock::now() - started < 5s);  // not the 60 s wait
  CHECK(out[0] == Answer::kUnknown);   // the probe in flight finished
  CHECK(out[1] == Answer::kNoAnswer);  // the waiter was let go
  CHECK(verify_all(io, v, {"new@x"}) == std::vector<Answer>{Answer::kNoAnswer});
  CHECK(up.asked.size() == 1);
}

}  // namespace
}  // namespace holdd::smtp
